"""Beam's dedup through spill files (pipeline.dedup.spill): taken with a small memory bound, same tables as the
in-memory route, on the real Beam runner."""

import pytest

from conftest import make_config
from pipeline.outputs import read_table
from pipeline.stages import run_all


def _tables(output):
    found = {}
    for stage, table in [("dedup", "documents"), ("dedup", "duplicates"), ("dedup", "quarantined")]:
        rows = read_table(str(output / stage / table), table).to_pylist()
        found[table] = sorted(repr(sorted(r.items())) for r in rows)
    return found


@pytest.mark.parametrize("dedup", [{}, {"exact": False}, {"verify": "signature"}],
                         ids=["default", "near-only", "signature"])
def test_spill_path_gives_the_same_tables_as_memory(tmp_path, sample_inputs, dedup):
    results = {}
    for route, memory_mb in (("memory", 0), ("spill", 0.001)):
        output = tmp_path / route
        config = make_config(output, sample_inputs, "beam", dedup={**dedup, "memory_mb": memory_mb})
        stats = run_all(config, stages=("ingest", "clean", "dedup"), log=lambda *_: None)
        counters = stats["stages"]["dedup"]["counters"]
        results[route] = (_tables(output), {k: v for k, v in counters.items() if not k.startswith("dedup.spill.")})
        spilled = counters.get("dedup.spill.band_partitions", 0) + counters.get("dedup.spill.key_partitions", 0)
        assert (spilled > 0) == (route == "spill"), counters
    assert results["spill"] == results["memory"]
    assert results["memory"][0]["duplicates"]      # the sample has duplicates: the comparison is not vacuous


def test_spark_dedup_tasks_grow_with_the_input_and_give_the_same_tables(tmp_path, sample_inputs):
    """Spark's dedup takes one task per ``spark.partition_mb`` of its input (so a task's share of the exact-key and
    band shuffles stays bounded as the input grows): many small tasks give the tables that four tasks give."""
    from pipeline.outputs import parquet_files, table_bytes

    results, parts = {}, {}
    for route, partition_mb in (("default", 0), ("scaled", None)):
        output = tmp_path / route
        config = make_config(output, sample_inputs, "spark")
        run_all(config, stages=("ingest", "clean"), log=lambda *_: None)
        source = str(output / "clean" / "documents")
        # about 16 tasks for the sample (the default is two per core: 4 on local[2])
        config.spark.partition_mb = partition_mb if partition_mb is not None else table_bytes(source) / 16 / 2**20
        stats = run_all(config, stages=("dedup",), log=lambda *_: None)
        results[route] = (_tables(output), stats["stages"]["dedup"]["counters"])
        parts[route] = {p.rsplit("/", 1)[-1].split(".")[0] for p in parquet_files(str(output / "dedup" / "duplicates"))}
    assert results["scaled"] == results["default"]
    assert results["default"][0]["duplicates"]
    assert max(int(p.split("-")[1]) for p in parts["scaled"]) >= 4 > max(int(p.split("-")[1]) for p in parts["default"]), parts
