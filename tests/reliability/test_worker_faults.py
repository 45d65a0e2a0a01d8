"""Worker faults: a task or bundle that fails once, an executor killed in the middle of a stage.

What each engine does with a failed unit of work, measured here with real runners (the failure is the
test-only ``WWM_TEST_FAULTS`` hook of ``pipeline.faults``, raised at the end of the first attempt, after
the attempt has emitted and written its records):

- Beam ``FnApiRunner`` (the local default, in-memory or multi-process) does not retry a failed bundle: the
  stage fails and publishes nothing; running the stage again (``wwm run`` does, skipping what is done) gives
  the same output.
- Beam ``BundleBasedDirectRunner`` retries a failed bundle (up to 4 attempts): same tables; its counters
  include the failed attempt's (Beam commits that attempt's metrics).
- Spark ``local[N]`` never retries (``spark.task.maxFailures`` does not apply in local mode); ``local[N,F]``
  (the default is ``local[*,4]``) and a cluster (``spark.task.maxFailures``, 4) do, and the counters stay
  exact (they are task results, only the successful attempt's count).
- A standalone cluster whose executor is SIGKILLed while it runs a segment task, then a shards task, finishes
  both stages with the same tables and shard bytes as an undisturbed run (``make test-cluster``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pipeline.faults import ENV
from pipeline.stages import run_stage

from .runs import (
    QUIET,
    attempts,
    config,
    fault_plan,
    linked,
    needs_cluster,
    rows,
    shard_bytes,
    stop_spark,
)


def assert_same_segment(output: Path, reference: Path):
    for table in ("segmented", "quarantined"):
        assert rows(output / "segment", table) == rows(reference / "segment", table)


# --- Beam ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 2], ids=["in-memory", "multi-process-2"])
def test_fnapi_runner_does_not_retry_a_failed_bundle_and_a_stage_rerun_does(reference, tmp_path, monkeypatch,
                                                                             workers):
    faults = tmp_path / "faults"
    monkeypatch.setenv(ENV, fault_plan(faults, fail_once=["segment"]))
    output = linked(tmp_path / "run", reference, "dedup")
    beam = {"direct_num_workers": workers, "direct_running_mode": "multi_processing" if workers > 1 else "in_memory"}
    cfg = config(output, "beam", beam=beam)
    with pytest.raises(Exception, match="injected failure"):
        run_stage("segment", cfg, **QUIET)
    assert not (output / "segment").exists() and not list(output.glob(".tmp-*"))
    first = attempts(faults, "segment")
    assert first and all(len(pids) == 1 for pids in first.values())        # one attempt each: no retry

    stats = run_stage("segment", cfg, **QUIET)                              # the stage again: same output
    assert_same_segment(output, reference)
    assert stats["counters"]["segment.read"] == stats["accounting"]["read"]


def test_bundle_based_direct_runner_retries_a_failed_bundle(reference, tmp_path, monkeypatch):
    """Segment bundles and shard writes (failing after the shard file is written) fail once each."""
    faults = tmp_path / "faults"
    monkeypatch.setenv(ENV, fault_plan(faults, fail_once=["segment", "shards.write"]))
    output = linked(tmp_path / "run", reference, "dedup", "vocab")
    cfg = config(output, "beam", beam={"runner": "BundleBasedDirectRunner"})
    stats = run_stage("segment", cfg, **QUIET)
    assert_same_segment(output, reference)
    run_stage("shards", cfg, **QUIET)
    assert shard_bytes(output / "shards") == shard_bytes(reference / "shards")
    for step in ("segment", "shards.write"):
        assert list(faults.glob(f"failed-{step}-*")), step
        assert all(len(pids) == 2 for pids in attempts(faults, step).values()), step   # each ran again
    assert stats["accounting"]["balanced"]
    # Beam's direct runner commits the failed attempt's metrics too: the counters are not exact under
    # retries (the tables and the accounting, computed from them, are).
    assert stats["counters"]["segment.read"] > stats["accounting"]["read"]


# --- Spark local ---------------------------------------------------------------------------------------------

def test_spark_local_retries_only_with_a_failure_count(reference, tmp_path):
    """``local[2]``: a task that fails once fails the stage.  ``local[2,2]``: it is retried; the segment
    table and the shards (every shards step failing once, after writing) match the reference, and the
    counters are exact."""
    faults = tmp_path / "faults"
    plan = {"spark.executorEnv." + ENV: fault_plan(faults, fail_once=["segment", "shards"])}
    output = linked(tmp_path / "no-retry", reference, "dedup")
    stop_spark()
    try:
        cfg = config(output, "spark", spark={"master": "local[2]"})
        cfg.spark.conf = {**cfg.spark.conf, **plan}
        with pytest.raises(Exception, match="failed 1 times"):
            run_stage("segment", cfg, **QUIET)
        assert not (output / "segment").exists() and not list(output.glob(".tmp-*"))

        stop_spark()
        for marker in faults.iterdir():
            marker.unlink()
        output = linked(tmp_path / "retry", reference, "dedup", "vocab")
        cfg = config(output, "spark", spark={"master": "local[2,2]"})
        cfg.spark.conf = {**cfg.spark.conf, **plan}
        stats = run_stage("segment", cfg, **QUIET)
        assert_same_segment(output, reference)
        assert stats["counters"] == json_stats(reference, "segment")["counters"]
        shards = run_stage("shards", cfg, **QUIET)
        assert shard_bytes(output / "shards") == shard_bytes(reference / "shards")
        assert shards["counters"] == json_stats(reference, "shards")["counters"]
        for step in ("segment", "shards.tokenize", "shards.write"):
            assert list(faults.glob(f"failed-{step}-*")), step
            assert all(len(pids) == 2 for pids in attempts(faults, step).values()), step
    finally:
        stop_spark()


def json_stats(output: Path, stage: str) -> dict:
    import json

    return json.loads((output / stage / "stats.json").read_text(encoding="utf-8"))


# --- a standalone cluster loses an executor --------------------------------------------------------------------

def executor_of(cluster, pid: int) -> int | None:
    """The executor JVM a Python worker runs under (walking up its parents)."""
    executors = set(cluster.executor_pids())
    while pid > 1:
        if pid in executors:
            return pid
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return None


class Killer(threading.Thread):
    """Watches the fault hooks' markers; SIGKILLs the executor running the first attempt of ``step``."""

    def __init__(self, cluster, faults: Path, step: str) -> None:
        super().__init__(daemon=True)
        self.cluster, self.faults, self.step = cluster, faults, step
        self.killed: tuple[str, int, int] | None = None
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set() and self.killed is None:
            for key, pids in attempts(self.faults, self.step).items():
                executor = executor_of(self.cluster, pids[0])
                if executor is not None:
                    time.sleep(0.5)                       # in the middle of the attempt (it pauses 4 s)
                    self.cluster.kill_executor(executor)
                    self.killed = (key, pids[0], executor)
                    return
            time.sleep(0.1)


