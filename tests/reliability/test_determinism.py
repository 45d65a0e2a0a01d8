"""Same input, same seed: byte-identical shards whatever the engine, the number of workers or the run.

The segmented table and vocab come from one Beam in-process run of the bundled sample (``runs.reference_run``;
``tests/test_engines.py`` checks that every stage's tables agree across engines, ``tests/test_shards.py`` the
shards of Beam 1 and 2 workers and Spark ``local[2]`` on the shared corpora).  Here the shards stage is run
again over that table on Beam with 1, 2 and 4 worker processes, on Spark ``local[1]``, ``local[2]`` and
``local[4]`` (tasks per step follow the cores), once more on Beam in a fresh directory, and, with
``make test-cluster``, on a two-worker standalone cluster; every shard file, the manifest's shard list and the
rejected and quarantined rows must equal the reference's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.stages import run_stage

from .runs import (
    QUIET,
    config,
    linked,
    needs_cluster,
    rows,
    shard_bytes,
    stop_spark,
)

SPARK_CONF = {"spark.sql.shuffle.partitions": "4"}   # no spark.default.parallelism: it follows local[N]


def shards_again(reference: Path, output: Path, engine: str, **sections) -> Path:
    cfg = config(linked(output, reference, "segment", "vocab"), engine, **sections)
    if engine == "spark":     # make_config's spark.default.parallelism would fix the tasks at 4 whatever N is
        cfg.spark.conf = {**{k: v for k, v in cfg.spark.conf.items() if k != "spark.default.parallelism"},
                          **SPARK_CONF}
    run_stage("shards", cfg, **QUIET)
    return output / "shards"


def assert_same_shards(shards: Path, reference: Path, name: str):
    expected = reference / "shards"
    assert shard_bytes(shards) == shard_bytes(expected), name
    manifest = json.loads((shards / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["shards"] == json.loads((expected / "manifest.json").read_text(encoding="utf-8"))["shards"]
    for table in ("rejected", "quarantined"):
        assert rows(shards, table) == rows(expected, table), (name, table)


def test_shards_are_byte_identical_across_engines_worker_counts_and_reruns(reference, tmp_path):
    manifest = json.loads((reference / "shards" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["instances"] > 200 and len(manifest["shards"]) == 4
    assert all(s["instances"] > 0 for s in manifest["shards"])
    runs = {}
    for workers in (2, 4):
        runs[f"beam-{workers}-processes"] = shards_again(
            reference, tmp_path / f"beam-{workers}", "beam",
            beam={"direct_num_workers": workers, "direct_running_mode": "multi_processing"})
    runs["beam-rerun"] = shards_again(reference, tmp_path / "beam-rerun", "beam")
    try:
        for cores in (1, 2, 4):
            stop_spark()      # a new session on this master (getOrCreate would reuse a running one)
            runs[f"spark-local[{cores}]"] = shards_again(reference, tmp_path / f"spark-{cores}", "spark",
                                                         spark={"master": f"local[{cores}]"})
    finally:
        stop_spark()
    for name, shards in runs.items():
        assert_same_shards(shards, reference, name)


@pytest.mark.cluster
@needs_cluster
def test_shards_on_a_standalone_cluster_are_the_same_bytes(reference, tmp_path):
    from spark_cluster import standalone_cluster

    stop_spark()
    with standalone_cluster(workers=2, cores_per_worker=1, memory="1g") as cluster:
        try:
            shards = shards_again(reference, tmp_path / "cluster", "spark",
                                  spark={"master": cluster.master_url,
                                         "conf": {"spark.executor.memory": "512m", "spark.executor.cores": "1"}})
        finally:
            stop_spark()
    assert_same_shards(shards, reference, "standalone cluster, 2 workers")
