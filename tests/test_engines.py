"""Beam and Spark run the same stages over the same input and must write the same tables."""

import json

import pytest

from conftest import SHARED_DATA, make_config
from pipeline.config import InputSpec
from pipeline.outputs import read_table
from pipeline.sample import EXPECTED
from pipeline.stages import STAGES, DOCUMENT_STAGES, STAGE_TABLES, run_all, run_stage

SHARED_CORPORA = ["wiki2019zh_sample.jsonl", "wikiextractor_doc_sample.txt", "chinesewebtext_sample.jsonl",
                  "cmrc2018_dev.json", "drcd_dev_traditional.json"]


def sort_key(table):
    return (lambda r: (r["stage"], r["file"], r["position"])) if table == "quarantined" else (lambda r: r["id"])


def rows(output, stage, table):
    return sorted(read_table(output / stage / table, table).to_pylist(), key=sort_key(table))


@pytest.fixture(scope="module")
def shared_inputs():
    return [InputSpec(str(SHARED_DATA / "corpora" / name), "auto", None)
            for name in SHARED_CORPORA if (SHARED_DATA / "corpora" / name).exists()]


@pytest.fixture(scope="module")
def inputs(sample_inputs, shared_inputs):
    """The bundled sample, with the shared corpora when they are present (a clone without ../shared runs the
    sample alone)."""
    return sample_inputs + shared_inputs


@pytest.fixture(scope="module")
def runs(tmp_path_factory, inputs, sample_ltp_model):
    results = {}
    for engine in ("beam", "spark"):
        output = tmp_path_factory.mktemp(f"run-{engine}")
        config = make_config(output, inputs, engine, shards={"dupe_factor": 2, "shards": 3})
        config.progress = True       # the workers' progress reports are checked below
        results[engine] = (output, run_all(config, log=lambda *_: None))
    return results


@pytest.mark.parametrize("engine", ["beam", "spark"])
def test_progress_reports_cover_every_document_each_pass(runs, engine):
    output, summary = runs[engine]
    for stage, stats in summary["stages"].items():
        passes = {"dedup": {"dedup", "dedup/minhash"}}.get(stage, {stage})
        assert set(stats["progress"]) == passes, stage
        for label, reported in stats["progress"].items():
            assert reported["docs"] == stats["accounting"]["read"], (stage, label)
            assert stage == "vocab" or reported["bytes"] > 0
    assert not list(output.glob(".progress-*")) and not list(output.glob(".tmp-*"))


@pytest.mark.parametrize("stage, table", [(s, t) for s in STAGES for t in STAGE_TABLES[s]])
def test_beam_and_spark_write_the_same_rows(runs, stage, table):
    beam_rows = rows(runs["beam"][0], stage, table)
    spark_rows = rows(runs["spark"][0], stage, table)
    assert len(beam_rows) == len(spark_rows)
    for b, s in zip(beam_rows, spark_rows):
        assert b == s


@pytest.mark.parametrize("engine", ["beam", "spark"])
def test_every_document_is_accounted_for(runs, engine):
    output, summary = runs[engine]
    assert summary["accounting"]["balanced"]
    a = summary["accounting"]
    assert a["read"] == a["kept"] + a["rejected"] + a["duplicate"] + a["quarantined"]
    stages = summary["stages"]
    assert stages["clean"]["accounting"]["read"] == stages["ingest"]["accounting"]["kept"]
    assert stages["dedup"]["accounting"]["read"] == stages["clean"]["accounting"]["kept"]
    for stage in STAGES:
        stats = json.loads((output / stage / "stats.json").read_text(encoding="utf-8"))
        assert stats == stages[stage]
        assert stats["accounting"]["balanced"]
        counters = stats["counters"]
        assert counters[f"{stage}.read"] == stats["accounting"]["read"]
        assert counters.get(f"{stage}.quarantined", 0) == stats["accounting"]["quarantined"]
    clean = stages["clean"]
    assert clean["counters"]["clean.kept"] == clean["accounting"]["kept"]
    for rule, n in clean["rejected_by_rule"].items():
        assert clean["counters"][f"clean.rejected.{rule}"] == n
    dedup = stages["dedup"]
    assert dedup["counters"].get("dedup.duplicates", 0) == dedup["accounting"]["duplicate"]
    assert not list(output.glob(".tmp-*"))


