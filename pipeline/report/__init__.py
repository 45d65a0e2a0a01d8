"""The run report: ``collect`` gathers the figures (report.json), ``html`` renders them (report.html)."""

from __future__ import annotations

import json
from pathlib import Path


def write_report(run_dir: str | Path) -> dict:
    """Write ``report.json`` and ``report.html`` under ``run_dir``; returns the report's data."""
    from pipeline.report.collect import collect
    from pipeline.report.html import render

    root = Path(run_dir)
    data = collect(root)
    (root / "report.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (root / "report.html").write_text(render(data), encoding="utf-8")
    return data
