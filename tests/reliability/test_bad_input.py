"""Issue 9, bad input: every kind of broken input goes through ``wwm run`` on both engines.

The corpus is generated here (``corpus.py``), never committed.  Each run is the
real command line (``python -m pipeline.cli run``) in a subprocess, on the real
engine (Beam's in-process runner, Spark ``local[2]``).  For every bad input the
test finds what became of it in the tables the run wrote (quarantined with a
reason and position, rejected by a rule, kept) and checks it against what the
pipeline promises; the closing table (``bad_input_table.md`` in the run
directory) is printed, so ``pytest -s`` shows it.

The 50 MB single-line document is in both runs: over a 16 MiB record limit on
Beam (quarantined by ingest), under the default 64 MiB on Spark (parsed, then
rejected as too_long by clean before normalising).  Memory is measured on Beam
through ingest and clean, the two stages that see it (later stages never get
it): peak RSS (VmHWM) of each stage's process with and without the document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.outputs import read_table
from pipeline.stages import STAGES, STAGE_TABLES

from .corpus import CASES, Case, write_bad_corpus, write_huge_document

ROOT = Path(__file__).resolve().parents[2]
HUGE_BYTES = 50 * 1000 * 1000
RECORD_LIMIT = 16 * 1024 * 1024           # ingest.max_record_bytes of the Beam full run
DEFAULT_LIMIT = 64 * 1024 * 1024          # the default, kept in the Spark full run
# the 50 MB document takes both paths: over a 16 MiB limit on Beam, under the default limit on Spark
LIMITS = {"beam": RECORD_LIMIT, "spark": DEFAULT_LIMIT}
CONTROL = {chr(c) for c in [*range(9), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0x200B, 0x2060]}


def _high_water(pid: int) -> int:
    """VmHWM (peak resident set size) of a running process in bytes, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def run_cli(args: list[str], cwd: Path, log: Path) -> tuple[int, int]:
    """(exit code, peak RSS in bytes) of ``python -m pipeline.cli ARGS``.

    The peak is the process's own VmHWM, sampled every 20 ms until it exits (a high-water mark, so the last
    sample holds all before it).  Not ``wait4``'s ``ru_maxrss``: Linux carries the parent's peak into a forked
    child, so a child of a big pytest process would report pytest's size.
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYSPARK_PYTHON=sys.executable)
    peak = 0
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        while proc.poll() is None:
            peak = max(peak, _high_water(proc.pid))
            time.sleep(0.02)
    return proc.returncode, peak


def write_config(path: Path, engine: str, inputs: list[dict], **sections) -> Path:
    config = {
        "engine": engine,
        "progress": False,
        "inputs": inputs,
        "segment": {"segmenter": "jieba"},
        "vocab": {"size": 8000},
        "shards": {"dupe_factor": 2, "shards": 2},
        "spark": {"master": "local[2]", "driver_memory": "2g",
                  "conf": {"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"}},
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def snapshot(directory: Path, skip: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if skip not in p.parents and p != skip}


@pytest.fixture(scope="session")
def bad_corpus(tmp_path_factory) -> Path:
    return write_bad_corpus(tmp_path_factory.mktemp("bad-corpus"))


@pytest.fixture(scope="session")
def huge_doc(tmp_path_factory) -> Path:
    return write_huge_document(tmp_path_factory.mktemp("huge") / "huge.jsonl", HUGE_BYTES)


def huge_case(huge: Path, engine: str) -> Case:
    limit = LIMITS[engine]
    if limit < HUGE_BYTES:
        return Case(f"50 MB single-line document (max_record_bytes {limit >> 20} MiB)", str(huge), 1,
                    "quarantined", f"record longer than {limit} bytes")
    return Case(f"50 MB single-line document (max_record_bytes {limit >> 20} MiB, the default)", str(huge), 1,
                "rejected", "too_long", "huge")


class Run:
    """One finished ``wwm run``: its tables, read once."""

    def __init__(self, engine: str, output: Path, corpus: Path) -> None:
        self.engine, self.output, self.corpus = engine, output, corpus
        self.stats = {s: json.loads((output / s / "stats.json").read_text(encoding="utf-8")) for s in STAGES}
        self.tables = {(s, t): read_table(output / s / t, t).to_pylist() for s in STAGES for t in STAGE_TABLES[s]}
        self.tables[("segment", "segmented")] = read_table(output / "segment" / "segmented", "segmented",
                                                           ["id"]).to_pylist()

    def path(self, case: Case) -> str:
        return case.file if os.path.isabs(case.file) else str(self.corpus / case.file)

    def fate(self, case: Case) -> tuple[str, str, dict | None]:
        """(outcome, reason, row) of a case, found in the tables: quarantined/rejected/duplicate/kept/none."""
        file = self.path(case)
        for row in self.tables[("ingest", "quarantined")]:
            if row["file"] == file and row["position"] in (case.position, 0):   # 0: the whole file
                return "quarantined", f"ingest: {row['error']}", row
        docs = [d for d in self.tables[("ingest", "documents")]
                if d["file"] == file and d["position"] == case.position]
        if not docs:
            return "none", "no record", None
        doc = docs[0]
        for stage in ("clean", "dedup", "segment", "shards"):
            for row in self.tables.get((stage, "quarantined"), []):
                if row["id"] == doc["id"]:
                    return "quarantined", f"{stage}: {row['error']}", doc
            for row in self.tables.get((stage, "rejected"), []):
                if row["id"] == doc["id"]:
                    return "rejected", f"{stage}: {row['rule']}", doc
            for row in self.tables.get((stage, "duplicates"), []):
                if row["id"] == doc["id"]:
                    return "duplicate", f"{stage}: {row['method']}", doc
        if any(r["id"] == doc["id"] for r in self.tables[("segment", "segmented")]):
            return "kept", "to the shards", doc
        return "lost", "in no table", doc

    def cleaned_text(self, doc_id: str) -> str:
        return next(d["text"] for d in self.tables[("clean", "documents")] if d["id"] == doc_id)


@pytest.fixture(scope="module", params=["beam", "spark"])
def run(request, bad_corpus, huge_doc, tmp_path_factory) -> Run:
    engine = request.param
    work = tmp_path_factory.mktemp(f"bad-run-{engine}")
    output = work / "out"
    config = write_config(work / "run.yaml", engine, [{"path": str(bad_corpus), "source": "bad"},
                                                      {"path": str(huge_doc), "source": "huge"}],
                          ingest={"max_record_bytes": LIMITS[engine]})
    before = snapshot(work, output)
    root_before = set(os.listdir(ROOT))
    code, _ = run_cli(["run", "--config", str(config), "--output", str(output)], work, work / "run.log")
    assert code == 0, (work / "run.log").read_text(errors="replace")[-3000:]
    # nothing was written outside the output directory: not beside it (the working directory of the run),
    # not in the repository, not where the path-like ids point
    assert snapshot(work, output) == before | {"run.log"}
    assert set(os.listdir(ROOT)) == root_before
    assert not Path("/etc/x").exists() and not (work / "c").exists() and not (work.parent / "c").exists()
    return Run(engine, output, bad_corpus)


def test_every_stage_balances_and_records_reasons_and_positions(run):
    for stage in STAGES:
        a = run.stats[stage]["accounting"]
        assert a["balanced"] and a["read"] == a["kept"] + a["rejected"] + a["duplicate"] + a["quarantined"], stage
    for stage in ("clean", "dedup", "segment"):      # each stage read what the one before kept
        previous = {"clean": "ingest", "dedup": "clean", "segment": "dedup"}[stage]
        assert run.stats[stage]["accounting"]["read"] == run.stats[previous]["accounting"]["kept"]
    summary = json.loads((run.output / "run.json").read_text(encoding="utf-8"))["accounting"]
    assert summary["balanced"]
    for (stage, table), rows in run.tables.items():
        if table == "quarantined":
            assert all(r["error"] and r["file"] and r["position"] >= 0 for r in rows), stage
        if table == "rejected":
            assert all(r["rule"] and r["detail"] and r["file"] and r["position"] >= 1 for r in rows), stage
    counters = run.stats["ingest"]["counters"]
    files = sum(1 for p in run.corpus.rglob("*") if not p.is_dir()) + 1      # + the huge document
    assert counters["ingest.files"] == files
    assert counters["ingest.files.no_records"] == 1                         # empty.txt
    assert counters["ingest.read"] == counters["ingest.documents"] + counters["ingest.quarantined"]
    assert run.stats["segment"]["counters"]["segment.long_chunks_cut"] == 1     # unpunctuated.jsonl


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled_as_documented(run, case):
    outcome, reason, row = run.fate(case)
    assert outcome == case.outcome, (outcome, reason)
    if outcome == "quarantined":
        assert case.reason in reason
        assert row["position"] == case.position
    elif outcome == "rejected":
        assert reason.endswith(f": {case.reason}")
    if case.doc_id is not None:
        assert row["id"] == f"{row['source']}:{case.doc_id}"


def test_huge_document_is_quarantined_or_rejected_before_normalising(run, huge_doc):
    case = huge_case(huge_doc, run.engine)
    outcome, reason, row = run.fate(case)
    assert outcome == case.outcome and reason.endswith(case.reason) and row["position"] == 1
    if outcome == "quarantined":
        assert row["excerpt"] is None              # the line is skipped in chunks, never held or copied
    else:
        assert row["id"] == "huge:huge"
        rejected = next(r for r in run.tables[("clean", "rejected")] if r["id"] == "huge:huge")
        assert "before normalisation" in rejected["detail"] and len(rejected["text"]) > 16_000_000


def test_text_is_cleaned_of_control_characters_and_kept(run):
    for doc_id in ("bad:e2", "bad:n2", "bad:nul.txt:000000001"):
        text = run.cleaned_text(doc_id)
        assert text and not (set(text) & CONTROL), doc_id
    assert "😀" in run.cleaned_text("bad:e2")
    external = run.cleaned_text("bad:1")           # the page whose text ended in &ext; (file:///etc/passwd)
    assert "root:" not in external and "ext" not in external and len(external) < 100


def test_path_like_ids_and_titles_stay_data(run):
    ids = {d["id"] for d in run.tables[("clean", "documents")]}
    for evil in ("../../etc/x", "/etc/passwd", "a\x00b/../x", "..", "C:\\Windows\\x", "a/b/../../../c"):
        assert f"bad:{evil}" in ids
    out = run.output.resolve()
    for path in run.output.rglob("*"):
        assert not path.is_symlink() and out in path.resolve().parents, path
        assert not {"etc", "passwd", "Windows", "..", "c", "x"} & set(path.relative_to(run.output).parts), path
    names = {p.name for p in run.output.rglob("*")}
    assert not any("\x00" in n or "\\" in n for n in names)


def test_closing_table(run, huge_doc, bad_corpus):
    """The table of what became of each bad input, and each stage's counts; printed and written to the run."""
    lines = [f"### Bad input, engine {run.engine}", "",
             "| bad input | file:line | expected | what happened |", "|---|---|---|---|"]
    for case in [*CASES, huge_case(huge_doc, run.engine)]:
        outcome, reason, _ = run.fate(case)
        where = f"{Path(case.file).name}:{case.position}"
        lines.append(f"| {case.name} | {where} | {case.outcome} ({case.reason}) | {outcome}: "
                     f"{reason[:150].replace('|', '/')} |")
    lines += ["", "| stage | read | kept | rejected | duplicate | quarantined | balanced |",
              "|---|---|---|---|---|---|---|"]
    for stage in STAGES:
        a = run.stats[stage]["accounting"]
        lines.append(f"| {stage} | {a['read']} | {a['kept']} | {a['rejected']} | {a['duplicate']} | "
                     f"{a['quarantined']} | {a['balanced']} |")
    table = "\n".join(lines) + "\n"
    (run.output / "bad_input_table.md").write_text(table, encoding="utf-8")
    print("\n" + table)
    assert len(lines) == 4 + len(CASES) + 1 + 3 + len(STAGES)


