"""n-gram and span masking, per-source mixing weights and Parquet shards, on the shared corpora.

The segmented table is made from the shared corpora (wiki2019zh as ``wiki``, CMRC 2018 as ``cmrc``,
ChineseWebText as ``web``) with the real stages and jieba; the shards are parsed back with TensorFlow and
google's feature spec, the Parquet shards read with pyarrow, pandas, DuckDB and Hugging Face datasets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from conftest import make_config, shared_file  # noqa: E402
from pipeline.config import InputSpec, ShardOptions  # noqa: E402
from pipeline.shards import manifest as shard_manifest  # noqa: E402
from pipeline.shards import units  # noqa: E402
from pipeline.shards.builder import ShardBuilder, write_shard  # noqa: E402
from pipeline.shards.batch import replacement_ids  # noqa: E402
from pipeline.shards.tokens import TokenizedDocument  # noqa: E402
from pipeline.stages import DOCUMENT_STAGES, run_all, run_stage  # noqa: E402
from pipeline.vocab.wordpiece import is_cjk, read_vocab  # noqa: E402

SOURCES = {"wiki": "wiki2019zh_sample.jsonl", "cmrc": "cmrc2018_dev.json", "web": "chinesewebtext_sample.jsonl"}
WEIGHTS = {"wiki": 2.0, "web": 0.5}
MIXED = {"masking": "ngram", "dupe_factor": 5, "shards": 3, "weights": WEIGHTS}


def parse(directory: Path, unmasked: bool = False) -> dict[str, np.ndarray]:
    """Every instance of every TFRecord shard, in shard order, parsed with tf.io.parse_example."""
    manifest = shard_manifest.read(directory)
    spec = {name: tf.io.FixedLenFeature([length], tf.int64 if dtype == "int64" else tf.float32)
            for name, dtype, length in shard_manifest.feature_lengths(unmasked, manifest["max_seq_length"],
                                                                      manifest["max_predictions_per_seq"])}
    files = [str(directory / s["file"]) for s in manifest["shards"]]
    parts = {name: [] for name in spec}
    for batch in tf.data.TFRecordDataset(files).batch(4096).map(lambda x: tf.io.parse_example(x, spec)):
        for name in spec:
            parts[name].append(batch[name].numpy())
    return {name: np.concatenate(values) for name, values in parts.items()}


@pytest.fixture(scope="module")
def vocab_path():
    return shared_file("reference", "bert_base_chinese_vocab.txt")


@pytest.fixture(scope="module")
def vocab(vocab_path):
    entries = read_vocab(vocab_path)
    return {"entries": entries, "mask": entries.index("[MASK]"),
            "cjk_continuations": np.array([i for i, e in enumerate(entries)
                                           if e.startswith("##") and len(e) == 3 and is_cjk(e[2])])}


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    inputs = [InputSpec(str(shared_file("corpora", name)), "auto", source) for source, name in SOURCES.items()]
    output = tmp_path_factory.mktemp("schemes-run")
    run_all(make_config(output, inputs, "beam", segment={"segmenter": "jieba"}), DOCUMENT_STAGES,
            log=lambda *_: None)
    return output


def shards(segmented, tmp_path_factory, vocab_path, engine="beam", beam=None, **options) -> Path:
    output = tmp_path_factory.mktemp(f"schemes-{engine}")
    (output / "segment").symlink_to(segmented / "segment")
    config = make_config(output, [], engine, shards={"vocab": str(vocab_path), **options}, **({"beam": beam}
                                                                                              if beam else {}))
    run_stage("shards", config, log=lambda *_: None)
    return output / "shards"


@pytest.fixture(scope="module")
def mixed(segmented, tmp_path_factory, vocab_path):
    """ngram masking, weights {wiki 2.0, web 0.5}, TFRecord and Parquet shards (Beam, one worker)."""
    return shards(segmented, tmp_path_factory, vocab_path, format="both", **MIXED)


@pytest.fixture(scope="module")
def span(segmented, tmp_path_factory, vocab_path):
    return shards(segmented, tmp_path_factory, vocab_path, masking="span", dupe_factor=5, shards=2)


@pytest.fixture(scope="module")
def parsed(mixed, span):
    return {"ngram": parse(mixed), "span": parse(span)}


# --- invariants of every scheme ---------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["ngram", "span"])
def test_no_cjk_continuation_in_labels_or_inputs(parsed, vocab, scheme):
    got = parsed[scheme]
    labels = got["masked_lm_ids"][got["masked_lm_weights"] > 0]
    assert len(labels) > 100_000
    assert not np.isin(labels, vocab["cjk_continuations"]).any()
    assert not np.isin(got["input_ids"], vocab["cjk_continuations"]).any()     # random replacements included


@pytest.mark.parametrize("scheme", ["ngram", "span"])
def test_masked_share_eighty_ten_ten_and_next_sentence(parsed, mixed, span, vocab, scheme):
    directory = {"ngram": mixed, "span": span}[scheme]
    manifest = shard_manifest.read(directory)
    assert abs(manifest["masked_tokens"] / manifest["tokens"] - 0.15) <= 0.01
    got = parsed[scheme]
    rows, cols = np.nonzero(got["masked_lm_weights"] > 0)
    positions = got["masked_lm_positions"][rows, cols]
    shown = got["input_ids"][rows, positions]
    labels = got["masked_lm_ids"][rows, cols]
    masked, kept = (shown == vocab["mask"]).mean(), (shown == labels).mean()
    replaced = 1 - masked - kept
    assert abs(masked - 0.8) <= 0.01 and abs(kept - 0.1) <= 0.01 and abs(replaced - 0.1) <= 0.01, \
        (masked, kept, replaced)
    assert set(shown[(shown != vocab["mask"]) & (shown != labels)].tolist()) <= set(replacement_ids(vocab["entries"]))
    share = manifest["next_sentence"]["random_share"]
    assert abs(share - 0.5) <= 0.02 and int(got["next_sentence_labels"].sum()) == manifest["next_sentence"]["random"]


def test_ngram_units_are_whole_words_in_one_segment(mixed, parsed, segmented, tmp_path_factory, vocab_path):
    """The same instances unmasked (word ids): every masked word is masked whole, never [CLS]/[SEP]."""
    plain = parse(shards(segmented, tmp_path_factory, vocab_path, unmasked=True, **MIXED), unmasked=True)
    got = parsed["ngram"]
    assert np.array_equal(plain["segment_ids"], got["segment_ids"])
    words = plain["word_ids"]
    for row in range(0, len(words), 7):
        count = int(got["masked_lm_weights"][row].sum())
        positions = got["masked_lm_positions"][row][:count]
        assert count > 0 and (words[row, positions] > 0).all()
        masked_words = set(words[row, positions].tolist())
        assert np.isin(words[row], list(masked_words)).sum() == count, f"instance {row}: a word masked in part"
        assert np.array_equal(got["masked_lm_ids"][row][:count], plain["input_ids"][row][positions])


@pytest.fixture(scope="module")
def pool_units(segmented, vocab_path):
    """Unit lengths of every instance masked from the segmented shared corpora (the benchmark's text), per
    scheme and sequence length, straight from the shards core."""
    import pyarrow.dataset as ds

    table = ds.dataset(str(segmented / "segment" / "segmented")).to_table()

    def measure(scheme: str, length: int, predictions: int):
        options = ShardOptions(masking=scheme, dupe_factor=2, max_seq_length=length,
                               max_predictions_per_seq=predictions)
        builder = ShardBuilder(options, str(vocab_path))
        docs = [d for d in builder.tokenize_table(table) if isinstance(d, TokenizedDocument)]
        masker, sizes = builder.encoder.masker, []
        inner = masker.mask_batch

        def spy(*args):
            out = inner(*args)
            sizes.append(masker.last_unit_sizes.copy())
            return out

        masker.mask_batch = spy
        figures = np.concatenate([builder.pool_instances(docs[k:k + 128]).figures for k in range(0, len(docs), 128)])
        return np.concatenate(sizes), figures[:, 1].sum() / figures[:, 0].sum(), units.of_options(options)

    return measure


def test_ngram_unit_lengths_follow_the_configured_distribution(pool_units):
    sizes, share, wanted = pool_units("ngram", 128, 20)
    got = units.unit_histogram(sizes, len(wanted)) / len(sizes)
    assert len(sizes) > 50_000
    assert np.abs(got - wanted).max() <= 0.02, (got, wanted)
    assert abs(share - 0.15) <= 0.01


@pytest.mark.parametrize("length,predictions", [(128, 20), (512, 80)])
def test_span_mean_length_is_the_clipped_geometric_mean(pool_units, length, predictions):
    sizes, share, wanted = pool_units("span", length, predictions)
    mean = units.mean_length(wanted)                              # 3.8 words
    assert abs(sizes.mean() - mean) <= 0.05 * mean, (sizes.mean(), mean)
    assert abs(share - 0.15) <= 0.01


# --- mixing weights -----------------------------------------------------------------------------------------

def test_each_source_share_of_shard_tokens_follows_its_weight(mixed):
    manifest = shard_manifest.read(mixed)
    sources = manifest["sources"]
    assert set(sources) == set(SOURCES)
    weighted = {s: WEIGHTS.get(s, 1.0) * v["tokens"] for s, v in sources.items()}
    total = sum(weighted.values())
    for source, figures in sources.items():
        expected = weighted[source] / total
        assert figures["weight"] == WEIGHTS.get(source, 1.0)
        for field in ("weighted_tokens_share", "instance_tokens_share", "own_tokens_share"):
            assert abs(figures[field] / expected - 1) <= 0.02, (source, field, figures[field], expected)
    assert sum(v["instances"] for v in sources.values()) == manifest["instances"]
    assert sum(v["instance_tokens"] for v in sources.values()) == manifest["tokens"]
    assert sum(v["own_tokens"] for v in sources.values()) == manifest["document_tokens_in_instances"]
    assert sum(v["documents"] for v in sources.values()) == manifest["documents"]
    # wiki documents are each there twice; about half of the web documents are
    assert sources["wiki"]["weighted_documents"] == 2 * sources["wiki"]["documents"]
    assert 0.4 < sources["web"]["weighted_documents"] / sources["web"]["documents"] < 0.6
    assert sources["cmrc"]["weighted_documents"] == sources["cmrc"]["documents"]
    assert manifest["document_tokens_in_instances"] + manifest["truncated_tokens"] == 5 * sum(
        v["weighted_tokens"] for v in sources.values())


def test_same_bytes_on_beam_and_spark_at_one_and_two_workers(mixed, segmented, tmp_path_factory, vocab_path):
    spark = shards(segmented, tmp_path_factory, vocab_path, "spark", format="both", **MIXED)
    beam2 = shards(segmented, tmp_path_factory, vocab_path, "beam", format="both",
                   beam={"direct_num_workers": 2, "direct_running_mode": "multi_processing"}, **MIXED)
    reference = shard_manifest.read(mixed)
    for other in (spark, beam2):
        manifest = shard_manifest.read(other)
        assert manifest["shards"] == reference["shards"]
        assert manifest["sources"] == reference["sources"]
        for shard in reference["shards"]:
            for name in (shard["file"], shard["parquet_file"]):
                assert (other / name).read_bytes() == (mixed / name).read_bytes(), name


# --- Parquet ------------------------------------------------------------------------------------------------

def test_parquet_shards_hold_the_tfrecord_instances_field_by_field(mixed, parsed):
    import duckdb
    import pandas as pd
    import pyarrow.parquet as pq

    manifest = shard_manifest.read(mixed)
    files = [str(mixed / s["parquet_file"]) for s in manifest["shards"]]
    table = pq.read_table(files[0]).schema
    assert table.metadata[b"wwm.schema"] == b"parquet_instances"
    columns = {}
    for path in files:
        part = pq.read_table(path)
        for name in part.column_names:
            columns.setdefault(name, []).append(part.column(name).to_pylist())
    got = parsed["ngram"]
    assert set(columns) == set(got)
    for name, expected in got.items():
        values = np.array([v for chunk in columns[name] for v in chunk], dtype=expected.dtype)
        assert np.array_equal(values.reshape(expected.shape), expected), name
    frame = pd.concat([pd.read_parquet(path) for path in files])
    assert len(frame) == manifest["instances"]
    assert np.array_equal(np.stack(frame["input_ids"].to_numpy()), got["input_ids"])
    glob = str(mixed / "*.parquet")
    count, labels = duckdb.sql(f"select count(*), sum(next_sentence_labels) from read_parquet('{glob}')").fetchall()[0]
    assert (count, labels) == (manifest["instances"], manifest["next_sentence"]["random"])
    masked = duckdb.sql(f"select sum(list_sum(masked_lm_weights)) from read_parquet('{glob}')").fetchall()[0][0]
    assert masked == manifest["masked_tokens"]
    # Hugging Face datasets, in a process of its own (no TensorFlow there)
    script = ("import json, sys, datasets\n"
              "ds = datasets.load_dataset('parquet', data_files=sys.argv[1:], split='train')\n"
              "print(json.dumps({'rows': ds.num_rows, 'columns': ds.column_names, "
              "'first': ds[0]['input_ids'], 'masked': sum(sum(w) for w in ds['masked_lm_weights'])}))\n")
    out = subprocess.run([sys.executable, "-c", script, *files], capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "HF_DATASETS_OFFLINE": "1", "USE_TORCH": "0",
                              "USE_TF": "0", "HF_HOME": str(mixed.parent / "hf")})
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["rows"] == manifest["instances"] and set(loaded["columns"]) == set(got)
    assert loaded["first"] == got["input_ids"][0].tolist() and loaded["masked"] == manifest["masked_tokens"]


def test_parquet_only_writes_no_tfrecord(segmented, vocab_path, tmp_path):
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    table = ds.dataset(str(segmented / "segment" / "segmented")).to_table().slice(0, 200)
    options = ShardOptions(masking="span", dupe_factor=1, format="parquet", unmasked=False)
    builder = ShardBuilder(options, str(vocab_path))
    docs = [d for d in builder.tokenize_table(table) if isinstance(d, TokenizedDocument)]
    records = builder.pool_instances(docs)
    summary = write_shard(tmp_path, 0, 1, [records], options)
    assert summary["file"] == "part-00000-of-00001.parquet" and summary["instances"] == len(records)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-00000-of-00001.parquet"]
    assert pq.read_table(tmp_path / summary["file"]).num_rows == len(records)


# --- the runner's dynamic masking ---------------------------------------------------------------------------

def test_runner_masks_unmasked_shards_with_ngram_units(segmented, tmp_path_factory, vocab_path, vocab):
    from pipeline.pretrain.data import Masking, make_dataset

    directory = shards(segmented, tmp_path_factory, vocab_path, unmasked=True, masking="ngram", dupe_factor=1,
                       shards=1)
    manifest = shard_manifest.read(directory)
    masking = Masking.from_manifest(manifest, str(vocab_path))
    assert masking.units == pytest.approx([0.4, 0.3, 0.2, 0.1])
    plain = parse(directory, unmasked=True)
    data = make_dataset(directory, manifest, batch_size=256, shuffle_buffer=1, masking=masking, prefetch=False)
    masked = real = mask_shown = total = 0
    by_ids = {tuple(row): k for k, row in enumerate(plain["input_ids"].tolist())}
    for batch in data.take(20):
        weights = batch["masked_lm_weights"].numpy()
        positions = batch["masked_lm_positions"].numpy()
        labels = batch["masked_lm_ids"].numpy()
        shown = batch["input_ids"].numpy()
        for b in range(len(weights)):
            count = int(weights[b].sum())
            rows = positions[b][:count]
            original = shown[b].copy()
            original[rows] = labels[b][:count]
            row = by_ids[tuple(original.tolist())]
            word_ids = plain["word_ids"][row]
            assert (word_ids[rows] > 0).all()
            assert np.isin(word_ids, word_ids[rows]).sum() == count       # whole words
            masked += count
            real += int(batch["input_mask"][b].numpy().sum()) - 1 - (int(batch["segment_ids"][b].numpy().max()) + 1)
            mask_shown += int((shown[b][rows] == vocab["mask"]).sum())
            total += count
    assert abs(masked / real - 0.15) <= 0.015
    assert abs(mask_shown / total - 0.8) <= 0.03
