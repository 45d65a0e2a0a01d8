"""The bundled sample corpus: deterministic, well-formed, and as EXPECTED says."""

import bz2
import hashlib
import base64
import json
import re
import unicodedata
import xml.etree.ElementTree as ET

import pytest

from pipeline import sample
from pipeline.sample import EXPECTED, write_sample

MW = "{http://www.mediawiki.org/xml/export-0.10/}"
DOC_RE = re.compile(
    r'<doc id="(\d+)" url="([^"]+)" title="([^"]*)">\n(.*?)\n</doc>\n', re.DOTALL)

# characters that only occur in traditional script (their simplified forms differ)
TRAD_ONLY = set("橋樑與為們這個來時從說對還發會點過學國農曆陽陰間層雲龍烏產區鐵觀蘭廣東鳳單葉綠紅製圓漿臺灣歷結構種當隨動傳統")
SIMP_ONLY = set("桥梁与为们这个来时从说对还发会点过学国农历阳阴间层云龙乌产区铁观兰广东凤单叶绿红制圆浆台湾历结构种当随动传统")


def _is_traditional(text):
    t = sum(ch in TRAD_ONLY for ch in text)
    s = sum(ch in SIMP_ONLY for ch in text)
    return t >= 10 and t > 3 * s


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    write_sample(root)
    return root


def _lines(path):
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def _json_lines(path):
    """(parsed objects, number of lines that failed to parse)."""
    good, bad = [], 0
    for line in _lines(path):
        try:
            good.append(json.loads(line))
        except json.JSONDecodeError:
            bad += 1
    return good, bad


def _pages(sample_dir):
    data = bz2.decompress((sample_dir / sample.ZHWIKI).read_bytes())
    root = ET.fromstring(data)
    assert root.tag == MW + "mediawiki"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh"
    return root


def test_deterministic(tmp_path):
    a = write_sample(tmp_path / "a")
    b = write_sample(tmp_path / "b")
    rel_a = [p.relative_to(tmp_path / "a").as_posix() for p in a]
    rel_b = [p.relative_to(tmp_path / "b").as_posix() for p in b]
    assert rel_a == rel_b == sorted(EXPECTED["documents"])
    assert a == sorted(a)
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes(), pa
    # a second write into the same directory gives the same bytes too
    before = {p: p.read_bytes() for p in a}
    write_sample(tmp_path / "a")
    assert {p: p.read_bytes() for p in a} == before


def test_sizes(sample_dir):
    files = [p for p in sample_dir.rglob("*") if p.is_file()]
    assert len(files) == len(EXPECTED["documents"])
    for p in files:
        assert p.stat().st_size < 60 * 1024, p
    assert sum(p.stat().st_size for p in files) < 150 * 1024
    assert 40 <= sum(EXPECTED["documents"].values()) <= 60


def test_text_files_utf8_lf(sample_dir):
    for rel in EXPECTED["documents"]:
        if rel.endswith(".bz2"):
            continue
        raw = (sample_dir / rel).read_bytes()
        raw.decode("utf-8")
        assert b"\r" not in raw, rel  # \r\n only JSON-escaped inside baike answers
        assert raw.endswith(b"\n")


def test_zhwiki(sample_dir):
    root = _pages(sample_dir)
    siteinfo = root.find(MW + "siteinfo")
    assert siteinfo.findtext(MW + "sitename") == "维基百科"
    assert siteinfo.findtext(MW + "dbname") == "zhwiki"
    ns = {int(n.get("key")): (n.text or "") for n in siteinfo.iter(MW + "namespace")}
    assert ns[0] == "" and ns[6] == "File" and ns[10] == "Template" and ns[14] == "Category"

    documents = redirects = other = malformed = 0
    traditional = []
    for page in root.findall(MW + "page"):
        rev = page.find(MW + "revision")
        assert rev.findtext(MW + "model") == "wikitext"
        text_el = rev.find(MW + "text")
        if page.findtext(MW + "ns") != "0":
            other += 1
            assert page.findtext(MW + "title").split(":")[0] in ("Template", "Category")
            continue
        if page.find(MW + "redirect") is not None:
            redirects += 1
            assert text_el.text.startswith("#REDIRECT [[")
            continue
        documents += 1
        if text_el is None:
            malformed += 1
            continue
        text = text_el.text
        assert int(text_el.get("bytes")) == len(text.encode("utf-8"))
        assert 300 <= len(text) <= 1500, page.findtext(MW + "title")
        assert len(rev.findtext(MW + "sha1")) == 31
        if _is_traditional(text):
            traditional.append(page.findtext(MW + "title"))
    assert documents == EXPECTED["documents"][sample.ZHWIKI] == 9
    assert redirects == EXPECTED["redirects"] == 1
    assert other == EXPECTED["other_namespaces"] == 2
    assert malformed == EXPECTED["malformed"][sample.ZHWIKI] == 1
    assert len(traditional) >= 2
    assert sorted(traditional) == sorted(EXPECTED["traditional"][sample.ZHWIKI])


