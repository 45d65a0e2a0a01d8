"""The vocab stage: BERT pre-tokens, counts on both engines, the trained vocab, its stats, --vocab FILE."""

import json
import os
import subprocess
import sys
import textwrap
import unicodedata
from collections import Counter

import pytest

from conftest import SHARED_DATA, make_config, shared_file
from pipeline.cli import main
from pipeline.clean.stage import Cleaner
from pipeline.config import VocabOptions
from pipeline.counters import Counters
from pipeline.testing.dedup_evaluation import shared_documents
from pipeline.outputs import TableWriter, read_table
from pipeline.records import Document
from pipeline.segment.segmenters import JiebaSegmenter
from pipeline.segment.stage import Segmentation
from pipeline.stages import run_stage
from pipeline.vocab.counting import (PreTokenCounter, RegexPreTokenizer, TokenizersPreTokenizer, basic_tokenize,
                                     is_held_out)
from pipeline.vocab.stage import held_out_sentences
from pipeline.vocab.stats import entry_kind
from pipeline.vocab.training import VocabError, build_vocab, read_counts, reserved_layout, train_pieces
from pipeline.vocab.wordpiece import bert_tokenizer, is_cjk, read_vocab, vocab_sha256

CORPORA = ["wiki2019zh_sample.jsonl", "wikiextractor_doc_sample.txt", "chinesewebtext_sample.jsonl",
           "cmrc2018_dev.json", "drcd_dev_traditional.json"]
HELD_OUT = 0.1     # of the shared documents: never counted, tokenized for the [UNK] comparison

# (text, BERT BasicTokenizer pre-tokens with do_lower_case=True), written out by hand
CASES = [
    ("我爱北京天安门。", ["我", "爱", "北", "京", "天", "安", "门", "。"]),
    ("Hello, World!", ["hello", ",", "world", "!"]),
    ("iPhone15售价7999元", ["iphone15", "售", "价", "7999", "元"]),
    ("Café RÉSUMÉ naïve", ["cafe", "resume", "naive"]),          # accents stripped after lowercasing
    ("a\u0301b", ["ab"]),                                        # a combining mark alone is dropped
    ("e-mail: x@y.com", ["e", "-", "mail", ":", "x", "@", "y", ".", "com"]),
    ("tab\there\nnew\u3000line\u00a0nbsp", ["tab", "here", "new", "line", "nbsp"]),   # Zs and \t\n are spaces
    ("zero\u200bwidth\x00nul\ufffdrepl\x07bell", ["zerowidthnulreplbell"]),          # Cf, Cc, NUL, U+FFFD removed
    ("「引号」（括号）——破折号…", ["「", "引", "号", "」", "（", "括", "号", "）", "—", "—", "破", "折", "号", "…"]),
    ("\U00020000𠀀x", ["\U00020000", "𠀀", "x"]),                 # CJK extension B is CJK too
    # kana and Hangul are not BERT's CJK; its accent stripping drops the dakuten (が -> か) and leaves Hangul NFD
    ("ひらがなカタカナ한국어", ["ひらかなカタカナ" + unicodedata.normalize("NFD", "한국어")]),
    ("$100 & 50%", ["$", "100", "&", "50", "%"]),
    ("   ", []),
]


def test_pre_tokens_follow_bert_basic_tokenizer():
    regex, toks = RegexPreTokenizer(), TokenizersPreTokenizer()
    for text, expected in CASES:
        assert basic_tokenize(text) == expected, text
        assert regex.pre_tokens(text) == expected, text
        assert toks.pre_tokens(text) == expected, text
    cased = RegexPreTokenizer(lowercase=False)
    assert cased.pre_tokens("Café, Über") == basic_tokenize("Café, Über", False) == ["Café", ",", "Über"]
    assert RegexPreTokenizer().pre_tokens("\u1fefx") == basic_tokenize("\u1fefx") == ["`", "x"]   # NFD uncovers punct


