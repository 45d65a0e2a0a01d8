"""The shards stage on real shared text: TFRecords parsed back with TensorFlow, every invariant of the issue.

One segmented table is built from the shared corpora (wiki2019zh, CMRC 2018, ChineseWebText) with the real
stages and the jieba segmenter; the shards are made from it with Google's Chinese vocab on Beam and on Spark.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from array import array
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from conftest import SHARED_DATA, make_config, shared_file  # noqa: E402
from pipeline.config import InputSpec, ShardOptions  # noqa: E402
from pipeline.shards import manifest as shard_manifest  # noqa: E402
from pipeline.shards.builder import (STAT_FIELDS, Kept, ShardBuilder, document_sections,  # noqa: E402
                                     load_documents, load_section, pool_sections,
                                     rebalance, shard_targets, split_shard, write_shard)
from pipeline.shards.instances import bert_table, pool_tokens  # noqa: E402
from pipeline.shards.batch import replacement_ids  # noqa: E402
from pipeline.shards.seeds import copy_seeds, document_values  # noqa: E402
from pipeline.shards.spill import (Records, SpillError, read_section, read_section_keys,  # noqa: E402
                                   read_section_records, select, write_sections)
from pipeline.shards.tfrecord import read_records  # noqa: E402
from pipeline.shards.tokens import CONT, START, DocumentTokenizer, TokenizedDocument  # noqa: E402
from pipeline.stages import DOCUMENT_STAGES, run_all, run_stage  # noqa: E402
from pipeline.vocab.wordpiece import is_cjk, read_vocab  # noqa: E402

CORPORA = ["wiki2019zh_sample.jsonl", "cmrc2018_dev.json", "chinesewebtext_sample.jsonl"]
VOCAB_PARTS = ("reference", "bert_base_chinese_vocab.txt")


def parse_shards(directory: Path, unmasked: bool = False) -> dict[str, np.ndarray]:
    """Every instance of every shard, in shard order, parsed with tf.data + tf.io.parse_example."""
    manifest = shard_manifest.read(directory)
    spec = {}
    for name, dtype, length in shard_manifest.feature_lengths(unmasked, manifest["max_seq_length"],
                                                              manifest["max_predictions_per_seq"]):
        spec[name] = tf.io.FixedLenFeature([length], tf.int64 if dtype == "int64" else tf.float32)
    files = [str(directory / s["file"]) for s in manifest["shards"]]
    parts = {name: [] for name in spec}
    for batch in tf.data.TFRecordDataset(files).batch(4096).map(lambda x: tf.io.parse_example(x, spec)):
        for name in spec:
            parts[name].append(batch[name].numpy())
    return {name: np.concatenate(values) if values else np.zeros((0, 1)) for name, values in parts.items()}


class Corpus(NamedTuple):
    """The input of these tests and the least each figure must reach on it (so a test cannot pass on next to
    nothing): the shared corpora when present, else the bundled sample (a clone without ../shared)."""

    name: str
    inputs: list
    instances: int            # instances checked for whole-word masking (dupe 5)
    multi_token_words: int    # masked words of two or more tokens (dupe 5)
    predictions: int          # masked positions counted for 80/10/10 (dupe 5)
    token_mode_words: int     # multi-token masked words at dupe 1 (per-token decisions)
    sentences: int            # sentences the fast encoder is checked on


def tolerance(floor: float, p: float, n: int) -> float:
    """How far a share drawn ``n`` times with probability ``p`` may be from ``p``: ``floor``, or four standard
    errors where ``n`` is too small for it (the bundled sample); on the shared corpora it is ``floor``."""
    return max(floor, 4 * math.sqrt(p * (1 - p) / max(n, 1)))


@pytest.fixture(scope="module")
def corpus(sample_inputs) -> Corpus:
    paths = [SHARED_DATA / "corpora" / name for name in CORPORA]
    if all(path.exists() for path in paths):
        return Corpus("shared", [InputSpec(str(path), "auto", None) for path in paths],
                      instances=10_000, multi_token_words=10_000, predictions=100_000, token_mode_words=1_000,
                      sentences=2_000)
    # the sample gives 636 instances, 3,252 multi-token masked words, 9,534 predictions, 627 multi-token words
    # at dupe 1 and 291 raw lines
    return Corpus("sample", list(sample_inputs), instances=500, multi_token_words=2_500, predictions=8_000,
                  token_mode_words=400, sentences=250)


@pytest.fixture(scope="module")
def segmented_run(tmp_path_factory, corpus):
    """OUTPUT/segment/segmented from the shared corpora, or the bundled sample (real stages, jieba)."""
    output = tmp_path_factory.mktemp("shards-run")
    config = make_config(output, corpus.inputs, "beam", segment={"segmenter": "jieba"})
    run_all(config, DOCUMENT_STAGES, log=lambda *_: None)
    return output


@pytest.fixture(scope="module")
def google_vocab():
    """Google's bert-base-chinese vocab (shared reference data): for the facts that are about that vocab."""
    return shared_file(*VOCAB_PARTS)