@pytest.mark.cluster
@needs_cluster
def test_an_executor_killed_mid_segment_and_mid_shards_loses_nothing(reference, tmp_path):
    from spark_cluster import standalone_cluster

    faults = tmp_path / "faults"
    output = linked(tmp_path / "run", reference, "dedup", "vocab")
    stop_spark()
    with standalone_cluster(workers=2, cores_per_worker=1, memory="1g") as cluster:
        try:
            cfg = config(output, "spark", spark={"master": cluster.master_url, "partitions": 4})
            cfg.spark.conf = {"spark.executor.memory": "512m", "spark.executor.cores": "1",
                              "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2",
                              "spark.executorEnv." + ENV: fault_plan(faults, pause={"segment": 4, "shards.write": 4})}
            found = {}
            for stage, step in (("segment", "segment"), ("shards", "shards.write")):
                killer = Killer(cluster, faults, step)
                killer.start()
                try:
                    stats = run_stage(stage, cfg, **QUIET)
                finally:
                    killer.done.set()
                    killer.join()
                assert killer.killed, f"no {step} task attempt was seen on an executor"
                key, worker, executor = killer.killed
                again = attempts(faults, step)[key]
                assert len(again) >= 2 and worker in again, (step, again)   # the killed attempt ran again
                assert stats["accounting"]["balanced"]
                found[stage] = stats
                print(f"{step}: SIGKILLed executor {executor} while Python worker {worker} ran task {key}; "
                      f"attempts of that task: {again}")
            redone = {key: pids for key, pids in attempts(faults, "shards.tokenize").items() if len(pids) > 1}
            print(f"shards.tokenize tasks run again after the executor was lost: {redone or 'none'}")
            assert_same_segment(output, reference)
            assert found["segment"]["counters"] == json_stats(reference, "segment")["counters"]
            assert shard_bytes(output / "shards") == shard_bytes(reference / "shards")
            for table in ("rejected", "quarantined"):
                assert rows(output / "shards", table) == rows(reference / "shards", table)
        finally:
            stop_spark()