def test_counting_by_code_point_classes_is_counting_the_pre_tokens(monkeypatch):
    """``raw_counts`` (NumPy over code points) against ``raw_tokens`` (the regex passes): the cases above and
    the characters where the classes meet: controls inside words, every kind of whitespace, lone surrogates,
    planes the scan skips, private use, marks, fullwidth forms; and ``count_rows`` in several batches."""
    import pipeline.vocab.counting as counting

    regex = RegexPreTokenizer()
    odd = ["ab\u200bcd\x00ef\ufffdgh", "x\x1cy\x0bz\x85w\u2028v\u3000u\xa0t", "a\ud800b\udfffc",
           "\U000f0001\U00050000q\ue000r", "e\u0301f\u0300", "ＡＢＣ１２３，。！", "\t\r\n", "",
           "x" * 300 + "中" + "y", "中文123abc中文，English, 混合!"]
    texts = [text for text, _ in CASES] + odd
    expected = Counter(t for text in texts for t in regex.raw_tokens(text))
    assert regex.raw_counts(texts) == expected
    for text in texts:
        assert regex.raw_counts([text]) == Counter(regex.raw_tokens(text)), text
    monkeypatch.setattr(counting, "COUNT_BATCH_CHARS", 7)
    rows = [{"id": f"d{k}", "sentences": [text, text[::-1]]} for k, text in enumerate(texts)]
    counted = PreTokenCounter(VocabOptions(held_out_fraction=0)).count_rows(rows)
    raw = Counter(t for r in rows for t in regex.raw_tokens("\n".join(r["sentences"])))
    assert counted == Counter({t: n for t, n in regex.normalize_counts(raw).items()
                               if len(t) <= counting.MAX_PRETOKEN_CHARS})
    # the other pre-tokenizer goes through the batches too (tokenizers takes no lone surrogates)
    toks = TokenizersPreTokenizer()
    valid = [r for r in rows if "\ud800" not in r["sentences"][0]]
    by_toks = PreTokenCounter(VocabOptions(held_out_fraction=0, pre_tokenizer="tokenizers")).count_rows(valid)
    assert by_toks == Counter(t for r in valid for t in toks.pre_tokens("\n".join(r["sentences"]))
                              if len(t) <= counting.MAX_PRETOKEN_CHARS)


def shared_texts():
    paths = [SHARED_DATA / "corpora" / n for n in CORPORA]
    if not all(p.exists() for p in paths):
        pytest.skip("shared corpora not present")
    return [d.text for d in shared_documents(paths)]


def test_pre_tokenizers_agree_with_the_reference_on_the_shared_corpora():
    texts = shared_texts()
    regex, toks = RegexPreTokenizer(), TokenizersPreTokenizer()
    differ = []
    for text in texts:
        expected = basic_tokenize(text)
        assert regex.pre_tokens(text) == expected
        if toks.pre_tokens(text) != expected:
            differ.append(text)
    # tokenizers' BertNormalizer also drops private-use characters (category Co), which BERT keeps
    private = [t for t in differ if any(0xE000 <= ord(c) <= 0xF8FF for c in t)]
    assert differ == private and len(differ) <= 2


def test_counts_are_the_reference_counts_of_the_documents_not_held_out():
    texts = shared_texts()
    rows = [{"id": f"doc{i}", "sentences": t.split("\n")} for i, t in enumerate(texts)]
    count = Counters()
    counts = PreTokenCounter(VocabOptions(held_out_fraction=HELD_OUT)).count_rows(rows, count)
    kept = [r for r in rows if not is_held_out(r["id"], HELD_OUT)]
    assert counts == Counter(t for r in kept for s in r["sentences"] for t in basic_tokenize(s))
    assert count["vocab.read"] == len(rows) == count["vocab.counted"] + count["vocab.held_out"]
    assert 0.05 * len(rows) < count["vocab.held_out"] < 0.15 * len(rows)
    assert count["vocab.pretokens"] == sum(counts.values())


def test_held_out_choice_is_a_stable_share():
    ids = [f"source:{i}" for i in range(20_000)]
    chosen = [i for i in ids if is_held_out(i, 0.01)]
    assert 150 < len(chosen) < 250 and chosen == [i for i in ids if is_held_out(i, 0.01)]
    assert not any(is_held_out(i, 0.0) for i in ids)


def test_long_pre_tokens_are_not_counted():
    count = Counters()
    counts = PreTokenCounter(VocabOptions(held_out_fraction=0)).count_rows(
        [{"id": "a", "sentences": ["x" * 101 + " ok"]}], count)
    assert counts == {"ok": 1} and count["vocab.long_pretokens"] == 1


def small_counts():
    counts = Counter({"的": 50, "中": 20, "国": 20, "龘": 1, "，": 30, "。": 25})
    for word, n in {"hello": 9, "help": 7, "world": 5, "word": 4, "2023": 3, "the": 12, "there": 3}.items():
        counts[word] = n
    return counts


