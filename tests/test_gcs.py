"""Every stage on ``gs://`` inputs and outputs, against a GCS emulator (``gcp-storage-emulator``, a real HTTP
server speaking the GCS JSON API, in a child process: see tests/gcs_emulator.py).

``wwm run`` (all six stages, the real LTP legacy model trained on the sample) reads the bundled sample from
``gs://bkt/input`` and writes ``gs://bkt/run-ENGINE``, on Beam and on Spark ``local[2]``, each in its own
process with ``STORAGE_EMULATOR_HOST`` set; every table, the vocab and the shard bytes must equal a local run
of the same input.  Then the object-store publication: a rerun skips every stage, a stage directory left
without its ``stats.json`` (a publication cut short) is not read and is redone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gcp_storage_emulator")

from conftest import make_config  # noqa: E402
from gcs_emulator import emulator_env  # noqa: E402
from pipeline import storage  # noqa: E402
from pipeline.config import InputSpec  # noqa: E402
from pipeline.outputs import committed, read_table  # noqa: E402
from pipeline.stages import STAGES, STAGE_TABLES, run_all, run_stage  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARDS = {"dupe_factor": 2, "shards": 3}


def _key(table):
    return (lambda r: (r["stage"], r["file"], r["position"])) if table == "quarantined" else (lambda r: r["id"])


def _rows(stage_dir, table: str, input_root: str) -> list[dict]:
    """A table's rows, sorted, with the input root cut from ``file`` (a local path in one run, a URI in the
    other: the one column that says where the input was)."""
    rows = read_table(storage.join(stage_dir, table), table).to_pylist()
    for row in rows:
        if row.get("file"):
            assert row["file"].startswith(input_root), row["file"]
            row["file"] = row["file"][len(input_root):]
    return sorted(rows, key=_key(table))


@pytest.fixture(scope="module")
def gcs():
    with emulator_env() as host:
        yield host


@pytest.fixture(scope="module")
def remote_inputs(gcs, sample_dir) -> list[InputSpec]:
    for path in sorted(p for p in sample_dir.rglob("*") if p.is_file()):
        storage.write_bytes(f"gs://bkt/input/{path.relative_to(sample_dir)}", path.read_bytes())
    return [InputSpec(f"gs://bkt/input/{d.name}", "auto", d.name) for d in sorted(sample_dir.iterdir())
            if d.is_dir() and not d.name.startswith("_")]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, sample_inputs, sample_ltp_model):
    output = tmp_path_factory.mktemp("local-run")
    run_all(make_config(output, sample_inputs, "beam", shards=SHARDS), log=lambda *_: None)
    return output


def _wwm_run(engine: str, inputs, output: str, model, host: str, *extra: str) -> subprocess.CompletedProcess:
    """``wwm run`` in its own process (a fresh Spark session that inherits the emulator's address)."""
    argv = [sys.executable, "-m", "pipeline.cli", "run", *(f"{s.source}={s.path}" for s in inputs),
            "--output", output, "--engine", engine, "--segment-model", str(model), "--no-progress",
            "--shards-dupe-factor", str(SHARDS["dupe_factor"]), "--shards-shards", str(SHARDS["shards"]),
            "--spark-master", "local[2]", "--spark-driver-memory", "2g", "--spark-conf",
            "spark.sql.shuffle.partitions=4", "--spark-conf", "spark.default.parallelism=2", *extra]
    env = {**os.environ, "STORAGE_EMULATOR_HOST": host,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


@pytest.mark.parametrize("engine", ["beam", "spark"])
def test_wwm_run_on_gcs_writes_what_a_local_run_writes(gcs, remote_inputs, local_run, sample_dir,
                                                      sample_ltp_model, engine):
    output = f"gs://bkt/run-{engine}"
    result = _wwm_run(engine, remote_inputs, output, sample_ltp_model, gcs)
    assert "outputs: gs://bkt/run-" in result.stdout
    for stage in STAGES:
        stage_dir = storage.join(output, stage)
        assert committed(stage_dir), stage
        remote_stats = json.loads(storage.read_text(storage.join(stage_dir, "stats.json")))
        local_stats = json.loads((local_run / stage / "stats.json").read_text(encoding="utf-8"))
        assert remote_stats["accounting"] == local_stats["accounting"], stage
        for table in STAGE_TABLES[stage]:
            remote = _rows(stage_dir, table, "gs://bkt/input/")
            local = _rows(local_run / stage, table, f"{sample_dir}/")
            assert remote == local, (stage, table)
    assert storage.read_bytes(f"{output}/vocab/vocab.txt") == (local_run / "vocab" / "vocab.txt").read_bytes()
    remote_manifest = json.loads(storage.read_text(f"{output}/shards/manifest.json"))
    local_manifest = json.loads((local_run / "shards" / "manifest.json").read_text(encoding="utf-8"))
    assert remote_manifest["shards"] == local_manifest["shards"] and len(local_manifest["shards"]) == 3
    for shard in local_manifest["shards"]:
        data = storage.read_bytes(f"{output}/shards/{shard['file']}")
        assert data == (local_run / "shards" / shard["file"]).read_bytes(), shard["file"]
    leftovers = [name for name in storage.listdir(output) if name.startswith(".")]
    assert leftovers == []


def test_gcs_rerun_skips_what_is_committed_and_redoes_an_uncommitted_stage(gcs, remote_inputs, sample_ltp_model):
    output = "gs://bkt/rerun"
    config = make_config(output, remote_inputs, "beam", shards=SHARDS)
    run_all(config, STAGES[:3], log=lambda *_: None)
    lines: list[str] = []
    run_all(config, STAGES[:3], log=lines.append)
    assert [line for line in lines if "up to date" in line] == [f"{s}: up to date, skipped" for s in STAGES[:3]]

    # a publication cut short: clean's stats.json (the commit marker, written last) never came
    storage.delete_file(f"{output}/clean/stats.json")
    storage.write_text(f"{output}/.tmp-dedup-0123456789ab/documents/part-00000.parquet", "half")
    assert not committed(f"{output}/clean")
    with pytest.raises(FileNotFoundError, match="clean"):
        run_stage("dedup", config, log=lambda *_: None)     # a later stage never reads it
    lines.clear()
    run_all(config, STAGES[:3], log=lines.append)
    assert "ingest: up to date, skipped" in lines
    assert any(line.startswith("recover: removed gs://bkt/rerun/clean") for line in lines), lines
    assert any(line.startswith("recover: removed .tmp-dedup-") for line in lines), lines
    assert any(line.startswith("clean: read") for line in lines)      # redone, the same output as before:
    assert "dedup: up to date, skipped" in lines                        # what dedup was made from is unchanged
    assert committed(f"{output}/clean") and committed(f"{output}/dedup")
    assert not [name for name in storage.listdir(output) if name.startswith(".")]
