"""A real Spark cluster stands in for Dataproc: a standalone master and two workers on loopback run the job the
way ``dataproc-submit`` ships it (``spark-submit`` of jobs/spark_entry.py, the package as a --py-files zip),
and it writes what the local run writes. (Beam's multi-process runner stands in for Dataflow in
tests/test_engines.py::test_beam_multiprocess_workers_write_the_same_documents.)

Slow (a few minutes on two cores): runs with ``make test-cluster`` (WWM_CLUSTER_TESTS=1).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from spark_cluster import standalone_cluster

from jobs.pack import build_zip
from pipeline.outputs import read_table
from pipeline.shards import manifest as shard_manifest
from pipeline.stages import STAGES, STAGE_TABLES

pytestmark = pytest.mark.skipif(not os.environ.get("WWM_CLUSTER_TESTS"),
                                reason="cluster tests run with make test-cluster (WWM_CLUSTER_TESTS=1)")

ROOT = Path(__file__).resolve().parents[1]
# the same settings on both runs: partitions are fixed so that nothing depends on the core count
SETTINGS = ["--segment-segmenter", "jieba", "--spark-partitions", "4",
            "--spark-conf", "spark.sql.shuffle.partitions=4", "--spark-conf", "spark.default.parallelism=4",
            "--shards-dupe-factor", "2", "--shards-shards", "3", "--no-progress"]


def rows(output: Path, stage: str, table: str) -> list[dict]:
    key = (lambda r: (r["stage"], r["file"], r["position"])) if table == "quarantined" else (lambda r: r["id"])
    return sorted(read_table(output / stage / table, table).to_pylist(), key=key)


def clean_env() -> dict:
    """No PYTHONPATH and no PySpark variables from the test process: the cluster run must find the package
    in the zip it was given."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_HOME")}


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory, sample_inputs):
    tmp = tmp_path_factory.mktemp("cluster-job")
    local, cluster_out = tmp / "local", tmp / "cluster"
    job = ["run", *[f"{spec.source}={spec.path}" for spec in sample_inputs], "--engine", "spark", *SETTINGS]
    env = {**clean_env(), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", *job, "--output", str(local),
                           "--spark-master", "local[2]"], cwd=tmp, env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-5000:]

    package = build_zip(tmp / "dist" / "wwm_pipeline.zip")
    with standalone_cluster(workers=2, cores_per_worker=1, memory="1g") as cluster:
        env = {**clean_env(), "SPARK_LOCAL_IP": "127.0.0.1"}
        submit = [cluster.spark_submit, "--master", cluster.master_url, "--py-files", str(package),
                  "--conf", "spark.executor.memory=1g", "--conf", f"spark.pyspark.python={sys.executable}",
                  str(ROOT / "jobs" / "spark_entry.py"),
                  *job, "--output", str(cluster_out), "--spark-master", cluster.master_url]
        done = subprocess.run(submit, cwd=tmp, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-8000:] + cluster.logs()[-8000:]
        apps = cluster.state()["completedapps"]
    return local, cluster_out, apps, done


def test_the_cluster_ran_the_stages_on_both_workers(both_runs):
    *_, apps, done = both_runs
    assert len(apps) == 1 and apps[0]["state"] == "FINISHED"     # one Spark application ran every stage
    assert apps[0]["cores"] == 2                                 # one executor core on each of the two workers
    assert "run: read" in done.stdout


def test_cluster_run_writes_the_tables_of_the_local_run(both_runs):
    local, cluster_out, *_ = both_runs
    for stage in STAGES:
        for table in STAGE_TABLES[stage]:
            assert rows(cluster_out, stage, table) == rows(local, stage, table), (stage, table)


def test_cluster_run_writes_the_same_vocab_and_shards(both_runs):
    local, cluster_out, *_ = both_runs
    assert (cluster_out / "vocab" / "vocab.txt").read_bytes() == (local / "vocab" / "vocab.txt").read_bytes()
    manifest = shard_manifest.read(local / "shards")
    assert sum(s["instances"] for s in manifest["shards"]) > 0
    for shard in manifest["shards"]:
        name = shard["file"]
        assert (cluster_out / "shards" / name).read_bytes() == (local / "shards" / name).read_bytes(), name