@pytest.fixture(scope="module")
def vocab_path(segmented_run, tmp_path_factory):
    """Google's vocab when the shared data has it, else one our vocab stage trains on the segmented corpus."""
    google = SHARED_DATA.joinpath(*VOCAB_PARTS)
    if google.exists():
        return google
    output = tmp_path_factory.mktemp("shards-vocab")
    (output / "segment").symlink_to(segmented_run / "segment")
    run_stage("vocab", make_config(output, [], "beam"), log=lambda *_: None)
    return output / "vocab" / "vocab.txt"


def shards_run(segmented_run, tmp_path_factory, vocab_path, engine="beam", **options) -> Path:
    """The shards stage into a fresh output directory that links the segment stage's output."""
    output = tmp_path_factory.mktemp(f"shards-{engine}")
    (output / "segment").symlink_to(segmented_run / "segment")
    config = make_config(output, [], engine, shards={"vocab": str(vocab_path), **options})
    run_stage("shards", config, log=lambda *_: None)
    return output / "shards"


@pytest.fixture(scope="module")
def bert(segmented_run, tmp_path_factory, vocab_path):
    return shards_run(segmented_run, tmp_path_factory, vocab_path, dupe_factor=5, shards=3)


@pytest.fixture(scope="module")
def bert_unmasked(segmented_run, tmp_path_factory, vocab_path):
    return shards_run(segmented_run, tmp_path_factory, vocab_path, dupe_factor=5, shards=3, unmasked=True)


@pytest.fixture(scope="module")
def parsed(bert):
    return parse_shards(bert)


@pytest.fixture(scope="module")
def parsed_unmasked(bert_unmasked):
    return parse_shards(bert_unmasked, unmasked=True)


@pytest.fixture(scope="module")
def vocab(vocab_path):
    entries = read_vocab(vocab_path)
    return {"entries": entries, "index": {e: i for i, e in enumerate(entries)},
            "cjk_continuations": {i for i, e in enumerate(entries) if e.startswith("##") and len(e) == 3
                                  and is_cjk(e[2])}}


def real_positions(parsed):
    return parsed["masked_lm_weights"] > 0


# --- the TFRecords themselves -------------------------------------------------------------------------------

