"""Tests for pipeline.ingest.wikitext (wikitext -> plain text)."""

import pytest

from pipeline.ingest.wikitext import resolve_conversion_markup, wikitext_to_text

R = resolve_conversion_markup
W = wikitext_to_text


# ---------------------------------------------------------------------------
# resolve_conversion_markup
# ---------------------------------------------------------------------------


def test_conversion_no_markup_returned_unchanged():
    text = "北京是中国的首都。{{模板}} [[链接]] - { } -"
    assert R(text) is text


def test_conversion_plain_body():
    assert R("使用-{文字}-处理") == "使用文字处理"


@pytest.mark.parametrize("body", ["C++", "http://example.org/a;b", "zh", "a=>b", "中文：说明"])
def test_conversion_non_variant_body_unchanged(body):
    assert R("-{" + body + "}-") == body


def test_conversion_variant_list_prefers_simplified():
    assert R("-{zh-hans:计算机;zh-hant:計算機;}-") == "计算机"
    assert R("-{zh-hant:計算機;zh-hans:计算机}-") == "计算机"


def test_conversion_variant_order_and_fallback():
    # zh-cn wins over zh-hans by default
    assert R("-{zh-hans:甲;zh-cn:乙;zh-tw:丙}-") == "乙"
    # none of the preferred variants: the first pair's text
    assert R("-{zh-tw:臺灣;zh-hk:香港}-") == "臺灣"
    # "zh" is the last preference
    assert R("-{zh-tw:甲;zh:乙}-") == "乙"
    # a caller-chosen order
    assert R("-{zh-hans:计算机;zh-hant:計算機}-", variants=("zh-hant",)) == "計算機"
    assert R("-{zh-hans:计算机;zh-tw:電腦}-", variants=("zh-tw", "zh-hant")) == "電腦"


def test_conversion_spaces_around_pairs():
    assert R("-{ zh-hant : 軟體 ; zh-hans : 软件 ; }-") == "软件"


def test_conversion_hidden_title_remove_description_rules_output_nothing():
    for flag in ("H", "T", "-", "D"):
        assert R("甲-{" + flag + "|zh-hans:服务器;zh-hant:伺服器;}-乙") == "甲乙"


def test_conversion_add_rule_outputs_chosen_variant():
    assert R("-{A|zh-hans:服务器;zh-hant:伺服器;}-") == "服务器"
    assert R("-{A|zh-hant:伺服器;zh-cn:服务器}-") == "服务器"


def test_conversion_raw_rule_outputs_body_verbatim():
    assert R("-{R|zh-hans:不转换}-") == "zh-hans:不转换"
    assert R("-{R|C++}-") == "C++"


def test_conversion_unknown_flag_treats_rest_as_body():
    assert R("-{X|zh-hans:鼠标;zh-hant:滑鼠}-") == "鼠标"
    assert R("-{zh-hans;zh-hant|zh-hans:鼠标;zh-hant:滑鼠}-") == "鼠标"
    assert R("-{Q|普通文字}-") == "普通文字"


def test_conversion_unidirectional_rules():
    assert R("-{zh-tw:網路=>zh-cn:网络;}-") == "网络"
    assert R("-{A|zh-tw:網路=>zh-cn:网络;zh-tw:軟體=>zh-sg:软件}-") == "网络"
    assert R("前-{H|zh-tw:網路=>zh-cn:网络;}-后") == "前后"
    assert R("前-{H|網路=>zh-tw:網絡;}-后") == "前后"
    # no preferred variant on the right-hand side: the left-hand text
    assert R("-{A|zh-cn:网络=>zh-tw:網路;}-") == "网络"


def test_conversion_nested_innermost_first():
    assert R("-{zh-hans:甲-{R|乙}-丙;zh-hant:丁}-") == "甲乙丙"
    assert R("外-{ -{zh-hans:内;zh-hant:內}- 层}-") == "外 内 层"


def test_conversion_several_rules_in_a_row():
    text = "-{zh-hans:软件;zh-hant:軟體}-和-{zh-hans:硬件;zh-hant:硬體}-"
    assert R(text) == "软件和硬件"