def test_vocab_layout_characters_and_size():
    options = VocabOptions(size=150, reserved_unused=10, min_char_count=2, min_frequency=1, ascii=False)
    entries, info = build_vocab(small_counts(), options)
    layout = ["[PAD]", *(f"[unused{i}]" for i in range(1, 11)), "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<S>", "<T>"]
    assert entries[:len(layout)] == layout == reserved_layout(10)
    assert entries[len(layout):len(layout) + 6] == ["中", "国", "的", "##中", "##国", "##的"]   # by code point
    assert "龘" not in entries and info["han_characters_dropped"] == 1
    assert len(entries) == len(set(entries)) and len(entries) <= 150
    assert {"hello", "the", "，", "。"} <= set(entries)
    assert build_vocab(small_counts(), options)[0] == entries
    tight = VocabOptions(size=len(layout) + 7, reserved_unused=10, min_char_count=1, ascii=False)   # 4 chars need 8
    with pytest.raises(VocabError, match="min-char-count"):
        build_vocab(small_counts(), tight)
    exact = VocabOptions(size=len(layout) + 8, reserved_unused=10, min_char_count=2, min_frequency=1, ascii=False)
    assert len(build_vocab(small_counts(), exact)[0]) == len(layout) + 8


def test_printable_ascii_has_entries_even_when_the_corpus_never_shows_it():
    """Issue 19.19: '{' and '}' never seen became [UNK]; Google's vocab keeps all of printable ASCII."""
    options = VocabOptions(size=300, reserved_unused=10, min_char_count=2, min_frequency=1)
    entries, _ = build_vocab(small_counts(), options)
    layout = reserved_layout(10)
    block = [chr(c) for c in range(0x21, 0x7F) if not "A" <= chr(c) <= "Z" and c != 0x60] + ["`"]
    assert entries[len(layout):len(layout) + len(block)] == block          # right after <T>, as in Google's
    assert {"##" + c for c in "0123456789abcdefghijklmnopqrstuvwxyz"} <= set(entries)
    assert len(entries) == len(set(entries)) <= 300 and "A" not in entries
    tokenizer = bert_tokenizer(entries)
    unk = tokenizer.token_to_id("[UNK]")
    for text in ("{x}", "a~b", "中`国", "q9z|", "HELLO{}"):     # none of these characters is in the counts
        assert unk not in tokenizer.encode(text, add_special_tokens=False).ids, text
    cased = build_vocab(small_counts(), VocabOptions(size=300, reserved_unused=10, min_char_count=2,
                                                     min_frequency=1, lowercase=False))[0]
    assert "A" in cased and "##Z" in cased
    off = build_vocab(small_counts(), VocabOptions(size=300, reserved_unused=10, min_char_count=2, ascii=False))[0]
    assert "{" not in off


def test_trained_pieces_are_a_function_of_the_counts():
    texts = shared_texts()[:400]
    counts = PreTokenCounter(VocabOptions(held_out_fraction=0)).count_rows(
        {"id": str(i), "sentences": [t]} for i, t in enumerate(texts))
    words = {w: n for w, n in counts.items() if not (len(w) == 1 and is_cjk(w))}
    first = train_pieces(words, 3000)
    assert all(train_pieces(dict(reversed(list(words.items()))), 3000) == first for _ in range(3))
    assert any(p.startswith("##") for p in first) and not any(p.startswith("####") for p in first)


def test_entry_kinds():
    assert [entry_kind(e) for e in ["[PAD]", "[unused7]", "<S>", "中", "##中", "the", "##ing", "2023", "##99",
                                    "，", "##!", "ひら"]] == [
        "special", "special", "special", "cjk_char", "cjk_char_continuation", "latin", "latin_continuation",
        "digits", "digits_continuation", "punctuation", "punctuation_continuation", "other"]


@pytest.fixture(scope="module")
def segmented(tmp_path_factory, sample_inputs):
    """The shared corpora (without them, the bundled sample), cleaned, segmented by jieba through the segment core,
    in a segmented table."""
    paths = [SHARED_DATA / "corpora" / n for n in CORPORA]
    if not all(p.exists() for p in paths):
        paths = [spec.path for spec in sample_inputs]
    cleaner, segmentation = Cleaner(), Segmentation(segmenter=JiebaSegmenter())
    docs = [r for r in (cleaner.process(d) for d in shared_documents(paths)) if isinstance(r, Document)]
    table = tmp_path_factory.mktemp("segmented") / "segmented"
    for part in range(3):                       # three files, small row groups: several tasks and bundles
        writer = TableWriter(table, "segmented", f"part-{part:05d}", row_group_bytes=512 * 1024)
        for doc in docs[part::3]:
            writer.add(segmentation.process(doc))
        writer.close()
    return table


