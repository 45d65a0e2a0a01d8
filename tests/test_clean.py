import pytest

from conftest import shared_file
from pipeline.clean import normalize, rules, sentences
from pipeline.clean.stage import Cleaner
from pipeline.config import CleanOptions
from pipeline.counters import Counters
from pipeline.ingest.files import expand
from pipeline.ingest.readers import read_file
from pipeline.records import Document, Quarantined, Rejected


def doc(text, id="s:1", title=None):
    return Document(id=id, source="s", format="jsonl", text=text, file="f", position=1, title=title)


def test_invisible_characters_are_removed():
    text, n = normalize.remove_invisible("中\u200b文\x07字\ufeff符\r\n下一行\ud800\r末")
    assert text == "中文字符\n下一行\n末" and n == 4


def test_markup_leftovers_are_removed():
    text, n = normalize.remove_markup("甲<br>乙<span class='x'>丙</span>&amp;丁&nbsp;戊（）-{zh-hans:计算机;zh-hant:計算機}-")
    assert text == "甲\n乙丙&丁\u00a0戊计算机" and n > 0
    assert normalize.remove_markup("a < b 且 c > d")[0] == "a < b 且 c > d"


def test_fullwidth_letters_and_digits_fold_but_chinese_punctuation_stays():
    text, n = normalize.fold_fullwidth("ＡＢＣ１２３，。！？（）　ｘ")
    assert text == "ABC123，。！？（） x" and n == 8


def test_traditional_to_simplified_is_counted():
    convert = normalize.ScriptConverter("t2s")
    assert convert("數學是研究數量的學科") == ("数学是研究数量的学科", 4)
    assert convert("数学") == ("数学", 0)
    assert normalize.ScriptConverter("none")("數學") == ("數學", 0)


@pytest.mark.parametrize("line, expected", [
    ("他说：“你好。”然后走了。", ["他说：“你好。”", "然后走了。"]),
    ("真的吗？！当然……好吧", ["真的吗？！", "当然……", "好吧"]),
    ("圆周率约为3.14。版本v2.0发布", ["圆周率约为3.14。", "版本v2.0发布"]),
    ("He left. She stayed! Why?", ["He left.", "She stayed!", "Why?"]),
    ("见www.example.com网站（详见附录。）后文", ["见www.example.com网站（详见附录。）", "后文"]),
    ("没有结束标点", ["没有结束标点"]),
])
def test_sentence_split_keeps_quotes_and_brackets(line, expected):
    assert sentences.split_line(line) == expected


def test_sentences_never_cross_lines():
    assert sentences.split_sentences(["第一行", "第二行。第三句"]) == ["第一行", "第二行。", "第三句"]


@pytest.mark.parametrize("line, is_boilerplate", [
    ("首页 | 新闻 | 体育", True),
    ("上一篇：镇卫生院开展健康咨询", True),
    ("版权所有 © 2023 某某网", True),
    ("京ICP备12345678号", True),
    ("首页 > 新闻中心 > 本地要闻", True),
    ("责任编辑：张三", True),
    ("云岭镇老街夜市将于下月起每周五开放。", False),
    ("他回到首页之后，发现网站已经更新了全部内容。", False),
])
def test_boilerplate_lines(line, is_boilerplate):
    assert rules.is_boilerplate(line) is is_boilerplate


def test_repeated_ngram_ratio():
    assert rules.repeated_ngram_ratio("天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏", 13) == 0.0
    assert rules.repeated_ngram_ratio("买一送一快来抢购吧" * 20, 13) > 0.9
    assert rules.repeated_ngram_ratio("短", 13) == 0.0


@pytest.mark.parametrize("text, rule", [
    ("   \n  ", "empty"),
    ("是水。", "too_short"),
    ("This page is almost all English text with 一点 Chinese in it, far below the threshold.", "low_han_ratio"),
    ("首页\n上一篇\n下一篇\n联系我们\n这是一段正常的中文内容，长度足够通过最短长度的检查。", "boilerplate_lines"),
    ("同一行重复出现的内容很多很多次。\n" * 5 + "最后一行不同的中文内容在这里。", "repeated_lines"),
    ("优质竹席厂家直销价格优惠欢迎来电咨询" * 6, "repeated_ngrams"),
])
def test_each_rule_rejects_with_its_name(text, rule):
    count = Counters()
    result = Cleaner().process(doc(text), count)
    assert isinstance(result, Rejected) and result.rule == rule and result.stage == "clean"
    assert result.detail and count[f"clean.rejected.{rule}"] == 1 and count["clean.rejected"] == 1


def test_rule_thresholds_come_from_options():
    text = "一二三四五六七八九十。"
    assert isinstance(Cleaner().process(doc(text)), Rejected)
    assert isinstance(Cleaner(CleanOptions(min_chars=5)).process(doc(text)), Document)