def test_conversion_unbalanced_does_not_crash():
    assert R("开头-{没有结尾") == "开头-{没有结尾"
    assert R("前-{A|x-{zh-hans:中;zh-hant:中}-") == "前-{A|x中"
    assert R("多余的}-结尾") == "多余的}-结尾"
    assert R("-{") == "-{"
    assert R("}-") == "}-"
    assert R("-{}-") == ""


# ---------------------------------------------------------------------------
# wikitext_to_text: comments, tags and elements
# ---------------------------------------------------------------------------


def test_empty_input():
    assert W("") == ""
    assert W("\n\n  \n") == ""


def test_comments_removed_including_unterminated():
    assert W("甲<!-- 注释 [[链接]] -->乙") == "甲乙"
    assert W("甲<!--\n多行\n注释\n-->乙") == "甲乙"
    assert W("正文<!-- 没有结束") == "正文"


def test_refs_removed():
    assert W('北京<ref name="a">{{cite web|url=http://x.org}}</ref>是首都。') == "北京是首都。"
    assert W('北京<ref name="a" />是首都<REF>资料</REF>。') == "北京是首都。"
    assert W("北京<ref name=b/>是首都<ref group=\"注\">说明</ref>。") == "北京是首都。"
    assert W("正文。\n<references />\n<references>\n<ref name=a>甲</ref>\n</references>") == "正文。"


def test_unclosed_ref_keeps_following_text():
    assert W("甲<ref>乙丙") == "甲乙丙"


@pytest.mark.parametrize(
    "name",
    ["math", "chem", "gallery", "timeline", "score", "graph", "syntaxhighlight",
     "source", "templatedata", "imagemap", "noinclude"],
)
def test_elements_with_dropped_content(name):
    text = "前文<%s attr=\"1\">内容 {{x}} [[y]]</%s>后文" % (name, name.upper())
    assert W(text) == "前文后文"


def test_math_braces_do_not_confuse_templates():
    assert W("公式<math>\\frac{{a}}{b}}</math>成立。") == "公式成立。"


def test_inline_tags_stripped_inner_text_kept():
    text = ('<span style="color:red">红色</span><b>粗体</b><small>小字</small>'
            'x<sup>2</sup><onlyinclude>甲</onlyinclude><includeonly>乙</includeonly>')
    assert W(text) == "红色粗体小字x2甲乙"


def test_block_tags_and_br():
    assert W("第一行<br>第二行<br/>第三行<br />第四行") == "第一行\n第二行\n第三行\n第四行"
    assert W('<div class="a">段落</div>\n<center>居中</center>') == "段落\n居中"
    assert W("<blockquote>引文</blockquote>") == "引文"
    assert W("<poem>\n床前明月光\n疑是地上霜\n</poem>") == "床前明月光\n疑是地上霜"


def test_unknown_angle_brackets_left_alone():
    assert W("若a<b且c>d") == "若a<b且c>d"


def test_nowiki_content_is_literal():
    assert W("写作<nowiki>[[链接]]和{{模板}}</nowiki>即可") == "写作[[链接]]和{{模板}}即可"
    assert W("示例<nowiki>'''不加粗'''</nowiki>。") == "示例'''不加粗'''。"


# ---------------------------------------------------------------------------
# templates and tables
# ---------------------------------------------------------------------------


def test_template_removed():
    assert W("甲{{模板|参数=值}}乙") == "甲乙"


def test_nested_templates_removed():
    text = "开始{{外层|a={{中层|b={{内层|c}}|d}}|e={{另一个}}}}结束"
    assert W(text) == "开始结束"


def test_template_parameters_and_parser_functions_removed():
    assert W("甲{{{1|默认}}}乙") == "甲乙"
    assert W("甲{{#if:{{{x|}}}|是|否}}乙{{#invoke:模块|函数}}丙") == "甲乙丙"
    assert W("甲{{formatnum:{{{人口|{{默认值}}}}}}}乙") == "甲乙"


def test_multiline_template_removed():
    text = "{{Infobox\n| 名称 = 北京\n| 人口 = {{formatnum:100}}\n}}\n北京是首都。"
    assert W(text) == "北京是首都。"


def test_template_closing_after_pipe_line():
    text = "{{导航\n|内容=甲\n|}}\n正文"
    assert W(text) == "正文"