@pytest.fixture(scope="module")
def built(segmented, tmp_path_factory):
    """The vocab stage on both engines, default size, Google's vocab as the reference (when the shared data has
    it)."""
    google = SHARED_DATA / "reference" / "bert_base_chinese_vocab.txt"
    reference = str(google) if google.exists() else ""
    results = {}
    for engine in ("beam", "spark"):
        output = tmp_path_factory.mktemp(f"vocab-{engine}")
        config = make_config(output, [], engine, vocab={"held_out_fraction": HELD_OUT, "reference": reference})
        results[engine] = (output, run_stage("vocab", config, str(segmented), log=lambda *_: None))
    return results


def test_engines_count_and_train_the_same(built):
    (beam_out, beam), (spark_out, spark) = built["beam"], built["spark"]
    assert read_counts(beam_out / "vocab" / "counts.tsv") == read_counts(spark_out / "vocab" / "counts.tsv")
    assert (beam_out / "vocab" / "counts.tsv").read_bytes() == (spark_out / "vocab" / "counts.tsv").read_bytes()
    assert (beam_out / "vocab" / "vocab.txt").read_bytes() == (spark_out / "vocab" / "vocab.txt").read_bytes()
    assert beam["counters"] == spark["counters"]
    assert beam["vocab_sha256"] == spark["vocab_sha256"] == vocab_sha256(beam_out / "vocab" / "vocab.txt")


def test_counts_on_the_engines_are_the_core_counts(built, segmented):
    output, stats = built["beam"]
    rows = read_table(segmented, "segmented", ["id", "sentences"]).to_pylist()
    expected = PreTokenCounter(VocabOptions(held_out_fraction=HELD_OUT)).count_rows(rows)
    assert read_counts(output / "vocab" / "counts.tsv") == expected
    a = stats["accounting"]
    assert a["balanced"] and a["read"] == len(rows) == a["counted"] + a["held_out"] and a["held_out"] > 0


def test_the_vocab_has_the_layout_the_size_and_every_character(built):
    output, stats = built["beam"]
    entries = read_vocab(output / "vocab" / "vocab.txt")
    google = read_vocab(shared_file("reference", "bert_base_chinese_vocab.txt"))
    assert entries[:106] == google[:106] == reserved_layout(99)
    # printable ASCII where Google's vocab has it (it lacks the backquote, which comes right after)
    assert entries[106:173] == google[106:173] and google[172] == "~" and entries[173] == "`" not in google
    assert len(entries) == stats["size"] <= 21128 and len(entries) == len(set(entries))
    counts = read_counts(output / "vocab" / "counts.tsv")
    chars = {c for c, n in counts.items() if len(c) == 1 and is_cjk(c) and n >= stats["min_char_count"]}
    assert chars and chars <= set(entries) and {"##" + c for c in chars} <= set(entries)
    kinds = stats["entries_by_kind"]
    assert kinds["special"] == 106 and kinds["cjk_char"] == len(chars) == kinds["cjk_char_continuation"]
    assert sum(n for k, n in kinds.items() if k != "continuation_total") == len(entries)


def test_held_out_unk_rate_is_no_worse_than_googles(built):
    shared_file("reference", "bert_base_chinese_vocab.txt")      # the reference of the stats
    _, stats = built["beam"]
    ours, google = stats["held_out"]["vocab"], stats["held_out"]["reference"]
    print(json.dumps({"ours": ours, "google": google, "overlap": stats["overlap"]}, ensure_ascii=False))
    assert ours["sentences"] == google["sentences"] > 500
    assert ours["unk_rate"] <= google["unk_rate"]
    assert 0.8 < ours["tokens_per_char"] < 1.2
    assert stats["overlap"]["cjk_chars_common"] > 4000