def test_kept_document_is_normalised_and_split():
    count = Counters()
    raw = "數學是一門學科。\u200b它研究ＡＢＣ與１２３。\n首页 | 新闻\n<b>第二段</b>說明&amp;補充！"
    result = Cleaner().process(doc(raw, title="數學"), count)
    assert isinstance(result, Document)
    assert result.text == "数学是一门学科。它研究ABC与123。\n第二段说明&补充！"
    assert result.sentences == ["数学是一门学科。", "它研究ABC与123。", "第二段说明&补充！"]
    assert result.title == "数学" and result.chars_converted > 0
    assert count["clean.lines_removed.boilerplate"] == 1 and count["clean.docs_converted"] == 1
    assert count["clean.kept"] == count["clean.read"] == 1


def test_conversion_can_be_turned_off():
    result = Cleaner(CleanOptions(convert="none")).process(doc("數學是一門研究數量、結構以及空間的學科。"))
    assert result.text == "數學是一門研究數量、結構以及空間的學科。" and result.chars_converted == 0


def test_a_document_that_breaks_processing_is_quarantined():
    bad = doc("正常的文字")
    bad.text = None  # not a string: processing raises
    count = Counters()
    result = Cleaner().process(bad, count)
    assert isinstance(result, Quarantined) and result.id == "s:1" and "TypeError" in result.error
    assert count["clean.quarantined"] == 1


def test_shared_wiki2019zh_comes_out_resolved_and_simplified():
    path = shared_file("corpora", "wiki2019zh_sample.jsonl")
    docs = [r for f in expand(str(path)) for r in read_file(f)]
    assert sum(d.text.count("-{") for d in docs) > 50
    cleaner, check = Cleaner(), normalize.ScriptConverter("t2s")
    kept = [r for r in (cleaner.process(d) for d in docs) if isinstance(r, Document)]
    assert len(kept) >= 60
    for d in kept:
        assert "-{" not in d.text and "}-" not in d.text
        assert check(d.text)[1] == 0, d.title        # nothing left to simplify
        assert "".join(d.sentences) == d.text.replace("\n", "").replace(" ", "") or d.sentences


def test_shared_traditional_text_is_converted():
    path = shared_file("corpora", "drcd_dev_traditional.json")
    docs = [r for f in expand(str(path)) for r in read_file(f)][:100]
    count = Counters()
    kept = [r for r in (Cleaner().process(d, count) for d in docs) if isinstance(r, Document)]
    assert count["clean.docs_converted"] >= 95 and count["clean.chars_converted"] > 1000
    assert "學" not in "".join(d.text for d in kept)


@pytest.mark.parametrize("name", ["drcd_dev_traditional.json", "wiki2019zh_sample.jsonl", "cmrc2018_dev.json"])
def test_clean_text_is_what_opencc_gives_on_the_whole_document(name):
    """Issue 19.7: whatever clean does around the conversion (invisible characters, markup, full-width, lines),
    its text is OpenCC ``t2s`` run once over the whole raw document, then cleaned without conversion; no
    per-line, per-sentence or per-character shortcut that converts ``於`` differently."""
    import dataclasses

    import opencc

    path = shared_file("corpora", name)
    whole = opencc.OpenCC("t2s.json")
    cleaner, unconverted = Cleaner(), Cleaner(CleanOptions(convert="none"))
    compared = with_yu = 0
    for doc in (r for f in expand(str(path)) for r in read_file(f) if isinstance(r, Document)):
        got = cleaner.process(doc)
        want = unconverted.process(dataclasses.replace(doc, text=whole.convert(doc.text)))
        assert type(got) is type(want), doc.id
        if isinstance(got, Document):
            assert got.text == want.text, doc.id
            assert got.title == (whole.convert(doc.title) if doc.title else doc.title)
            compared += 1
            with_yu += "於" in doc.text
    assert compared >= 60 and (with_yu >= 50 or name != "drcd_dev_traditional.json")


def test_yu_in_shu_yu_and_she_yu_is_simplified_as_opencc_does():
    """The contexts of the report (``屬於``, ``設於``, mixed-script ``属於``): clean gives ``于``, as OpenCC does on
    the whole text.  Where OpenCC's own phrase table keeps ``於`` (its entry ``於倫``: ``位於倫敦`` gives
    ``位於伦敦``), clean keeps it too: the contract is OpenCC's output, not a second pass."""
    import opencc

    whole = opencc.OpenCC("t2s.json")
    cleaner = Cleaner(CleanOptions(min_chars=1))
    for raw, expected in [("香山縣直屬於省。", "香山县直属于省。"), ("總部設於市內。", "总部设于市内。"),
                          ("学堂隶属於伦敦传道会。", "学堂隶属于伦敦传道会。"), ("縣署設於佳里興。", "县署设于佳里兴。"),
                          ("他位於倫敦。", whole.convert("他位於倫敦。"))]:
        doc = Document(id="x", source="s", format="jsonl", text=raw, file="f", position=1)
        out = cleaner.process(doc)
        assert isinstance(out, Document) and out.text == expected == whole.convert(raw), (raw, out)
