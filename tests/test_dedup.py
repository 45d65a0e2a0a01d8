import pytest

from pipeline.counters import Counters
from pipeline.dedup.exact import ExactKey, normalize_key_text, resolve_group
from pipeline.clean.normalize import ScriptConverter
from pipeline.records import Document


def doc(id, text, source="s"):
    return Document(id=id, source=source, format="jsonl", text=text, file="f", position=1)


def test_key_folds_script_width_case_spacing_and_punctuation():
    key = ExactKey()
    base = key(doc("a", "数学是研究数量、结构的学科。ABC 123"))
    assert key(doc("b", "數學是研究數量，結構的學科！ａｂｃ１２３")) == base
    assert key(doc("c", "数学 是研究数量结构的学科 abc123 ")) == base
    assert key(doc("d", "数学是研究数量结构的学科abc124")) != base


def test_normalised_text_keeps_only_letters_digits_and_han():
    assert normalize_key_text("“你好，World！” 2024年…", ScriptConverter("t2s")) == "你好world2024年"


def test_smallest_id_is_kept_and_others_point_to_it():
    count = Counters()
    group = [doc("s:9", "甲"), doc("s:10", "甲"), doc("t:1", "甲", source="t")]
    kept, dups = resolve_group(group, count)
    assert kept.id == "s:10"   # string order
    assert [(d.id, d.duplicate_of, d.method, d.similarity) for d in dups] == [
        ("s:9", "s:10", "exact", 1.0), ("t:1", "s:10", "exact", 1.0)]
    assert dups[1].source == "t" and dups[1].duplicate_of_source == "s"
    assert count["dedup.read"] == 3 and count["dedup.exact.kept"] == 1 and count["dedup.duplicates"] == 2
    assert count["dedup.duplicates.source.t"] == 1


def test_singleton_group_is_kept_without_duplicates():
    kept, dups = resolve_group([doc("a", "x")])
    assert kept.id == "a" and dups == []


def _reference_key_text(text, convert):
    """The normal form built the plain way: NFKC, simplified, lowercase, then a translate over categories."""
    import unicodedata
    text = convert(unicodedata.normalize("NFKC", text))[0].lower()
    return "".join(c for c in text if unicodedata.category(c)[0] not in "ZPS"
                   and unicodedata.category(c) not in ("Cc", "Cf") and c not in "\t\n\r\x0b\x0c")


# full-width and half-width forms, combining marks, Latin letters that compose with them, Hangul jamo,
# ligatures, circled digits, Tibetan vowel signs, punctuation and ideographs
_MIXED = [chr(c) for c in [*range(0x300, 0x370), *range(0xFF01, 0xFFA0), *range(0x3099, 0x309D),
                           *range(0xC0, 0x180), 0x41, 0x61, 0x4E00, 0x4E2D, 0x1100, 0x1161, 0x11A8, 0xAC00,
                           0x0F71, 0x0F72, 0x0F80, 0xFB01, 0x2460, 0x3001, 0x3002, 0x20, 0x2126, 0x212B]]


def test_nfkc_and_key_text_match_the_plain_unicodedata_route():
    import random
    import unicodedata
    from pipeline.dedup.exact import nfkc
    rng = random.Random(7)
    convert = ScriptConverter("t2s")
    texts = ["ｶﾞ", "Ａ\u0301", "ｆｉ\u0301", "\u1E9B\u0323", "數學，ＡＢＣ１２３！"]
    texts += ["".join(rng.choice(_MIXED) for _ in range(rng.randrange(1, 40))) for _ in range(3000)]
    changed = 0
    for text in texts:
        assert nfkc(text) == unicodedata.normalize("NFKC", text), ascii(text)
        assert normalize_key_text(text, convert) == _reference_key_text(text, convert), ascii(text)
        changed += nfkc(text) != text
    assert changed > 1000          # the texts did exercise the replacement


def test_id_filter_never_misses_an_id_and_merges_by_or():
    import pickle

    from pipeline.dedup.idfilter import IdFilter

    added = [f"wiki:{k}" for k in range(5000)]
    others = [f"web:{k}" for k in range(20000)]
    left, right = IdFilter.of(added[:2500], 16 * 5000), IdFilter.of(added[2500:], 16 * 5000)
    merged = pickle.loads(pickle.dumps(left.merge(right)))
    assert all(doc_id in merged for doc_id in added)
    assert not all(doc_id in left for doc_id in added[2500:])
    false_positive = sum(doc_id in merged for doc_id in others) / len(others)
    assert false_positive < 0.01                 # 16 bits an id, 4 hashes: about 0.2%
    with pytest.raises(ValueError):
        left.merge(IdFilter(8 * 1024))
