"""Helpers of the reliability tests: one small real run to start from, outputs compared by content, Spark
sessions on a chosen master, the test-only fault plan (``pipeline.faults``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import make_config

from pipeline.outputs import read_table
from pipeline.stages import STAGES, run_all

# the tests that start a standalone cluster (also marked ``cluster``) run with make test-cluster
needs_cluster = pytest.mark.skipif(not os.environ.get("WWM_CLUSTER_TESTS"),
                                   reason="cluster tests run with make test-cluster (WWM_CLUSTER_TESTS=1)")

# small but partitioned: the sample's 37 kept documents make 5 pools, each spread over 4 shards
SHARDS = {"dupe_factor": 3, "shards": 4, "pool_documents": 8}
SECTIONS = {"segment": {"segmenter": "jieba"}, "vocab": {"size": 2000}, "shards": SHARDS}


def config(output: Path, engine: str = "beam", inputs=(), **sections):
    merged = {name: dict(values) for name, values in SECTIONS.items()}
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    return make_config(output, inputs, engine, **merged)


QUIET = {"log": lambda *_: None}     # run_stage(..., **QUIET): no stage lines in the test output


def reference_run(output: Path, sample_inputs) -> Path:
    """Every stage on the bundled sample, Beam in-process, one worker: the output the others must match."""
    run_all(config(output, "beam", sample_inputs), STAGES, **QUIET)
    return output


def linked(output: Path, reference: Path, *stages: str) -> Path:
    """A fresh output directory whose ``stages`` are links to the reference run's (the inputs of the next)."""
    output.mkdir(parents=True, exist_ok=True)
    for stage in stages:
        (output / stage).symlink_to(reference / stage)
    return output


def sort_key(table):
    return (lambda r: (r["stage"], r["file"], r["position"])) if table == "quarantined" else (lambda r: r["id"])


def rows(directory: Path, table: str) -> list[dict]:
    return sorted(read_table(directory / table, table).to_pylist(), key=sort_key(table))


def shard_bytes(shards_dir: Path) -> dict[str, bytes]:
    """Every shard file named by the manifest, with its bytes (the manifest's own list must match them)."""
    manifest = json.loads((shards_dir / "manifest.json").read_text(encoding="utf-8"))
    files = {s["file"]: (shards_dir / s["file"]).read_bytes() for s in manifest["shards"]}
    assert sorted(files) == sorted(p.name for p in shards_dir.glob("part-*.tfrecord"))
    return files


def fault_plan(directory: Path, fail_once=(), pause=None) -> str:
    return json.dumps({"dir": str(directory), "fail_once": list(fail_once), "pause": dict(pause or {})})


def attempts(directory: Path, step: str) -> dict[str, list[int]]:
    """Task attempts the fault hooks saw: key -> pids of the Python workers that started it."""
    found: dict[str, list[int]] = {}
    for path in sorted(directory.glob(f"started-{step}-*")) if directory.is_dir() else []:
        key, pid, _ = path.name[len(f"started-{step}-"):].rsplit("-", 2)
        found.setdefault(key, []).append(int(pid))
    return found


def stop_spark() -> None:
    """Stop this process's Spark session, so the next ``get_session`` starts one on its config's master
    (``getOrCreate`` would otherwise hand back the running one, whatever master it has)."""
    from pyspark import SparkContext

    if SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()
