"""Process set-up shared by the engine adapters."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def package_root() -> str:
    """Directory holding the ``pipeline`` package this process imported."""
    return str(Path(__file__).resolve().parent.parent)


def export_worker_environment() -> dict[str, str]:
    """Make worker processes started from here use this interpreter and this copy of the package.

    Sets ``PYTHONPATH`` (package root first) and ``PYSPARK_PYTHON`` /
    ``PYSPARK_DRIVER_PYTHON`` in ``os.environ``; returns the values set.
    """
    root = package_root()
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    values = {
        "PYTHONPATH": os.pathsep.join([root, *paths]),
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON") or sys.executable,
        "PYSPARK_DRIVER_PYTHON": os.environ.get("PYSPARK_DRIVER_PYTHON") or sys.executable,
    }
    os.environ.update(values)
    return values