def test_every_shard_parses_and_matches_the_manifest(bert, parsed):
    manifest = shard_manifest.read(bert)
    assert len(manifest["shards"]) == 3
    assert parsed["input_ids"].shape == (manifest["instances"], 128)
    assert parsed["masked_lm_positions"].shape == (manifest["instances"], 20)
    for shard in manifest["shards"]:
        data = (bert / shard["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard["sha256"]
        assert sum(1 for _ in read_records(str(bert / shard["file"]))) == shard["instances"]
    # real tokens plus [CLS] A [SEP] B [SEP] (no B and one [SEP] fewer in a single-segment instance)
    assert int(parsed["input_mask"].sum()) == (manifest["tokens"] + 3 * manifest["instances"]
                                               - manifest["single_segment_instances"])
    assert int(real_positions(parsed).sum()) == manifest["masked_tokens"]


def test_tensorflow_reads_our_example_bytes_like_its_own(bert):
    """Our hand-written Example encoding equals what tf.train.Example parses and re-serializes."""
    record = next(read_records(str(bert / "part-00000-of-00003.tfrecord")))
    example = tf.train.Example.FromString(record)
    names = list(example.features.feature.keys())
    assert set(names) == {"input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
                          "masked_lm_weights", "next_sentence_labels"}
    again = tf.train.Example.FromString(example.SerializeToString())
    assert again == example
    assert len(example.features.feature["input_ids"].int64_list.value) == 128
    assert len(example.features.feature["masked_lm_weights"].float_list.value) == 20


def test_shard_sizes_differ_by_at_most_one(bert):
    counts = [s["instances"] for s in shard_manifest.read(bert)["shards"]]
    assert max(counts) - min(counts) <= 1
    assert sum(counts) == shard_manifest.read(bert)["instances"]


def test_rebalance_plan_moves_only_the_surplus():
    counts = {0: 10, 1: 3, 2: 7, 3: 0}
    targets = shard_targets(20, 4)
    assert targets == [5, 5, 5, 5]
    plan = rebalance(counts, 4)
    assert plan == {0: [(1, 2), (3, 3)], 2: [(3, 2)]}
    moved_in = {s: 0 for s in range(4)}
    for moves in plan.values():
        for dest, n in moves:
            moved_in[dest] += n
    final = [min(counts[s], targets[s]) + moved_in[s] for s in range(4)]
    assert final == targets


# --- masking ------------------------------------------------------------------------------------------------

def test_every_masked_word_is_masked_whole(parsed, parsed_unmasked, corpus):
    """Masked and unmasked runs hold the same instances in the same order; the unmasked one has word ids."""
    assert np.array_equal(parsed["input_mask"], parsed_unmasked["input_mask"])
    assert np.array_equal(parsed["segment_ids"], parsed_unmasked["segment_ids"])
    words = parsed_unmasked["word_ids"]
    checked = multi = 0
    for row in range(words.shape[0]):
        count = int(parsed["masked_lm_weights"][row].sum())
        positions = set(parsed["masked_lm_positions"][row][:count].tolist())
        masked_words = {int(words[row, p]) for p in positions}
        assert 0 not in masked_words, "a [CLS]/[SEP] position was masked"
        for word in masked_words:
            members = set(np.flatnonzero(words[row] == word).tolist())
            assert members <= positions, f"instance {row}: word {word} masked in part"
            multi += len(members) > 1
        checked += 1
        # labels are the unmasked ids
        assert np.array_equal(parsed["masked_lm_ids"][row][:count],
                              parsed_unmasked["input_ids"][row][sorted(positions)])
    assert checked > corpus.instances and multi > corpus.multi_token_words


def test_no_label_and_no_input_is_a_cjk_continuation(parsed, vocab):
    bad = np.array(sorted(vocab["cjk_continuations"]))
    labels = parsed["masked_lm_ids"][real_positions(parsed)]
    assert not np.isin(labels, bad).any()
    assert not np.isin(parsed["input_ids"], bad).any()


def test_masked_share_is_masked_lm_prob(bert):
    manifest = shard_manifest.read(bert)
    share = manifest["masked_tokens"] / manifest["tokens"]
    assert abs(share - 0.15) <= 0.01, share


def test_eighty_ten_ten_over_100k_predictions(bert, parsed, parsed_unmasked, vocab, corpus):
    """100k predictions and more on the shared corpora; on the sample the bound is four standard errors over its
    masked words (the 80/10/10 choice is made per word)."""
    weights = real_positions(parsed)
    rows, cols = np.nonzero(weights)
    positions = parsed["masked_lm_positions"][rows, cols]
    shown = parsed["input_ids"][rows, positions]
    labels = parsed["masked_lm_ids"][rows, cols]
    total = len(labels)
    assert total >= corpus.predictions
    words = shard_manifest.read(bert)["masked_words"]
    mask_id = vocab["index"]["[MASK]"]
    masked = (shown == mask_id).mean()
    kept = (shown == labels).mean()
    replaced = ((shown != mask_id) & (shown != labels)).mean()
    assert (abs(masked - 0.8) <= tolerance(0.02, 0.8, words) and abs(kept - 0.1) <= tolerance(0.02, 0.1, words)
            and abs(replaced - 0.1) <= tolerance(0.02, 0.1, words)), (masked, kept, replaced, words)
    replacements = set(replacement_ids(vocab["entries"]))
    drawn = shown[(shown != mask_id) & (shown != labels)]
    assert set(drawn.tolist()) <= replacements


def test_random_replacements_never_specials_or_cjk_continuations(google_vocab):
    entries = read_vocab(google_vocab)
    vocab = {"index": {e: i for i, e in enumerate(entries)},
             "cjk_continuations": {i for i, e in enumerate(entries) if e.startswith("##") and len(e) == 3
                                   and is_cjk(e[2])}}
    pool = replacement_ids(entries)
    assert not any(entries[i].startswith("[") and entries[i].endswith("]") for i in pool)
    assert not set(pool) & vocab["cjk_continuations"]
    assert vocab["index"]["<S>"] not in pool and vocab["index"]["##s"] in pool
    assert vocab["index"]["中"] in pool and vocab["index"]["，"] in pool
    # Google's vocab: 9,614 ## entries, 7,322 of them CJK continuations; about 13k ids are drawable
    assert 11_000 < len(pool) < 14_000


def test_word_decision_is_one_choice_per_word(parsed, parsed_unmasked, segmented_run, tmp_path_factory,
                                              vocab_path, vocab, corpus):
    mask_id = vocab["index"]["[MASK]"]

    def mixed_words(masked, unmasked):
        mixed = total = 0
        for row in range(masked["input_ids"].shape[0]):
            count = int(masked["masked_lm_weights"][row].sum())
            positions = masked["masked_lm_positions"][row][:count]
            groups = {}
            for p in positions.tolist():
                groups.setdefault(int(unmasked["word_ids"][row, p]), []).append(
                    int(masked["input_ids"][row, p]) == mask_id)
            for flags in groups.values():
                if len(flags) > 1:
                    total += 1
                    mixed += len(set(flags)) > 1
        return mixed, total

    mixed, total = mixed_words(parsed, parsed_unmasked)
    assert total > corpus.multi_token_words and mixed == 0
    token = parse_shards(shards_run(segmented_run, tmp_path_factory, vocab_path, dupe_factor=1, shards=1,
                                    mask_decision="token"))
    token_unmasked = parse_shards(shards_run(segmented_run, tmp_path_factory, vocab_path, dupe_factor=1, shards=1,
                                             unmasked=True), unmasked=True)
    mixed, total = mixed_words(token, token_unmasked)
    assert total > corpus.token_mode_words and 0.2 < mixed / total < 0.6      # per-token 80/10/10 mixes inside words


# --- instances ----------------------------------------------------------------------------------------------

def test_next_sentence_labels_are_balanced(bert, parsed):
    counts = shard_manifest.read(bert)["next_sentence"]
    assert int(parsed["next_sentence_labels"].sum()) == counts["random"]
    n = counts["random"] + counts["actual"]
    assert abs(counts["random"] / n - 0.5) <= tolerance(0.02, 0.5, n), (counts, n)


def test_no_token_is_lost_except_the_truncated(bert, segmented_run, vocab_path):
    """Tokens counted independently (tokenizers' own BertWordPieceTokenizer over the segmented sentences)."""
    from tokenizers import BertWordPieceTokenizer

    from pipeline.outputs import read_table

    manifest = shard_manifest.read(bert)
    tokenizer = BertWordPieceTokenizer(str(vocab_path), lowercase=True)
    sentences = [s for row in read_table(segmented_run / "segment" / "segmented", "segmented",
                                         ["sentences"]).column("sentences").to_pylist() for s in row]
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(sentences, add_special_tokens=False))
    assert manifest["document_tokens"] == tokens
    assert manifest["document_tokens_in_instances"] + manifest["truncated_tokens"] == 5 * tokens
    assert manifest["truncated_tokens"] < 0.05 * 5 * tokens


def test_roberta_mode_packs_across_documents_and_loses_nothing(segmented_run, tmp_path_factory, vocab_path, vocab):
    out = shards_run(segmented_run, tmp_path_factory, vocab_path, mode="roberta", dupe_factor=2, shards=2,
                     max_seq_length=512, max_predictions_per_seq=80)
    manifest = shard_manifest.read(out)
    parsed = parse_shards(out)
    assert manifest["tokens"] == 2 * manifest["document_tokens"] and manifest["truncated_tokens"] == 0
    assert not parsed["next_sentence_labels"].any() and not parsed["segment_ids"].any()
    sep = vocab["index"]["[SEP]"]
    lengths = parsed["input_mask"].sum(axis=1)
    inner_sep = [(row[1:n - 1] == sep).any() for row, n in zip(parsed["input_ids"], lengths)]
    assert sum(inner_sep) > 0.3 * len(inner_sep)          # documents joined with [SEP] inside instances
    assert np.median(lengths) > 450                         # packed close to the maximum


def test_random_next_comes_from_another_document():
    """Synthetic documents whose tokens name their document: a random B never holds its own document's ids."""
    docs = []
    for d in range(6):
        lengths = [random.Random(d * 100 + s).randint(3, 12) for s in range(10)]
        sentences = [(array("i", [1000 + d] * n), bytes([START] * n)) for n in lengths]
        docs.append(TokenizedDocument.of_sentences(f"d{d}", sentences))
    pool = pool_tokens(docs)
    copies = 20
    seeds = copy_seeds(np.tile(document_values(3, pool.doc_ids), copies), np.repeat(np.arange(copies), len(docs)))
    table = bert_table(pool, seeds, 32, 0.1)
    randoms, at, own = 0, 0, [0] * len(docs)
    counts, random_next, figures = table.range_counts.tolist(), table.is_random_next.tolist(), table.figures.tolist()
    instance = 0
    for doc_id, copy, made, _ in table.runs:
        position = pool.doc_ids.index(doc_id)
        for _ in range(made):
            ranges = table.ranges[at:at + counts[instance]].tolist()
            at += counts[instance]
            a_start, a_end, _ = ranges[0]
            assert set(pool.ids[a_start:a_end].tolist()) == {1000 + position}
            b = pool.ids[ranges[1][0]:ranges[1][1]].tolist() if len(ranges) > 1 else []
            if random_next[instance]:
                randoms += 1
                assert b and 1000 + position not in b
            else:
                assert set(b) <= {1000 + position}
            own[position] += figures[instance][0] + figures[instance][1]
            instance += 1
    assert instance == len(table) and at == len(table.ranges)
    for position in range(len(docs)):
        assert own[position] == copies * sum(len(ids) for ids, _ in docs[position].sentences)  # every token, every copy
    assert randoms > 100


def test_whole_word_groups_follow_the_segmenter_and_wordpiece(google_vocab):
    vocab_path = google_vocab
    tokenizer = DocumentTokenizer(str(vocab_path))
    doc = tokenizer.tokenize("x", ["我爱北京天安门", "iPhone12很好用"],
                             [["我", "爱", "北京", "天安门"], ["iPhone", "12", "很", "好用"]])
    (ids1, flags1), (ids2, flags2) = doc.sentences
    assert list(flags1) == [START, START, START, CONT, START, CONT, CONT]
    entries = read_vocab(vocab_path)
    assert [entries[i] for i in ids2] == ["iphone", "##12", "很", "好", "用"]
    assert list(flags2) == [START, CONT, START, START, CONT]       # ##12 stays with iphone
    plain = DocumentTokenizer(str(vocab_path), whole_word=False).tokenize("x", ["我爱北京"], [["我", "爱", "北京"]])
    assert list(plain.sentences[0][1]) == [START] * 4
    # words that do not join back to the sentence: WordPiece groups only
    fallback = tokenizer.tokenize("x", ["北京欢迎你"], [["北京", "欢迎"]])
    assert list(fallback.sentences[0][1]) == [START] * 5


def test_long_sentences_are_cut_in_near_equal_pieces_at_word_starts(vocab_path):
    """A sentence over ``long_sentence_tokens`` is cut in pieces of at most that many tokens at word starts, the
    same by ``tokenize`` and ``tokenize_joined``, and no piece is a scrap (a last ``。`` alone was one)."""
    rng = random.Random(3)
    limit = 62
    tokenizer = DocumentTokenizer(str(vocab_path), long_sentence_tokens=limit)
    sentences, words = [], []
    for _ in range(300):
        sentence_words = [rng.choice(["北京", "天安门", "我", "很好用", "的", "中华人民共和国"])
                          for _ in range(rng.randint(1, 60))]
        if rng.random() < 0.5:
            sentence_words.append("。")
        sentences.append("".join(sentence_words))
        words.append(sentence_words)
    doc = tokenizer.tokenize("x", sentences, words)
    ok = np.ones(len(sentences), dtype=bool)
    lengths = [len(w) for sentence_words in words for w in sentence_words]
    word_starts = np.cumsum([0, *lengths[:-1]])
    ids, flags, piece_bounds, first_piece = tokenizer.tokenize_joined(sentences, ok, word_starts)
    assert np.array_equal(ids, doc.ids) and flags.tobytes() == doc.flags
    assert np.array_equal(piece_bounds[1:], doc.ends)
    long = 0
    for k, sentence in enumerate(sentences):
        pieces = np.diff(piece_bounds[first_piece[k]:first_piece[k + 1] + 1])
        assert pieces.sum() == len(sentence) and (pieces <= limit).all()
        if len(pieces) > 1:
            long += 1
            assert pieces.min() >= limit // 4, (len(sentence), pieces)
            # every cut is at a word start of the segmenter's (these words are at most 7 characters)
            starts = set(np.cumsum([0, *map(len, words[k])]).tolist())
            assert set(np.cumsum(pieces)[:-1].tolist()) <= starts
    assert long > 50


# --- engines and determinism --------------------------------------------------------------------------------

def test_beam_and_spark_write_the_same_bytes_whatever_the_workers(bert, segmented_run, tmp_path_factory,
                                                                  vocab_path):
    """Beam in-process (one worker), Beam with two worker processes, Spark local[2]: the same files."""
    spark = shards_run(segmented_run, tmp_path_factory, vocab_path, engine="spark", dupe_factor=5, shards=3)
    output = tmp_path_factory.mktemp("shards-beam-2")
    (output / "segment").symlink_to(segmented_run / "segment")
    config = make_config(output, [], "beam", shards={"vocab": str(vocab_path), "dupe_factor": 5, "shards": 3},
                         beam={"direct_num_workers": 2, "direct_running_mode": "multi_processing"})
    run_stage("shards", config, log=lambda *_: None)
    for other in (spark, output / "shards"):
        for shard in shard_manifest.read(bert)["shards"]:
            assert (other / shard["file"]).read_bytes() == (bert / shard["file"]).read_bytes()
        assert json.loads((other / "manifest.json").read_text())["shards"] == shard_manifest.read(bert)["shards"]


def test_same_seed_same_bytes_other_seed_other_bytes(bert, segmented_run, tmp_path_factory, vocab_path):
    again = shards_run(segmented_run, tmp_path_factory, vocab_path, dupe_factor=5, shards=3, pool_documents=128)
    other = shards_run(segmented_run, tmp_path_factory, vocab_path, dupe_factor=5, shards=3, seed=7)
    name = "part-00001-of-00003.tfrecord"
    assert (again / name).read_bytes() == (bert / name).read_bytes()
    assert (other / name).read_bytes() != (bert / name).read_bytes()


def test_bad_rows_are_rejected_or_quarantined_not_fatal(tmp_path, vocab_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline import schema

    table_dir = tmp_path / "segment" / "segmented"
    table_dir.mkdir(parents=True)
    good = "北京是中国的首都。上海是中国最大的城市。"
    rows = [
        {"id": "good", "source": "t", "title": None, "sentences": [good[:9], good[9:]],
         "words": [["北京", "是", "中国", "的", "首都", "。"], ["上海", "是", "中国", "最", "大", "的", "城市", "。"]],
         "file": "f", "position": 0},
        {"id": "control", "source": "t", "title": None, "sentences": ["\x00\x01\x02"], "words": [["\x00\x01\x02"]],
         "file": "f", "position": 1},
        {"id": "broken", "source": "t", "title": None, "sentences": ["好", None], "words": [["好"], None],
         "file": "f", "position": 2},
    ]
    target = schema.load("segmented")
    full = [{name: row.get(name) for name in target.names} for row in rows]
    pq.write_table(pa.Table.from_pylist(full, schema=target), str(table_dir / "part-0.parquet"))
    config = make_config(tmp_path, [], "beam", shards={"vocab": str(vocab_path), "dupe_factor": 2, "shards": 2})
    stats = run_stage("shards", config, log=lambda *_: None)
    assert stats["accounting"] == {"read": 3, "kept": 1, "rejected": 1, "duplicate": 0, "quarantined": 1,
                                   "balanced": True}
    assert stats["rejected_by_rule"] == {"no_tokens": 1}
    manifest = shard_manifest.read(tmp_path / "shards")
    assert manifest["instances"] >= 2 and len(manifest["shards"]) == 2
    # more shards than instances: every shard file exists, sizes still differ by at most one
    config.shards.shards = 40
    run_stage("shards", config, log=lambda *_: None)
    manifest = shard_manifest.read(tmp_path / "shards")
    sizes = [s["instances"] for s in manifest["shards"]]
    assert len(sizes) == 40 and max(sizes) - min(sizes) <= 1 and sum(sizes) == manifest["instances"]
    assert all((tmp_path / "shards" / s["file"]).exists() for s in manifest["shards"])
    assert not list((tmp_path / "shards").glob(".*"))


def test_missing_vocab_is_a_clear_error(segmented_run, tmp_path):
    config = make_config(tmp_path, [], "beam")
    with pytest.raises(FileNotFoundError, match="vocab"):
        run_stage("shards", config, log=lambda *_: None)


def test_pool_instances_is_independent_of_pool_order(vocab_path):
    options = ShardOptions(dupe_factor=2)
    builder = ShardBuilder(options, str(vocab_path))
    rows = [{"id": f"d{i}", "sentences": ["北京是中国的首都。", f"第{i}个文档有一些内容。"],
             "words": [["北京", "是", "中国", "的", "首都", "。"], ["第", f"{i}", "个", "文档", "有", "一些", "内容", "。"]]}
            for i in range(5)]
    docs = [builder.tokenize(r) for r in rows]
    first = builder.pool_instances(docs)
    second = builder.pool_instances(list(reversed(docs)))
    assert first == second and len(first) >= 10



@pytest.mark.parametrize("mode", ["bert", "roberta"])
def test_pool_instances_grouped_by_first_shard(vocab_path, tmp_path, mode):
    """With ``shards``, the same records, stably grouped by first shard: the pool file is byte for byte the one
    written from the ungrouped records, and each of its sections one run of them."""
    builder = ShardBuilder(ShardOptions(dupe_factor=3, mode=mode, max_seq_length=32), str(vocab_path))
    rows = [{"id": f"d{i}", "sentences": ["北京是中国的首都。", f"第{i}个文档有一些内容。", "今天天气很好。"],
             "words": [["北京", "是", "中国", "的", "首都", "。"], ["第", f"{i}", "个", "文档", "有", "一些", "内容", "。"],
                       ["今天", "天气", "很", "好", "。"]]} for i in range(7)]
    docs = [builder.tokenize(r) for r in rows]
    plain = builder.pool_instances(docs)
    for shards in (1, 3, 5):
        grouped = builder.pool_instances(docs, shards=shards)
        order = np.argsort(plain.keys % np.uint64(shards), kind="stable")
        assert grouped == plain.take(order)
        (tmp_path / "a").mkdir(exist_ok=True)
        (tmp_path / "b").mkdir(exist_ok=True)
        first = pool_sections(0, plain, shards, tmp_path / "a")
        second = pool_sections(0, grouped, shards, tmp_path / "b")
        assert [s[1][1:] for s in first] == [s[1][1:] for s in second]
        assert (tmp_path / "a" / "pool-000000.bin").read_bytes() == (tmp_path / "b" / "pool-000000.bin").read_bytes()


def _records(items: list[tuple[int, bytes, tuple]]) -> Records:
    offsets = np.cumsum([0] + [len(record) for _, record, _ in items])
    return Records(np.asarray([k for k, _, _ in items], np.uint64), offsets.astype(np.int64),
                   b"".join(record for _, record, _ in items),
                   np.asarray([f for _, _, f in items], np.int64).reshape(len(items), len(STAT_FIELDS)))


def _through_spill(items, shards: int, batches: int, directory: Path) -> list[bytes]:
    """pool_sections -> split_shard -> write_shard, as the engines run them; the shard files."""
    sections = [section for part in range(batches)
                for section in pool_sections(part, _records(items[part::batches]), shards, directory / "pools")]
    per_shard: dict[int, list] = {}
    for shard, reference in sections:
        per_shard.setdefault(shard, []).append(reference)
    counts = {shard: sum(r[3] for r in refs) for shard, refs in per_shard.items()}
    targets, plan = shard_targets(len(items), shards), rebalance(counts, shards)
    incoming: dict[int, list] = {}
    for shard in range(shards):
        parts = split_shard(shard, per_shard.get(shard, []), targets, plan)
        assert isinstance(parts[shard], Kept) and parts[shard].keep == min(counts.get(shard, 0), targets[shard])
        assert all(isinstance(part, Records) for dest, part in parts.items() if dest != shard)
        for dest, part in parts.items():
            incoming.setdefault(dest, []).append(part)
    files = []
    for shard in range(shards):
        summary = write_shard(directory / "out", shard, shards, incoming[shard])
        data = (directory / "out" / summary["file"]).read_bytes()
        assert summary["instances"] == targets[shard] and summary["bytes"] == len(data)
        assert summary["sha256"] == hashlib.sha256(data).hexdigest()
        files.append(data)
    return files


def test_spilled_records_come_back_in_key_order_whatever_the_batches(vocab_path, tmp_path):
    """Real pool records through the spill files, arriving shuffled in 3 or 5 batches: the same shard files;
    every record written once; a shard over its target holds its first records in (key, bytes) order (keys
    shared by several records, forced here, are ordered by the record bytes)."""
    builder = ShardBuilder(ShardOptions(dupe_factor=3), str(vocab_path))
    rows = [{"id": f"d{i}", "sentences": ["北京是中国的首都。", f"第{i}个文档有一些内容，还有更多的句子。"],
             "words": [["北京", "是", "中国", "的", "首都", "。"],
                       ["第", f"{i}", "个", "文档", "有", "一些", "内容", "，", "还有", "更多", "的", "句子", "。"]]}
            for i in range(12)]
    real = list(builder.pool_instances([builder.tokenize(r) for r in rows]).items())
    items = real + [(real[0][0], record, figures) for _, record, figures in real[1:4]]   # duplicate keys
    shards = 3
    runs = []
    for seed, batches in ((3, 3), (4, 5)):
        shuffled = list(items)
        random.Random(seed).shuffle(shuffled)
        runs.append(_through_spill(shuffled, shards, batches, tmp_path / f"run{seed}"))
    assert runs[0] == runs[1]
    written = [r for data in runs[0] for r in read_records_bytes(data)]
    assert sorted(written) == sorted(r for _, r, _ in items)
    counts = [sum(1 for k, _, _ in items if k % shards == s) for s in range(shards)]
    targets = shard_targets(len(items), shards)
    over = max(range(shards), key=lambda s: counts[s] - targets[s])
    expected = [r for _, r in sorted((k, r) for k, r, _ in items if k % shards == over)][:targets[over]]
    assert list(read_records_bytes(runs[0][over])) == expected


def read_records_bytes(data: bytes):
    import struct
    at = 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        yield data[at:at + 12 + length + 4]
        at += 12 + length + 4


def test_tokenized_documents_go_through_files_whole(vocab_path, tmp_path):
    """The documents the engines group by pool travel as file references: read back, the same ids, flags and
    sentence ends, each in its pool; a section that is not one is refused."""
    builder = ShardBuilder(ShardOptions(), str(vocab_path))
    rows = [{"id": f"文档{i}", "sentences": ["北京是中国的首都。", f"第{i}个文档有一些内容。"],
             "words": [["北京", "是", "中国", "的", "首都", "。"], ["第", f"{i}", "个", "文档", "有", "一些", "内容", "。"]]}
            for i in range(7)]
    docs = [(i % 3, builder.tokenize(r)) for i, r in enumerate(rows)]
    sections = document_sections(docs, tmp_path)
    assert [pool for pool, _ in sections] == [0, 1, 2]
    for pool, section in sections:
        back = load_documents(section)
        want = [doc for p, doc in docs if p == pool]
        assert section[3] == len(want) and section[4] == sum(doc.tokens for doc in want)
        assert [(d.id, d.ids.tolist(), d.flags, d.ends.tolist()) for d in back] == \
            [(d.id, d.ids.tolist(), d.flags, d.ends.tolist()) for d in want]
    path, offset, size = sections[1][1][:3]
    with pytest.raises(SpillError):
        load_documents((path, offset + 1, size - 1))
    assert document_sections([], tmp_path) == []


def test_spill_files_are_never_unpickled(tmp_path):
    """A spill file is only read as the binary section format: a pickle (one that would run code when loaded),
    garbage or a truncated section is refused, and nothing in it is executed."""
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / "pool.bin").write_bytes(pickle.dumps([Payload()]))
    reference = (str(tmp_path / "pool.bin"), 0, (tmp_path / "pool.bin").stat().st_size, 1)
    with pytest.raises(SpillError):
        load_section(reference)
    with pytest.raises(SpillError):
        split_shard(0, [reference], [1], {})
    with pytest.raises(SpillError):
        write_shard(tmp_path / "out", 0, 1, [Kept((reference,), 1)])
    assert not marker.exists()
    good = _records([(5, b"abc", (1,) * len(STAT_FIELDS)), (2, b"de", (2,) * len(STAT_FIELDS))])
    (offset, size, n), = write_sections(tmp_path / "s.bin", [select(good)])
    assert read_section(tmp_path / "s.bin", offset, size) == good and n == 2
    assert read_section_keys(tmp_path / "s.bin", offset, size).tolist() == [5, 2]
    assert read_section_records(tmp_path / "s.bin", offset, size, np.asarray([1, 0])) == good.take([1, 0])
    raw = (tmp_path / "s.bin").read_bytes()
    for broken in (raw[:-1], raw[:40], raw[:8] + b"\xff" * 8 + raw[16:]):
        (tmp_path / "b.bin").write_bytes(broken)
        for read in (read_section, read_section_keys):
            with pytest.raises(SpillError):
                read(tmp_path / "b.bin", 0, len(broken))
        with pytest.raises(SpillError):
            read_section_records(tmp_path / "b.bin", 0, len(broken), np.asarray([0]))


def test_fast_encoder_gives_exactly_the_tokenizers_ids_and_offsets(vocab_path, corpus):
    """The direct-lookup path for CJK and punctuation and the ASCII-word path against the tokenizers BERT
    pipeline on every shared corpus (or the bundled sample's raw text, every format), plus hand-made edge cases
    (accents, full-width, compatibility ideographs, control characters, emoji, long words)."""
    import json as _json

    from pipeline.ingest.files import expand
    from pipeline.ingest.readers import read_file
    from pipeline.records import Document
    from pipeline.shards.encoding import SentenceEncoder
    from pipeline.vocab.wordpiece import bert_tokenizer

    entries = read_vocab(vocab_path)
    sentences = ["Café naïve ＡＢＣ１２３ 中\u0301国 \uf900\uf901 ① ½ iPhone12很好用 e.g. U.S.A. 2019年 😀 \x00\x01 tab\there",
                 "   ", "ﬁ ligature Ⅻ", "", "a" * 150 + " 中文", "HELLO  World\u3000全角空格", "x\u200by\u00adz"]
    if corpus.name == "sample":
        for spec in corpus.inputs:
            for path in expand(spec.path):
                sentences.extend(line for record in read_file(path) if isinstance(record, Document)
                                 for line in record.text.split("\n"))
    shared = ["wiki2019zh_sample.jsonl", "chinesewebtext_sample.jsonl", "wikiextractor_doc_sample.txt"]
    for name in shared if corpus.name == "shared" else []:
        for line in shared_file("corpora", name).read_text(encoding="utf-8").splitlines()[:400]:
            try:
                record = _json.loads(line)
            except ValueError:
                sentences.append(line)
                continue
            sentences.extend(str(record.get("text") or record.get("content") or "").split("\n"))
    if corpus.name == "shared":
        drcd = _json.loads(shared_file("corpora", "drcd_dev_traditional.json").read_text(encoding="utf-8"))
        sentences.extend(p["context"] for article in drcd["data"][:20] for p in article["paragraphs"])
    for lowercase in (True, False):
        ours = SentenceEncoder(entries, lowercase=lowercase).encode(sentences)
        reference = bert_tokenizer(entries, lowercase=lowercase).encode_batch(sentences, add_special_tokens=False)
        for sentence, (ids, offsets), expected in zip(sentences, ours, reference):
            assert ids == expected.ids, sentence[:60]
            starts = list(range(len(ids))) if offsets is None else offsets
            assert starts == [o[0] for o in expected.offsets], sentence[:60]
    assert len(sentences) > corpus.sentences


def test_sentence_encoder_runs_looked_up_are_the_ones_tokenized(vocab_path):
    """``encode_joined`` looks up runs it has tokenized before: the same ids and offsets as ``encode`` gives
    sentence by sentence, first and later calls, whatever else the batch holds."""
    from pipeline.shards.encoding import SentenceEncoder
    encoder = SentenceEncoder(read_vocab(str(vocab_path)))
    pieces = ["iPhone 12 Pro", "café", "ＡＢＣ", "e=mc²", "hello world", "😀", "C++", "x", "ünïcödé"]
    rng = random.Random(3)
    for _ in range(3):
        sentences = ["".join(rng.choice(pieces + ["北京", "，", "中国"]) for _ in range(rng.randint(1, 6)))
                     for _ in range(20)]
        bounds = np.cumsum([0] + [len(s) for s in sentences])
        ids, at, starts = encoder.encode_joined("".join(sentences), bounds[:-1])
        for k, sentence in enumerate(sentences):
            want_ids, want_offsets = encoder.encode([sentence])[0]
            if want_offsets is None:
                want_offsets = list(range(len(sentence)))
            end = starts[k + 1] if k + 1 < len(sentences) else len(ids)
            assert ids[starts[k]:end].tolist() == list(want_ids)
            assert (at[starts[k]:end] - bounds[k]).tolist() == list(want_offsets)
    assert any(not run.isascii() for run in encoder.words)        # runs tokenizers read are remembered too