def test_vocab_loads_in_bert_wordpiece_tokenizer_and_round_trips(built, segmented):
    from tokenizers import BertWordPieceTokenizer

    output, _ = built["beam"]
    tokenizer = BertWordPieceTokenizer(str(output / "vocab" / "vocab.txt"), lowercase=True)
    ours = bert_tokenizer(output / "vocab" / "vocab.txt")
    normalize = TokenizersPreTokenizer()       # the normalization these tokenizers apply, spaces removed
    sentences = [s for row in read_table(segmented, "segmented", ["sentences"]).to_pylist() for s in row["sentences"]]
    encodings = tokenizer.encode_batch(sentences, add_special_tokens=False)
    unk = tokenizer.token_to_id("[UNK]")
    with_unk = 0
    for sentence, encoding in zip(sentences, encodings):
        if unk in encoding.ids:
            with_unk += 1
            continue
        assert tokenizer.decode(encoding.ids).replace(" ", "") == "".join(normalize.pre_tokens(sentence))
    # the bundled sample (no shared corpora) is 37 documents: its few held-out ones bring characters seen nowhere
    # else (8 of its 320 sentences), so it gets a looser bound than the shared corpora's 1%
    shared = all((SHARED_DATA / "corpora" / n).exists() for n in CORPORA)
    assert with_unk < (0.01 if shared else 0.05) * len(sentences)
    sample = sentences[:300]
    assert [e.ids for e in ours.encode_batch(sample)] == [e.ids for e in encodings[:300]]


TRANSFORMERS_CHECK = textwrap.dedent("""
    import json, sys
    from transformers import BertTokenizerFast
    tok = BertTokenizerFast(vocab_file=sys.argv[1], do_lower_case=True)
    sentences = json.loads(open(sys.argv[2], encoding="utf-8").read())
    print(json.dumps({"size": tok.vocab_size, "ids": [tok(s, add_special_tokens=False)["input_ids"] for s in sentences],
                      "decoded": [tok.decode(tok(s, add_special_tokens=False)["input_ids"]) for s in sentences]}))
""")


def test_vocab_loads_in_transformers_bert_tokenizer_fast(built, segmented, tmp_path):
    python = os.environ.get("WWM_TRANSFORMERS_PYTHON", sys.executable)
    probe = subprocess.run([python, "-c", "import importlib.util, sys; "
                            "sys.exit(importlib.util.find_spec('transformers') is None)"])
    if probe.returncode:
        pytest.skip(f"transformers is not installed for {python} (set WWM_TRANSFORMERS_PYTHON)")
    output, stats = built["beam"]
    vocab = output / "vocab" / "vocab.txt"
    sentences = [s for row in read_table(segmented, "segmented", ["sentences"]).to_pylist()[:100]
                 for s in row["sentences"]][:500]
    (tmp_path / "sentences.json").write_text(json.dumps(sentences, ensure_ascii=False), encoding="utf-8")
    env = dict(os.environ, USE_TF="0", USE_TORCH="0", USE_FLAX="0", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run([python, "-c", TRANSFORMERS_CHECK, str(vocab), str(tmp_path / "sentences.json")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["size"] == stats["size"]
    ours = bert_tokenizer(vocab)
    assert result["ids"] == [e.ids for e in ours.encode_batch(sentences, add_special_tokens=False)]


def test_an_existing_vocab_is_checked_copied_and_described(segmented, tmp_path, capsys):
    google = shared_file("reference", "bert_base_chinese_vocab.txt")
    assert main(["vocab", "--vocab", str(google), "--input", str(segmented), "--output", str(tmp_path),
                 "--vocab-held-out-fraction", str(HELD_OUT), "--no-progress"]) == 0
    stats = json.loads((tmp_path / "vocab" / "stats.json").read_text(encoding="utf-8"))
    assert (tmp_path / "vocab" / "vocab.txt").read_bytes() == google.read_bytes()
    assert stats["vocab_sha256"] == vocab_sha256(google) and stats["trained"] is False
    assert stats["size"] == 21128 and stats["google_layout"] and stats["entries_by_kind"]["special"] == 106
    assert stats["entries_by_kind"]["cjk_char"] == 7322 == stats["entries_by_kind"]["cjk_char_continuation"]
    assert stats["held_out"]["vocab"]["sentences"] > 500 and not (tmp_path / "vocab" / "counts.tsv").exists()
    bad = tmp_path / "bad.txt"
    bad.write_text("[PAD]\n[PAD]\n", encoding="utf-8")
    assert main(["vocab", "--vocab", str(bad), "--output", str(tmp_path / "other")]) == 2
    assert "repeats" in capsys.readouterr().err


def test_vocab_without_input_is_a_clear_error(tmp_path, capsys):
    assert main(["vocab", "--output", str(tmp_path)]) == 2
    assert "run segment first" in capsys.readouterr().err


def test_held_out_sentences_are_capped(segmented):
    sentences = held_out_sentences(segmented, VocabOptions(held_out_fraction=1.0, held_out_max_chars=1000))
    assert sentences and sum(len(s) for s in sentences[:-1]) < 1000
