import bz2
import json
import random
from pathlib import Path

import pytest

from conftest import make_config, shared_file
from pipeline.counters import Counters
from pipeline.ingest.files import InputFile, expand
from pipeline.ingest.formats import FormatError, detect
from pipeline.ingest.readers import read_file
from pipeline.records import Document, Quarantined
from pipeline.sample import EXPECTED


def read_all(path, fmt="auto", source="src", max_record_bytes=64 << 20):
    count = Counters()
    records = [r for f in expand(str(path), source, fmt) for r in read_file(f, max_record_bytes, count)]
    docs = [r for r in records if isinstance(r, Document)]
    bad = [r for r in records if isinstance(r, Quarantined)]
    assert count["ingest.read"] == len(records) == count["ingest.documents"] + count["ingest.quarantined"]
    return docs, bad, count


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize("relpath, fmt", [
    ("zhwiki/zhwiki-20240101-pages-articles.xml.bz2", "mediawiki"),
    ("wikiextractor/AA/wiki_00", "wikiextractor"),
    ("wikiextractor_json/AA/wiki_00", "wikiextractor_json"),
    ("wiki2019zh/wiki_zh_sample.jsonl", "wiki2019zh"),
    ("news2016zh/news2016zh_sample.json", "news2016zh"),
    ("baike2018qa/baike_qa_sample.json", "baike2018qa"),
    ("webtext2019zh/web_text_zh_sample.json", "webtext2019zh"),
    ("chinesewebtext/cleared_sample.jsonl", "ccnet"),
    ("plain/bert_format.txt", "text"),
])
def test_sample_files_are_detected_and_fully_accounted(sample_dir, relpath, fmt):
    path = sample_dir / relpath
    assert detect(str(path)) == fmt
    docs, bad, _ = read_all(path)
    assert len(docs) + len(bad) == EXPECTED["documents"][relpath]
    assert len(bad) == EXPECTED["malformed"].get(relpath, 0)
    assert all(d.format == fmt and d.source == "src" and d.text for d in docs)
    assert len({d.id for d in docs}) == len(docs)
    assert all(b.file == str(path) and b.position > 0 and b.error for b in bad)


def test_mediawiki_dump_main_namespace_as_plain_text(sample_dir):
    docs, bad, count = read_all(sample_dir / "zhwiki/zhwiki-20240101-pages-articles.xml.bz2")
    assert count["ingest.skipped.redirect"] == EXPECTED["redirects"]
    assert count["ingest.skipped.namespace"] == EXPECTED["other_namespaces"]
    titles = {d.title for d in docs}
    assert "青溪河" in titles and not any(t.startswith(("Template:", "Category:")) for t in titles)
    assert [b.excerpt for b in bad] == EXPECTED["textless_pages"]["zhwiki/zhwiki-20240101-pages-articles.xml.bz2"]
    assert "page has no <revision><text>" in bad[0].error
    for doc in docs:
        for markup in ("{{", "}}", "[[", "]]", "<ref", "{|", "-{", "'''", "Category:", "File:"):
            assert markup not in doc.text, (doc.title, markup)
        assert doc.id.startswith("src:") and doc.url.endswith(doc.id.split(":")[1])
    river = next(d for d in docs if d.title == "青溪河")
    assert "发源于云岭山脉东麓" in river.text   # links kept as their text


def test_json_record_fields_map_to_documents(sample_dir):
    docs, _, _ = read_all(sample_dir / "webtext2019zh/web_text_zh_sample.json")
    meta = json.loads(docs[0].meta)
    assert docs[0].id.split(":")[1].isdigit()          # integer answer_id as id
    assert {"qid", "topic", "star"} <= set(meta) and isinstance(meta["star"], int)
    wiki, _, _ = read_all(sample_dir / "wiki2019zh/wiki_zh_sample.jsonl")
    assert all(not d.text.startswith(d.title + "\n") for d in wiki)   # repeated title line dropped
    plain, _, _ = read_all(sample_dir / "plain/bert_format.txt")
    assert [d.position for d in plain][0] == 1 and all(":plain" not in d.id for d in plain)
    assert all("\n\n" not in d.text for d in plain)


