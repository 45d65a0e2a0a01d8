"""A small bundled sample corpus, one file per supported input format.

Every sentence in it was written for this project (encyclopedic, news and Q&A
style prose about ordinary topics and a fictional town, 云岭镇); nothing is
copied from a public corpus.  The files imitate the real formats closely enough
to exercise the readers, the cleaning rules and deduplication:

* ``zhwiki/zhwiki-20240101-pages-articles.xml.bz2`` -- MediaWiki XML export
* ``wikiextractor/AA/wiki_00`` -- wikiextractor ``<doc>`` blocks
* ``wikiextractor_json/AA/wiki_00`` -- wikiextractor ``--json``
* ``wiki2019zh/wiki_zh_sample.jsonl`` -- nlp_chinese_corpus wiki2019zh
* ``news2016zh/news2016zh_sample.json`` -- nlp_chinese_corpus news2016zh
* ``baike2018qa/baike_qa_sample.json`` -- nlp_chinese_corpus baike2018qa
* ``webtext2019zh/web_text_zh_sample.json`` -- nlp_chinese_corpus webtext2019zh
* ``chinesewebtext/cleared_sample.jsonl`` -- CCNet / ChineseWebText
* ``plain/bert_format.txt`` -- google-research/bert pretraining text

The files are package data under ``corpus/`` beside this module, read with
``importlib.resources``, each kept as it is written out except the zhwiki dump,
kept as its XML and bz2-compressed (level 9) on the way out.  Some flaws are
on purpose, and ``EXPECTED`` lists them: a news line cut off mid-record, a
zhwiki page whose revision has no ``<text>``, a copy of an article under another
id, a repost differing only in punctuation and whitespace, a traditional-script
copy of a zhwiki article, boilerplate, repetitive and non-Chinese web pages, a
record under ten characters, a zero-width space and a BEL in the plain text.
Editing a zhwiki page means updating its ``bytes`` (UTF-8 length of the text)
and ``sha1`` (base-36 SHA-1, 31 digits) too; ``tests/test_sample.py`` checks
both, and every fact in ``EXPECTED``.

``write_sample(out_dir)`` is deterministic: the same bytes on every call.

Usage: ``python -m pipeline.sample OUT_DIR``
"""

from __future__ import annotations

import bz2
import pathlib
from functools import reduce
from importlib import resources

ZHWIKI = "zhwiki/zhwiki-20240101-pages-articles.xml.bz2"
WIKIEXTRACTOR = "wikiextractor/AA/wiki_00"
WIKIEXTRACTOR_JSON = "wikiextractor_json/AA/wiki_00"
WIKI2019ZH = "wiki2019zh/wiki_zh_sample.jsonl"
NEWS2016ZH = "news2016zh/news2016zh_sample.json"
BAIKE2018QA = "baike2018qa/baike_qa_sample.json"
WEBTEXT2019ZH = "webtext2019zh/web_text_zh_sample.json"
CHINESEWEBTEXT = "chinesewebtext/cleared_sample.jsonl"
PLAIN = "plain/bert_format.txt"

FILES = (ZHWIKI, WIKIEXTRACTOR, WIKIEXTRACTOR_JSON, WIKI2019ZH, NEWS2016ZH, BAIKE2018QA, WEBTEXT2019ZH,
         CHINESEWEBTEXT, PLAIN)


def file_bytes(relpath: str) -> bytes:
    """The bytes of one sample file (one of ``FILES``) as ``write_sample`` writes it."""
    if relpath not in FILES:
        raise KeyError(f"{relpath!r} is not a sample file (one of {', '.join(FILES)})")
    compressed = relpath.endswith(".bz2")
    stored = relpath[:-len(".bz2")] if compressed else relpath
    resource = reduce(lambda parent, part: parent / part, stored.split("/"), resources.files(__name__) / "corpus")
    data = resource.read_bytes()
    return bz2.compress(data, 9) if compressed else data


def write_sample(out_dir) -> list[pathlib.Path]:
    """Write the bundled sample corpus (one file per supported input format) under ``out_dir``; return the
    paths written, sorted.  Deterministic: the same bytes on every call."""
    root = pathlib.Path(out_dir)
    written = []
    for rel in FILES:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file_bytes(rel))
        written.append(path)
    return sorted(written)


# The facts the tests rely on (tests/test_sample.py checks each against the files).
EXPECTED = {
    # documents per file; the broken JSON line and the text-less XML page count
    # as one each; redirects and non-main-namespace pages are not counted.
    "documents": {
        ZHWIKI: 9,
        WIKIEXTRACTOR: 4,
        WIKIEXTRACTOR_JSON: 3,
        WIKI2019ZH: 4,
        NEWS2016ZH: 6,
        BAIKE2018QA: 5,
        WEBTEXT2019ZH: 5,
        CHINESEWEBTEXT: 6,
        PLAIN: 4,
    },
    "redirects": 1,
    "other_namespaces": 2,
    "malformed": {ZHWIKI: 1, NEWS2016ZH: 1},
    # --- extra details (not required by every consumer) -------------------
    # 1-based line number of the truncated JSON line
    "broken_json_lines": {NEWS2016ZH: [4]},
    # title of the ns-0 page whose revision has no <text>
    "textless_pages": {ZHWIKI: ["蒸笼"]},
    # articles written in traditional characters: {path: [titles]}
    "traditional": {ZHWIKI: ["石拱橋", "烏龍茶"], WIKIEXTRACTOR: ["月相"]},
    # near-duplicate across dumps (script conversion): (path, title) pairs
    "near_duplicates": [[(ZHWIKI, "月相"), (WIKIEXTRACTOR, "月相")]],
    # byte-identical text under different ids: (path, id) pairs
    "exact_duplicates": [[(WIKIEXTRACTOR, "30417"), (WIKI2019ZH, "9032")]],
    # same content after removing whitespace and punctuation: (path, news_id)
    "normalized_duplicates": [[(NEWS2016ZH, "610241577"), (NEWS2016ZH, "610258893")]],
    # records whose body is shorter than 10 characters
    "short_records": {BAIKE2018QA: ["qid_6019384725510398842"]},
    # ChineseWebText pages meant to be rejected by quality rules, by url
    "boilerplate_pages": {CHINESEWEBTEXT: ["http://www.example.com/news/show-1024.html"]},
    "repetition_pages": {CHINESEWEBTEXT: ["http://shop.example.com/zhuxi/pifa.html"]},
    "low_han_pages": {CHINESEWEBTEXT: ["https://teahouse.example.net/menu"]},
}
EXPECTED["total_documents"] = sum(EXPECTED["documents"].values())