def test_table_removed():
    text = "前文\n{| class=\"wikitable\"\n! 标题\n|-\n| 单元格 [[链接]]\n|}\n后文"
    assert W(text) == "前文\n后文"


def test_nested_tables_and_templates_in_tables():
    text = ("前文\n{|\n| 外层 {{模板|{{内层}}}}\n|\n{| class=\"inner\"\n| 内层表格\n|}\n"
            "| 继续\n|}\n后文")
    assert W(text) == "前文\n后文"


def test_table_inside_template_removed():
    text = "前文{{框\n|内容=\n{|\n| 表格\n|}\n}}后文"
    assert W(text) == "前文后文"


def test_indented_table_removed():
    assert W("前文\n:{|\n| 缩进表格\n|}\n后文") == "前文\n后文"


def test_stray_closing_braces_kept_as_text():
    assert W("集合}}记号") == "集合}}记号"


# ---------------------------------------------------------------------------
# links
# ---------------------------------------------------------------------------


def test_internal_links():
    assert W("[[中华人民共和国|中国]]的[[首都]]") == "中国的首都"


def test_link_trail_kept():
    assert W("[[学生]]们和[[老师]]s") == "学生们和老师s"


def test_link_with_section_and_pipe_trick():
    assert W("[[北京#历史|北京的历史]]") == "北京的历史"
    assert W("[[长江 (河流)|]]") == "长江"


def test_colon_links_are_visible():
    assert W("见[[:Category:城市|城市分类]]。") == "见城市分类。"
    assert W("见[[:File:图.png|这张图]]。") == "见这张图。"


@pytest.mark.parametrize(
    "prefix",
    ["File", "file", "Image", "image", "文件", "檔案", "档案", "图像", "圖像", "Media", "媒体", " File ", "FILE"],
)
def test_file_links_removed(prefix):
    assert W("前[[%s:示例.jpg|thumb|说明文字]]后" % prefix) == "前后"


def test_file_link_with_nested_links_in_caption():
    text = "前[[File:a.jpg|thumb|说明[[链接]]文字，[[甲|乙]]和[[File:b.png|小图]]]]后"
    assert W(text) == "前后"


def test_category_links_removed():
    assert W("正文[[Category:城市]][[分类:首都|排序]][[分類:亞洲]][[category:X]]") == "正文"


def test_interlanguage_links_removed():
    text = "正文[[en:Beijing]][[ja:北京市]][[zh-yue:北京]][[simple:Beijing]][[zh-min-nan:Pak-kiaⁿ]]"
    assert W(text) == "正文"


def test_interwiki_links_with_labels_kept():
    assert W("[[wikt:词|词]]") == "词"
    assert W("[[Wikipedia:方针|方针]]") == "方针"


def test_unclosed_internal_link_left_as_text():
    assert W("见[[北京") == "见[[北京"
    assert W("见[[北京|首都") == "见[[北京|首都"


def test_external_links():
    assert W("[http://example.org 官方网站]") == "官方网站"
    assert W("参见[http://example.org]。") == "参见。"
    assert W("[https://example.org/a?b=1&c=2 带 空格 的 标题]") == "带 空格 的 标题"
    assert W("[//example.org 协议相对]") == "协议相对"


def test_bare_urls_kept():
    assert W("网址 http://example.org/路径 可以访问") == "网址 http://example.org/路径 可以访问"


# ---------------------------------------------------------------------------
# formatting and line-level markup
# ---------------------------------------------------------------------------


def test_bold_and_italic_removed():
    assert W("'''粗体'''、''斜体''和'''''粗斜体'''''") == "粗体、斜体和粗斜体"


def test_single_apostrophe_kept():
    assert W("l'amour") == "l'amour"


@pytest.mark.parametrize("level", range(1, 7))
def test_headings(level):
    marks = "=" * level
    assert W("前文\n%s 标题 %s\n后文" % (marks, marks)) == "前文\n标题\n后文"


def test_heading_with_ref_and_link():
    assert W("== [[历史]]<ref>甲</ref> ==\n内容") == "历史\n内容"