@pytest.mark.parametrize("content, error", [
    (b'{"id": "1", "title": "t", "text": "\xe4\xb8\xad\xff\xfe"}\n', "UnicodeDecodeError"),
    (b'{"id": "1", "title": "t", "text": "ok"\n', "JSONDecodeError"),
    (b'[1, 2]\n', "expected an object"),
    (b'{"id": "1", "title": "t", "url": "u"}\n', "missing field 'text'"),
    (b'{"id": "1", "title": "t", "text": ["a"]}\n', "field 'text' is list"),
    (b'{"id": true, "title": "t", "text": "a"}\n', "field 'id' is bool"),
])
def test_malformed_json_lines_are_quarantined_and_reading_goes_on(tmp_path, content, error):
    good = '{"id": "2", "url": "u", "title": "好", "text": "一段正常的文字。"}\n'.encode()
    path = write(tmp_path / "x.jsonl", good + content + good.replace(b'"2"', b'"3"'))
    docs, bad, _ = read_all(path, fmt="wiki2019zh")
    assert [d.id for d in docs] == ["src:2", "src:3"]
    assert len(bad) == 1 and bad[0].position == 2 and error in bad[0].error


DEEP = b"[" * 100_000 + b"]" * 100_000


def _arrow_safe(records) -> None:
    """Every record goes to Arrow as its table's row (what the engines do with it)."""
    import pyarrow as pa

    from pipeline.records import to_row
    for record in records:
        pa.Table.from_pylist([to_row(record)])


@pytest.mark.parametrize("content, error", [
    (b'{"id": "1", "title": "t", "text": ' + DEEP + b'}\n', "nested too deeply"),
    (b'{"id": "1", "title": "t", "text": "\xe4\xb8\xad\\ud800\xe6\x96\x87"}\n', "field 'text' holds a lone surrogate U+D800"),
    (b'{"id": "1", "title": "t", "text": "\\udc00"}\n', "field 'text' holds a lone surrogate U+DC00"),
    (b'{"id": "1", "title": "\\udfff", "text": "\xe4\xb8\xad"}\n', "field 'title' holds a lone surrogate"),
    (b'{"id": "1\\ud800", "title": "t", "text": "\xe4\xb8\xad"}\n', "field 'id' holds a lone surrogate"),
    (b'{"id": "1", "title": "t", "url": "\\ud800", "text": "\xe4\xb8\xad"}\n', "field 'url' holds a lone surrogate"),
])
def test_deep_json_and_lone_surrogates_are_quarantined_and_reading_goes_on(tmp_path, content, error):
    """Issue 19.11: neither a RecursionError from json nor a string Arrow cannot encode ends the file."""
    good = '{"id": "2", "url": "u", "title": "好", "text": "一段正常的文字。\\ud83d\\ude00"}\n'.encode()
    path = write(tmp_path / "x.jsonl", good + content + good.replace(b'"2"', b'"3"'))
    for fmt in ("wiki2019zh", "auto"):
        docs, bad, _ = read_all(path, fmt=fmt)
        assert [d.id for d in docs] == ["src:2", "src:3"] and docs[0].text.endswith("😀")   # a pair is fine
        assert len(bad) == 1 and bad[0].position == 2 and error in bad[0].error, bad
        _arrow_safe(docs + bad)


def test_lone_surrogates_in_meta_and_squad_fields_and_a_deep_first_line(tmp_path):
    news = write(tmp_path / "news.json", '{"news_id": "n1", "title": "t", "content": "中文", "keywords": "\\ud800"}\n'
                 '{"news_id": "n2", "title": "t", "content": "中文", "keywords": "k"}\n')
    docs, bad, _ = read_all(news)
    assert [d.id for d in docs] == ["src:n2"] and "field 'meta' holds a lone surrogate" in bad[0].error
    squad = write(tmp_path / "squad.json", json.dumps({"data": [
        {"title": "\ud800", "paragraphs": [{"id": "p1", "context": "中文"}]},
        {"title": "好", "paragraphs": [{"id": "p2", "context": "中\udfff"}, {"id": "p3", "context": "中文"}, "\ud800"]},
    ]}, indent=1))
    docs, bad, _ = read_all(squad, fmt="squad")
    assert [d.id for d in docs] == ["src:p3"]
    assert [(b.position, b.id) for b in bad] == [(1, "p1"), (2, "p2"), (4, None)]
    assert "'title'" in bad[0].error and "'text'" in bad[1].error and "no 'context'" in bad[2].error
    _arrow_safe(docs + bad)
    deep_squad = write(tmp_path / "deep.json", b'{"data": ' + DEEP + b"}")
    docs, bad, _ = read_all(deep_squad, fmt="squad")
    assert docs == [] and len(bad) == 1 and "nested too deeply" in bad[0].error
    # a deep first line: the format is told from the next line, and only the deep line is quarantined
    first = write(tmp_path / "first.jsonl", b'{"id": "d", "text": ' + DEEP + b'}\n'
                  b'{"id": "1", "title": "t", "url": "u", "text": "\xe4\xb8\xad"}\n')
    docs, bad, _ = read_all(first)
    assert [d.id for d in docs] == ["src:1"] and bad[0].position == 1 and "nested too deeply" in bad[0].error