def test_beam_and_spark_write_the_same_vocab_and_shards(runs, shared_inputs):
    beam, spark = runs["beam"][0], runs["spark"][0]
    assert (beam / "vocab" / "vocab.txt").read_bytes() == (spark / "vocab" / "vocab.txt").read_bytes()
    manifest = json.loads((beam / "shards" / "manifest.json").read_text(encoding="utf-8"))
    # the sample alone gives 257 instances at dupe 2, with the shared corpora several thousand
    assert manifest["instances"] > (1000 if shared_inputs else 200) and len(manifest["shards"]) == 3
    assert all(shard["instances"] > 0 for shard in manifest["shards"])
    spark_manifest = json.loads((spark / "shards" / "manifest.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in manifest.items() if k != "vocab"} == {      # "vocab": the path of each run's vocab
        k: v for k, v in spark_manifest.items() if k != "vocab"}
    for shard in manifest["shards"]:
        assert (beam / "shards" / shard["file"]).read_bytes() == (spark / "shards" / shard["file"]).read_bytes()


def test_counters_agree_across_engines(runs):
    beam, spark = (runs[e][1]["stages"] for e in ("beam", "spark"))
    for stage in STAGES:
        assert beam[stage]["counters"] == spark[stage]["counters"]


def test_sample_outcomes(runs):
    output, _ = runs["beam"]
    docs = rows(output, "dedup", "documents")
    ids = [d["id"] for d in docs]
    assert len(ids) == len(set(ids))
    duplicates = {d["id"]: d["duplicate_of"] for d in rows(output, "dedup", "duplicates")}
    for pair in EXPECTED["exact_duplicates"] + EXPECTED["normalized_duplicates"]:
        (path_a, id_a), (path_b, id_b) = pair
        a, b = f"{path_a.split('/')[0]}:{id_a}", f"{path_b.split('/')[0]}:{id_b}"
        kept, dropped = sorted([a, b])
        assert duplicates[dropped] == kept and kept in ids
    methods = {d["id"]: d["method"] for d in rows(output, "dedup", "duplicates")}
    for (path_a, title_a), (path_b, title_b) in EXPECTED["near_duplicates"]:
        found = [d for d in rows(output, "dedup", "duplicates")
                 if d["title"] in (title_a, title_b) and d["method"] == "minhash"]
        assert len(found) == 1 and found[0]["similarity"] >= 0.8, (title_a, found)
    assert set(methods.values()) <= {"exact", "minhash"}
    stats = json.loads((output / "dedup" / "stats.json").read_text(encoding="utf-8"))
    assert stats["duplicates_by_method"]["exact"] >= 2 and stats["duplicates_by_method"]["minhash"] >= 1
    assert stats["clusters"]["exact"]["clusters"] >= 2
    assert sum(n * (size - 1) for m in stats["clusters"].values() for size, n in
               ((int(k), v) for k, v in m["size_histogram"].items())) == stats["accounting"]["duplicate"]
    rejected = {r["id"]: r["rule"] for r in rows(output, "clean", "rejected")}
    for qid in EXPECTED["short_records"]["baike2018qa/baike_qa_sample.json"]:
        assert rejected[f"baike2018qa:{qid}"] == "too_short"
    quarantined = rows(output, "ingest", "quarantined")
    sample_bad = [q for q in quarantined if q["source"] in ("zhwiki", "news2016zh")]
    assert len(sample_bad) == sum(EXPECTED["malformed"].values())
    for d in docs:
        assert d["sentences"] and "-{" not in d["text"]
    segmented = rows(output, "segment", "segmented")
    assert [s["id"] for s in segmented] == ids
    for row in segmented:
        assert len(row["words"]) == len(row["sentences"])
        assert all("".join(w) == s for w, s in zip(row["words"], row["sentences"]))


def test_beam_multiprocess_workers_write_the_same_documents(tmp_path, sample_inputs, runs, sample_ltp_model):
    config = make_config(tmp_path, sample_inputs, "beam",
                         beam={"direct_num_workers": 2, "direct_running_mode": "multi_processing"})
    run_all(config, DOCUMENT_STAGES, log=lambda *_: None)
    sources = {s.source for s in sample_inputs}
    single = [r for r in rows(runs["beam"][0], "dedup", "documents") if r["source"] in sources]
    assert rows(tmp_path, "dedup", "documents") == single
    assert rows(tmp_path, "dedup", "duplicates") == [
        r for r in rows(runs["beam"][0], "dedup", "duplicates") if r["source"] in sources]
    assert rows(tmp_path, "segment", "segmented") == [
        r for r in rows(runs["beam"][0], "segment", "segmented") if r["source"] in sources]


def test_rerunning_a_stage_replaces_its_output(tmp_path, sample_inputs):
    config = make_config(tmp_path, sample_inputs[:2], "beam")
    first = run_stage("ingest", config, log=lambda *_: None)
    marker = tmp_path / "ingest" / "documents" / "stale.parquet.txt"
    marker.write_text("left from an earlier run")
    second = run_stage("ingest", config, log=lambda *_: None)
    assert first["accounting"] == second["accounting"]
    assert not marker.exists() and not list(tmp_path.glob(".tmp-*")) and not list(tmp_path.glob(".old-*"))


@pytest.mark.parametrize("engine", ["beam", "spark"])
def test_containment_finds_a_truncated_copy_on_both_engines(tmp_path, engine):
    """Issue 19.6 through each engine's dedup: an article and its copy cut to 60% are one cluster with the
    default containment rule, two documents with ``containment: 0`` (the option reaches the verification)."""
    import random

    rng = random.Random(7)
    han = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    sentences = ["".join(rng.choice(han) for _ in range(rng.randint(15, 30))) + "。" for _ in range(60)]
    article = "".join(sentences)
    docs = [{"id": "a", "title": "甲", "text": article}, {"id": "b", "title": "甲", "text": article[:int(0.6 * len(article))]},
            {"id": "c", "title": "乙", "text": "".join(sentences[::-1][:20]) + "".join(rng.choice(han) for _ in range(600))}]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    found = {}
    for containment in (0.8, 0.0):
        output = tmp_path / f"out-{containment}"
        config = make_config(output, [InputSpec(str(path), "auto", "t")], engine, dedup={"containment": containment})
        run_all(config, stages=("ingest", "clean", "dedup"), log=lambda *_: None)
        found[containment] = {(d["id"], d["duplicate_of"], d["method"])
                              for d in rows(output, "dedup", "duplicates")}
    assert found[0.8] == {("t:b", "t:a", "minhash")}
    assert found[0.0] == set()