def test_list_and_indent_markers_removed():
    text = "* 第一项\n** 子项\n# 编号\n#: 续行\n: 缩进\n;术语\n*#; 混合"
    assert W(text) == "第一项\n子项\n编号\n续行\n缩进\n术语\n混合"


def test_horizontal_rule_removed():
    assert W("上文\n----\n下文\n------") == "上文\n下文"


def test_behaviour_switches_removed():
    assert W("__TOC__正文__NOTOC____NOEDITSECTION__\n__NOCONTENTCONVERT__") == "正文"


def test_html_entities_decoded():
    assert W("甲&nbsp;乙&amp;丙&#x4E2D;&#25991;&lt;ref&gt;") == "甲 乙&丙中文<ref>"


def test_conversion_markup_in_article_with_links_inside():
    text = "-{H|zh-hans:网络;zh-hant:網路;}-使用-{zh-hans:[[计算机]];zh-hant:[[電腦]]}-和-{[[C++]]}-"
    assert W(text) == "使用计算机和C++"


def test_empty_brackets_left_by_templates_dropped():
    assert W("'''北京'''（{{lang-en|Beijing}}）是首都") == "北京是首都"
    assert W("甲({{x}})乙") == "甲乙"
    assert W("甲（{{a}}，{{b}}）乙") == "甲乙"
    assert W("甲（{{a}}；{{b}}）乙") == "甲乙"
    assert W("甲({{a}}, {{b}})乙") == "甲乙"
    assert W("甲（{{a}}、{{b}}）乙") == "甲乙"
    assert W("甲（英语：{{lang|en|Foo}}）乙") == "甲乙"


def test_brackets_with_text_kept():
    assert W("甲（{{a}}，别称乙）丙") == "甲（别称乙）丙"
    assert W("函数f(x)的值（约3）") == "函数f(x)的值（约3）"


def test_whitespace_collapsed_and_empty_lines_dropped():
    assert W("  甲   乙\t\t丙  \n\n\n   \n丁") == "甲 乙 丙\n丁"


def test_redirect_page_gives_no_text():
    assert W("#REDIRECT [[北京市]]") == ""
    assert W("#重定向 [[北京市]]") == ""


def test_order_of_text_preserved():
    text = "一{{x}}二[[三]]四<ref>r</ref>五''六''七[http://a.org 八]九"
    assert W(text) == "一二三四五六七八九"


@pytest.mark.parametrize(
    "text",
    [
        "{{", "}}", "[[", "]]", "{|", "|}", "-{", "}-", "<ref>", "</ref>", "<!--",
        "{{模板|[[链接", "[[File:a.jpg|说明[[链接", "{|\n| 表格 {{未闭合",
        "{{{{{{", "}}}}}}", "[[[[", "]]]]", "-{-{-{", "''''''''", "==", "======",
        "<nowiki>", "<math>x", "[http://x.org", "&#xZZZ;", "{{a|{|\n|}}}",
        "-{H|}-", "-{A|}-", "-{zh-hans:}-", "[[|]]", "[[:]]", "[[File:]]",
    ],
)
def test_malformed_input_does_not_raise(text):
    result = W(text)
    assert isinstance(result, str)
    assert "\n\n" not in result


def test_unclosed_template_keeps_text_before():
    result = W("正文开头。{{模板|未闭合\n后续")
    assert result.startswith("正文开头。")


def test_unclosed_table_dropped_to_end():
    assert W("正文。\n{|\n| 未闭合的表格\n后续") == "正文。"


def test_unclosed_outer_template_still_removes_inner_ones():
    assert W("{{外层 甲{{内层}}乙") == "{{外层 甲乙"


def test_large_page_runs():
    block = ("'''甲'''（{{lang-en|A}}）是[[乙|丙]]<ref>{{cite|x}}</ref>。"
             "[[File:a.jpg|thumb|说明[[丁]]]]-{zh-hans:戊;zh-hant:戊}-\n")
    page = block * 5000
    result = W(page)
    assert result == "\n".join(["甲是丙。戊"] * 5000)


# ---------------------------------------------------------------------------
# a whole article
# ---------------------------------------------------------------------------