def test_a_file_name_that_is_not_utf8_is_quarantined_with_a_writable_name(tmp_path):
    import os
    path = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"bad\xffname.jsonl"))
    write(Path(path), '{"id": "1", "title": "t", "text": "中文"}\n')
    docs, bad, _ = read_all(tmp_path)
    assert docs == [] and len(bad) == 1 and "file name is not UTF-8" in bad[0].error
    assert bad[0].file.endswith("bad\\udcffname.jsonl")
    _arrow_safe(bad)


def test_truncated_bz2_keeps_what_was_read_and_quarantines_the_rest(tmp_path):
    rng = random.Random(0)
    han = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    lines = "".join(json.dumps({"id": str(i), "url": "u", "title": f"t{i}",
                                "text": "".join(rng.choice(han) for _ in range(600))},
                               ensure_ascii=False) + "\n" for i in range(2000))  # 3.6 MB: several bz2 blocks
    data = bz2.compress(lines.encode("utf-8"))
    path = write(tmp_path / "wiki.jsonl.bz2", data[: len(data) // 2])
    docs, bad, _ = read_all(path, fmt="wiki2019zh")
    assert 0 < len(docs) < 2000
    assert len(bad) == 1 and "file ended early" in bad[0].error and bad[0].position >= len(docs)


def test_xml_entities_are_never_expanded(tmp_path):
    laughs = "".join(f'<!ENTITY lol{i} "{"&lol%d;" % (i - 1) * 10}">' for i in range(1, 10))
    xml = f"""<?xml version="1.0"?>
<!DOCTYPE mediawiki [<!ENTITY lol0 "lol">{laughs}<!ENTITY ext SYSTEM "file:///etc/passwd">]>
<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">
<page><title>甲</title><ns>0</ns><id>1</id><revision><id>1</id>
<text xml:space="preserve">甲是一个字。&lol9;&ext;</text></revision></page>
<page><title>乙</title><ns>0</ns><id>2</id><revision><id>2</id><text>乙也是一个字。</text></revision></page>
</mediawiki>"""
    path = write(tmp_path / "evil-pages-articles.xml", xml)
    docs, bad, _ = read_all(path)
    assert all("lol" not in d.text and "root:" not in d.text for d in docs)
    assert sum(len(d.text) for d in docs) < 100
    assert len(docs) + len(bad) >= 1


def test_broken_xml_quarantines_the_rest_of_the_file(tmp_path):
    xml = ('<mediawiki><page><title>甲</title><ns>0</ns><id>1</id><revision><text>甲文。</text></revision></page>'
           '<page><title>乙</title><ns>0</ns><id>2</id><revision><text>乙文')
    docs, bad, _ = read_all(write(tmp_path / "cut.xml", xml))
    assert [d.title for d in docs] == ["甲"]
    assert len(bad) == 1 and "XML error" in bad[0].error


def test_wikiextractor_blocks_unclosed_and_oversized(tmp_path):
    text = ('<doc id="1" url="u1" title="甲">\n甲\n\n第一篇。\n</doc>\n'
            '<doc id="2" url="u2" title="乙">\n乙\n\n' + "很长的内容。" * 200 + "\n</doc>\n"
            '<doc id="3" url="u3" title="丙">\n丙\n\n没有结束。\n')
    docs, bad, _ = read_all(write(tmp_path / "wiki_00", text), max_record_bytes=1000)
    assert [d.id for d in docs] == ["src:1"] and docs[0].text == "第一篇。"
    assert [b.position for b in bad] == [6, 11]
    assert "longer than 1000 bytes" in bad[0].error and "not closed" in bad[1].error


def test_unreadable_and_undetectable_files_are_quarantined(tmp_path):
    weird = write(tmp_path / "weird.json", '{"foo": 1, "bar": 2}\n')
    with pytest.raises(FormatError):
        detect(str(weird))
    file = InputFile(path=str(weird), relpath="weird.json", source="s", format="auto", size=10)
    records = list(read_file(file))
    assert len(records) == 1 and isinstance(records[0], Quarantined) and "pass --format" in records[0].error
    missing = InputFile(path=str(tmp_path / "gone.jsonl"), relpath="gone.jsonl", source="s", format="auto", size=0)
    records = list(read_file(missing))
    assert len(records) == 1 and records[0].position == 0 and "No such file" in records[0].error


def test_empty_file_yields_nothing(tmp_path):
    docs, bad, count = read_all(write(tmp_path / "empty.txt", b""))
    assert docs == [] and bad == [] and count["ingest.files"] == 1


def test_shared_wiki2019zh_sample(tmp_path):
    docs, bad, _ = read_all(shared_file("corpora", "wiki2019zh_sample.jsonl"))
    assert len(docs) == 64 and not bad
    assert sum("-{" in d.text for d in docs) > 0     # resolved by clean (tested in test_clean)


@pytest.mark.parametrize("name, fmt, count", [
    ("wikiextractor_doc_sample.txt", "wikiextractor", 16),
    ("chinesewebtext_sample.jsonl", "ccnet", 100),
    ("cmrc2018_dev.json", "squad", 848),
    ("drcd_dev_traditional.json", "squad", 1000),
])
def test_shared_corpora_are_read(name, fmt, count):
    path = shared_file("corpora", name)
    assert detect(str(path)) == fmt
    docs, bad, _ = read_all(path)
    assert len(docs) == count and not bad
    assert len({d.id for d in docs}) == count


def test_shared_mediawiki_dump():
    docs, bad, count = read_all(shared_file("dumps", "enwiki-pages-articles-sample.xml.bz2"))
    assert docs and not bad
    assert count["ingest.skipped.redirect"] > 0
    assert not any("{{" in d.text or "[[" in d.text for d in docs)


# --- ids unique across the files of a source ----------------------------------------------------------------

ARTICLE = ("数学是研究数量、结构以及空间等概念的一门学科。它透过抽象化和逻辑推理，由计数、计算、量度发展而成。"
           "数学家们拓展这些概念，以公式化新的猜想，并从选定的公理及定义中建立起严谨推导出的定理。")


def wiki_line(doc_id: str, title: str, text: str) -> str:
    return json.dumps({"id": doc_id, "url": f"https://zh.wikipedia.org/wiki?curid={doc_id}", "title": title,
                       "text": f"{title}\n\n{text}"}, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("engine", ["beam", "spark"])
def test_two_datasets_in_one_source_get_ids_of_their_own(tmp_path, engine):
    """A wiki2019zh file and a zhwiki <doc> extraction in one source both call the article 数学 13: the first
    by (file, position) keeps the native id, the other takes its file-and-position id, and dedup then sees the
    two as what they are (a near-duplicate pair) instead of one document."""
    from conftest import make_config
    from pipeline.outputs import read_table
    from pipeline.stages import run_stage

    source = tmp_path / "wiki"
    write(source / "a_wiki2019zh.jsonl", wiki_line("13", "数学", ARTICLE) + wiki_line("18", "哲学", "哲学" * 40)
          + wiki_line("18", "哲学史", "哲学史是研究哲学发展的学科。" * 8))          # a repeated id inside one file
    write(source / "b_extracted" / "wiki_00",
          f'<doc id="13" url="https://zh.wikipedia.org/wiki?curid=13" title="数学">\n数学\n\n{ARTICLE}又：数学是科学。\n'
          '</doc>\n<doc id="21" url="https://zh.wikipedia.org/wiki?curid=21" title="物理">\n物理\n\n'
          + "物理学研究物质、能量及其相互作用。" * 6 + "\n</doc>\n")
    config = make_config(tmp_path / "out", [f"wiki={source}"], engine)
    stats = run_stage("ingest", config, log=lambda *_: None)
    docs = read_table(tmp_path / "out" / "ingest" / "documents", "documents").to_pylist()
    by_id = {d["id"]: d for d in docs}
    assert len(docs) == 5 == len(by_id)
    assert stats["counters"]["ingest.ids_renamed"] == 2
    assert by_id["wiki:13"]["file"].endswith("a_wiki2019zh.jsonl")         # first file in path order keeps it
    assert by_id["wiki:18"]["title"] == "哲学"                               # first line of the file keeps it
    assert by_id["wiki:a_wiki2019zh.jsonl:000000003"]["title"] == "哲学史"
    assert by_id["wiki:b_extracted/wiki_00:000000001"]["title"] == "数学"
    assert by_id["wiki:21"]["title"] == "物理"                               # unshared ids stay native
    # the renamed copy of 数学 is a near-duplicate of the one that kept the id, and dedup finds it
    run_stage("clean", config, log=lambda *_: None)
    run_stage("dedup", config, log=lambda *_: None)
    pairs = {(d["id"], d["duplicate_of"]) for d in read_table(tmp_path / "out" / "dedup" / "duplicates",
                                                        "duplicates").to_pylist()}
    assert ("wiki:b_extracted/wiki_00:000000001", "wiki:13") in pairs or \
           ("wiki:13", "wiki:b_extracted/wiki_00:000000001") in pairs


def test_an_id_already_taken_by_a_renamed_form_gets_a_suffix(tmp_path):
    from pipeline.ingest.ids import make_unique
    from pipeline.outputs import TableWriter, read_table
    from pipeline.records import Document

    table = tmp_path / "documents"
    first, second = TableWriter(table, "documents", "part-0"), TableWriter(table, "documents", "part-1")
    first.add(Document(id="s:7", source="s", format="text", text="x", file="/in/f1", position=1))
    first.add(Document(id="s:f2:000000004", source="s", format="text", text="y", file="/in/f0", position=9))
    second.add(Document(id="s:7", source="s", format="text", text="z", file="/in/f2", position=4))
    first.close(), second.close()
    files = [InputFile(f"/in/f{k}", f"f{k}", "s", "text", 1) for k in range(3)]
    assert make_unique(str(table), files) == 1
    ids = sorted(read_table(table, "documents", ["id"]).column("id").to_pylist())
    assert ids == ["s:7", "s:f2:000000004", "s:f2:000000004#2"]
    assert make_unique(str(table), files) == 0                                # unique now: nothing rewritten


def _id_table(tmp_path, ids_per_file):
    from pipeline.outputs import TableWriter
    from pipeline.records import Document

    table = tmp_path / "documents"
    for n, ids in enumerate(ids_per_file):
        writer = TableWriter(table, "documents", f"part-{n}")
        for k, doc_id in enumerate(ids):
            writer.add(Document(id=doc_id, source="s", format="text", text="x", file=f"/in/f{n}", position=k))
        writer.close()
    return table


def test_shared_ids_through_disk_partitions_equal_one_count(tmp_path):
    from collections import Counter

    from pipeline.ingest.ids import shared_ids_on_disk

    rng = random.Random(3)
    files = [[f"s:{rng.randrange(900)}" for _ in range(400)] for _ in range(3)]
    table = _id_table(tmp_path, files)
    expected = sorted(i for i, n in Counter(i for ids in files for i in ids).items() if n > 1)
    assert len(expected) > 100
    work = tmp_path / "work"
    work.mkdir()
    assert shared_ids_on_disk(str(table), str(work), ids_per_partition=100) == expected    # 12 partitions
    assert shared_ids_on_disk(str(table), str(work)) == expected                            # one
    assert not list(work.iterdir())                                                         # partitions removed


@pytest.mark.parametrize("engine", ["beam", "spark"])
def test_the_engines_group_by_id(tmp_path, engine):
    from pipeline.engine import Job, engine as engine_of

    table = _id_table(tmp_path, [["s:1", "s:2", "s:3"], ["s:2", "s:4", "s:1", "s:2"]])
    config = make_config(tmp_path / "out", [], engine=engine)
    adapter = engine_of(engine)
    adapter.start(config)
    assert adapter.shared_ids(Job(config, None, source=str(table))) == ["s:1", "s:2"]
