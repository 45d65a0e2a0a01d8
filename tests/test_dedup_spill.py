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