def test_huge_document_memory_is_bounded(bad_corpus, huge_doc, tmp_path):
    """Peak RSS of ingest and clean (Beam) with and without the 50 MB document, at the default record limit
    (64 MiB: it is parsed, then rejected by clean's too_long before being normalised) and with a 16 MiB limit
    (quarantined by ingest, read in chunks)."""
    peaks = {}
    for name, inputs, ingest in [
        ("without", [{"path": str(bad_corpus), "source": "bad"}], {}),
        ("parsed", [{"path": str(bad_corpus), "source": "bad"},
                    {"path": str(huge_doc), "source": "huge"}], {}),
        ("quarantined", [{"path": str(bad_corpus), "source": "bad"},
                         {"path": str(huge_doc), "source": "huge"}],
         {"max_record_bytes": RECORD_LIMIT}),
    ]:
        work = tmp_path / name
        work.mkdir()
        config = write_config(work / "run.yaml", "beam", inputs, ingest=ingest)
        peak = 0
        for stage in ("ingest", "clean"):
            code, rss = run_cli([stage, "--config", str(config), "--output", str(work / "out")], work,
                                work / "run.log")
            assert code == 0, (work / "run.log").read_text(errors="replace")[-3000:]
            peak = max(peak, rss)
        peaks[name] = (peak, work / "out")
    base = peaks["without"][0]
    parsed, parsed_out = peaks["parsed"]
    quarantined, _ = peaks["quarantined"]
    rejected = read_table(parsed_out / "clean" / "rejected", "rejected").to_pylist()
    huge = [r for r in rejected if r["id"] == "huge:huge"]
    assert len(huge) == 1 and huge[0]["rule"] == "too_long" and "before normalisation" in huge[0]["detail"]
    print(f"\npeak RSS of ingest+clean (Beam): without the 50 MB document {base / 1e6:.0f} MB; with it, parsed "
          f"and rejected by clean {parsed / 1e6:.0f} MB ({(parsed - base) / 1e6:+.0f} MB); with it, quarantined "
          f"by a {RECORD_LIMIT >> 20} MiB record limit {quarantined / 1e6:.0f} MB "
          f"({(quarantined - base) / 1e6:+.0f} MB)")
    # one huge document costs a few copies of itself (bytes read, the decoded str, the Arrow column and the
    # Parquet page, in the engine and in the writer), not more: under 8x its size (measured: 6.3-6.5x)
    assert parsed - base < 8 * HUGE_BYTES
    # over the record limit it is read in 1 MB chunks after the first limit-sized read: about the limit
    assert quarantined - base < 3 * RECORD_LIMIT