def test_zhwiki_markup(sample_dir):
    root = _pages(sample_dir)
    texts = "\n".join(t.text for t in root.iter(MW + "text"))
    for needle in ("{{Infobox", "{{convert|", "<ref", "</ref>", '{| class="wikitable',
                   "|}", "[[File:", "|thumb|", "[[Category:", "[[en:", "== ", "\n* ",
                   "'''", "-{zh-hans:", ";zh-hant:", "#REDIRECT [["):
        assert needle in texts, needle
    assert re.search(r"\[\[[^\]|]+\|[^\]]+\]\]", texts)  # [[target|label]]


def test_wikiextractor(sample_dir):
    text = (sample_dir / sample.WIKIEXTRACTOR).read_text(encoding="utf-8")
    docs = DOC_RE.findall(text)
    assert "".join(m.group(0) for m in DOC_RE.finditer(text)) == text
    assert len(docs) == EXPECTED["documents"][sample.WIKIEXTRACTOR] == 4
    for pid, url, title, body in docs:
        assert url == f"https://zh.wikipedia.org/wiki?curid={pid}"
        assert body.startswith(title + "\n\n")
    assert any(_is_traditional(body) for *_, body in docs)
    assert "-{zh-hans:" in text
    # the traditional article is a near-duplicate of a zhwiki article
    zh_titles = {p.findtext(MW + "title") for p in _pages(sample_dir).findall(MW + "page")}
    trad = [title for _, _, title, body in docs if _is_traditional(body)]
    assert trad and set(trad) <= zh_titles


def test_wikiextractor_json(sample_dir):
    objs, bad = _json_lines(sample_dir / sample.WIKIEXTRACTOR_JSON)
    assert bad == 0
    assert len(objs) == EXPECTED["documents"][sample.WIKIEXTRACTOR_JSON] == 3
    for o in objs:
        assert list(o) == ["id", "revid", "url", "title", "text"]
        assert o["text"].startswith(o["title"] + "\n\n")


def test_wiki2019zh_exact_duplicate(sample_dir):
    objs, bad = _json_lines(sample_dir / sample.WIKI2019ZH)
    assert bad == 0
    assert len(objs) == EXPECTED["documents"][sample.WIKI2019ZH] == 4
    for o in objs:
        assert list(o) == ["id", "url", "title", "text"]
        assert isinstance(o["id"], str)
        assert o["url"] == f"https://zh.wikipedia.org/wiki?curid={o['id']}"
    extracted = {pid: body for pid, _, _, body in
                 DOC_RE.findall((sample_dir / sample.WIKIEXTRACTOR).read_text(encoding="utf-8"))}
    copies = [(pid, o["id"]) for o in objs for pid, body in extracted.items()
              if body == o["text"]]
    assert len(copies) == 1 and copies[0][0] != copies[0][1]


def _normalise(s):
    return "".join(ch for ch in s if not ch.isspace()
                   and unicodedata.category(ch)[0] not in "PZ")


def test_news2016zh(sample_dir):
    lines = _lines(sample_dir / sample.NEWS2016ZH)
    objs, bad = _json_lines(sample_dir / sample.NEWS2016ZH)
    assert len(lines) == EXPECTED["documents"][sample.NEWS2016ZH] == 6
    assert bad == EXPECTED["malformed"][sample.NEWS2016ZH] == 1
    broken = [i for i, line in enumerate(lines) if not _parses(line)]
    assert broken == [n - 1 for n in EXPECTED["broken_json_lines"][sample.NEWS2016ZH]]
    assert 0 < broken[0] < len(lines) - 1
    for o in objs:
        assert list(o) == ["news_id", "keywords", "title", "desc", "source", "time", "content"]
    by_content = {}
    for o in objs:
        by_content.setdefault(_normalise(o["content"]), []).append(o)
    dups = [g for g in by_content.values() if len(g) > 1]
    assert len(dups) == 1 and len(dups[0]) == 2
    a, b = dups[0]
    assert a["title"] != b["title"] and a["content"] != b["content"]


