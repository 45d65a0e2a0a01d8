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