ARTICLE = """{{Otheruses|subject=本条目|other=同名的电影|电影 (消歧义)}}
{{NoteTA
|G1 = IT
|1 = zh-hans:软件; zh-hant:軟體;
}}
-{H|zh-hans:服务器;zh-hant:伺服器;}-
{{Infobox city
| name       = 青川市
| image      = Qingchuan.jpg
| population = {{formatnum:1234567}}<ref>{{cite web |url=http://stats.example.org |title=人口普查}}</ref>
| area       = {{convert|120|km2}}
}}
'''青川市'''（{{lang-en|Qingchuan City}}；{{lang|ja|せいせん}}），[[中华人民共和国]][[四川省]]下辖的[[地级市]]<ref name="gov">{{cite web|title=行政区划}}</ref>，位于-{zh-hans:川西;zh-hant:川西地區}-[[盆地]]边缘。<!-- 待补充 -->
全市面积约120[[平方公里]]，人口约123万<ref name="gov" />，有-{A|zh-hans:服务器;zh-hant:伺服器}-数千台。

[[File:Qingchuan skyline.jpg|thumb|right|青川市的[[天际线]]，摄于2010年]]

== 历史 ==
青川在[[唐朝]]时设县<ref>《旧唐书》</ref>，[[1958年]]改为'''青川专区'''。
=== 近代 ===
1990年代以后，市内的''软件''产业快速发展，[http://example.org/it 信息产业园]于2001年建成。

== 地理 ==
{| class="wikitable"
|+ 气候数据
! 月份 !! 1月 !! 7月
|-
| 平均气温 || {{convert|2|C}} || 26°C
|}
青川市地势西高东低，主要河流有：
* [[青川河]]
* [[白水江 (四川)|白水江]]
** 支流[[小河]]们
: 注：河流长度见&lt;表1&gt;。

== 参见 ==
* [[四川省行政区划]]
* [http://example.org 官方网站]

== 参考资料 ==
{{reflist}}

{{四川省行政区划}}
[[Category:四川地级市]]
[[分类:青川市|*]]
[[en:Qingchuan]]
[[ja:青川市]]
"""

ARTICLE_TEXT = """青川市，中华人民共和国四川省下辖的地级市，位于川西盆地边缘。
全市面积约120平方公里，人口约123万，有服务器数千台。
历史
青川在唐朝时设县，1958年改为青川专区。
近代
1990年代以后，市内的软件产业快速发展，信息产业园于2001年建成。
地理
青川市地势西高东低，主要河流有：
青川河
白水江
支流小河们
注：河流长度见<表1>。
参见
四川省行政区划
官方网站
参考资料"""


def test_whole_article():
    assert W(ARTICLE) == ARTICLE_TEXT


def test_whole_article_with_windows_newlines():
    assert W(ARTICLE.replace("\n", "\r\n")) == ARTICLE_TEXT


@pytest.mark.parametrize("wikitext, expected", [
    ("voiceless alveolar lateral fricative {{IPA|[ɬ]}}, a sound", "voiceless alveolar lateral fricative, a sound"),
    ("a claim <ref>source</ref>. Next", "a claim. Next"),
    ('a claim <ref name="x" /> ; next', "a claim; next"),
    ("北京 {{lang|en|Beijing}}，是首都 <ref>资料</ref>。", "北京，是首都。"),
    ("x {{a}} {{b}} , y", "x, y"),                              # adjacent removed pieces
    ("x {{a}}<ref>r</ref> ) y", "x) y"),
    ("a sound [[File:x.png|thumb|a [[caption]]]], more", "a sound, more"),
    ("甲 [[Category:乙]]，丙", "甲，丙"),
    ("5 {{x}} % up", "5% up"),
    # spaces the author wrote stay: between words, and before punctuation where nothing was removed
    ("a {{x}} b", "a b"),
    ("[[a]] , b", "a , b"),
    ("a , b {{x}}", "a , b"),
    ("word {{x}}\n, b", "word\n, b"),                           # a line break is not a space to close up
])
def test_no_space_is_left_before_punctuation_where_a_template_or_ref_was_dropped(wikitext, expected):
    """Issue 19.8: ``lateral fricative , a sound`` came from the space before a removed template."""
    assert W(wikitext) == expected