def _parses(line):
    try:
        json.loads(line)
        return True
    except json.JSONDecodeError:
        return False


def test_baike2018qa(sample_dir):
    objs, bad = _json_lines(sample_dir / sample.BAIKE2018QA)
    assert bad == 0
    assert len(objs) == EXPECTED["documents"][sample.BAIKE2018QA] == 5
    for o in objs:
        assert list(o) == ["qid", "category", "title", "desc", "answer"]
        assert o["qid"].startswith("qid_")
    assert any("\r\n" in o["answer"] for o in objs)
    short = [o["qid"] for o in objs if len(o["answer"]) < 10]
    assert short == EXPECTED["short_records"][sample.BAIKE2018QA]


def test_webtext2019zh(sample_dir):
    objs, bad = _json_lines(sample_dir / sample.WEBTEXT2019ZH)
    assert bad == 0
    assert len(objs) == EXPECTED["documents"][sample.WEBTEXT2019ZH] == 5
    for o in objs:
        assert list(o) == ["qid", "title", "desc", "topic", "star", "content",
                           "answer_id", "answerer_tags"]
        assert all(type(o[k]) is int for k in ("qid", "star", "answer_id"))
    assert any("<br>" in o["desc"] for o in objs)


def test_chinesewebtext(sample_dir):
    objs, bad = _json_lines(sample_dir / sample.CHINESEWEBTEXT)
    assert bad == 0
    assert len(objs) == EXPECTED["documents"][sample.CHINESEWEBTEXT] == 6
    keys = ["url", "date_download", "digest", "length", "nlines", "source_domain", "title",
            "raw_content", "cc_segment", "original_nlines", "original_length", "line_ids",
            "language", "language_score", "perplexity", "bucket"]
    for o in objs:
        assert list(o) == keys
        raw = o["raw_content"]
        digest = base64.b32encode(hashlib.sha1(raw.encode("utf-8")).digest()).decode()
        assert o["digest"] == "sha1:" + digest and len(digest) == 32
        assert o["length"] == len(raw)
        assert o["nlines"] == len(raw.split("\n")) == len(o["line_ids"])
        assert o["line_ids"] == sorted(set(o["line_ids"]))
        assert o["line_ids"][-1] < o["original_nlines"]
        assert o["original_length"] >= o["length"]
        assert o["language"] == "zh" and o["bucket"] in ("head", "middle", "tail")
    by_url = {o["url"]: o["raw_content"] for o in objs}

    def han_share(s):
        letters = [ch for ch in s if ch.isalpha()]
        return sum("\u4e00" <= ch <= "\u9fff" for ch in letters) / len(letters)

    (low,) = EXPECTED["low_han_pages"][sample.CHINESEWEBTEXT]
    assert han_share(by_url[low]) < 0.2
    (rep,) = EXPECTED["repetition_pages"][sample.CHINESEWEBTEXT]
    rep_lines = by_url[rep].split("\n")
    assert len(set(rep_lines)) <= 3 and len(rep_lines) >= 20
    (boiler,) = EXPECTED["boilerplate_pages"][sample.CHINESEWEBTEXT]
    for marker in ("首页", "上一篇", "下一篇", "返回顶部", "版权所有 ©", "联系我们", "扫一扫"):
        assert marker in by_url[boiler]


def test_plain(sample_dir):
    text = (sample_dir / sample.PLAIN).read_text(encoding="utf-8")
    docs = [d for d in text.rstrip("\n").split("\n\n")]
    assert len(docs) == EXPECTED["documents"][sample.PLAIN] == 4
    for d in docs:
        assert 4 <= len(d.split("\n")) <= 8
        assert "" not in d.split("\n")
    assert re.search("[\uff21-\uff3a]+[\uff10-\uff19]+", text)  # ＡＢＣ１２３
    (line,) = [ln for ln in text.split("\n") if "\u200b" in ln]
    assert "\u0007" in line


def test_expected_totals():
    assert EXPECTED["total_documents"] == sum(EXPECTED["documents"].values()) == 46
    assert set(EXPECTED["malformed"]) <= set(EXPECTED["documents"])
