"""Document quality rules for Chinese text.

Each rule is a small function ``rule(view, options) -> (keep, detail)`` over a
:class:`TextView` of the normalised document; ``detail`` says what was measured
(it goes to the ``rejected`` table).  :data:`RULES` is the order they run in;
the first rule that says no names the rejection.  Thresholds and their sources:

- ``too_short`` / ``too_long``: non-space characters (``min_chars`` 20; ChineseWebText drops <= 200
  for web pages, which is too strict for encyclopedia stubs and QA answers).
- ``low_han_ratio``: Han characters / non-space characters (0.3, ChineseWebText).
- ``boilerplate_lines``: share of lines that are navigation or boilerplate (0.5).
- ``repeated_lines``: share of lines repeating an earlier line (0.3, Gopher; FineWeb-2 cmn uses 0.287).
- ``repeated_ngrams``: share of character 13-grams occurring more than once (0.5, ChineseWebText).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

_WS = re.compile(r"\s+")

# Whole lines that are site navigation, share buttons, copyright and filing
# notices, or breadcrumbs.  Matched against a line with spaces removed.
_BOILERPLATE_WORDS = (
    "首页|主页|返回首页|返回顶部|回到顶部|返回|上一篇|下一篇|上一页|下一页|上一章|下一章|末页|尾页|更多|查看更多|"
    "加载更多|点击查看|点击进入|阅读全文|展开全文|收起|联系我们|关于我们|网站地图|网站导航|友情链接|免责声明|"
    "隐私政策|使用条款|广告服务|投诉建议|意见反馈|帮助中心|登录|注册|登录注册|退出|设为首页|加入收藏|收藏本站|"
    "分享|分享到|打印|关闭|关闭窗口|相关阅读|相关文章|相关推荐|推荐阅读|热门文章|热门推荐|最新文章|猜你喜欢|"
    "扫一扫|扫码关注|关注我们|微信扫一扫|手机版|电脑版|客户端|评论|发表评论|我要评论|点赞|转发|举报|"
    "上一条|下一条|目录|标签|导航"
)
_BOILERPLATE = re.compile(
    r"^(?:(?:" + _BOILERPLATE_WORDS + r")[:：]?[|｜/>＞»·•\-]*)+$"
    r"|版权所有|copyright|©|all\s*rights\s*reserved|icp[备證证]|[京沪粤浙苏]icp|公网安备|增值电信业务"
    r"|^(?:责任编辑|编辑|来源|作者|发布时间|浏览次数|阅读量|点击数)[:：]\S{0,30}$"
    r"|^分享到[:：]"
    r"|^(?:上一篇|下一篇|上一页|下一页|上一条|下一条|上一章|下一章)[:：]"
    r"|^(?:首页|主页|网站首页|当前位置[:：]?)[|｜>＞»/]"
    r"|^(?:[^|｜>＞»]{1,12}[|｜>＞»]){2,}[^|｜>＞»]{0,12}$",
    re.I,
)


def is_boilerplate(line: str) -> bool:
    """A short line that is only navigation, sharing, copyright or a breadcrumb trail."""
    if len(line) > 60:
        return False
    return _BOILERPLATE.search(line.replace(" ", "")) is not None


_HAN_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))


def code_points(text: str) -> np.ndarray:
    """The text's code points as a NumPy array."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


@dataclass
class TextView:
    """What the rules look at: the document's lines and a few counts computed once."""

    lines: list[str]
    boilerplate_lines: int = 0
    text: str = field(init=False)
    codes: np.ndarray = field(init=False, repr=False)   # code points without spaces and newlines
    nonspace: int = field(init=False)
    han: int = field(init=False)

    def __post_init__(self) -> None:
        self.text = "\n".join(self.lines)
        codes = code_points(self.text)
        self.codes = codes[(codes != 0x20) & (codes != 0x0A)]
        self.nonspace = len(self.codes)
        han = np.zeros(len(self.codes), dtype=bool)
        for low, high in _HAN_RANGES:
            han |= (self.codes >= low) & (self.codes <= high)
        self.han = int(np.count_nonzero(han))


Rule = Callable[[TextView, object], tuple[bool, str]]


def empty(view: TextView, options) -> tuple[bool, str]:
    return view.nonspace > 0, "no text left after cleaning"


def too_short(view: TextView, options) -> tuple[bool, str]:
    return view.nonspace >= options.min_chars, f"chars={view.nonspace} < {options.min_chars}"


def too_long(view: TextView, options) -> tuple[bool, str]:
    return view.nonspace <= options.max_chars, f"chars={view.nonspace} > {options.max_chars}"


_RAW_SPACES = (" ", "\n", "\t", "\r", "\u3000", "\u00a0", "\x0b", "\x0c")


def too_long_raw(text: str, options) -> tuple[str, str] | None:
    """``("too_long", detail)`` for a document whose raw text already has more non-space characters than
    ``max_chars``, else None.  Checked before normalising (which only removes characters, so such a document
    could not pass), so a huge document is rejected without costing several normalised copies of itself."""
    if len(text) <= options.max_chars:
        return None
    nonspace = len(text) - sum(text.count(c) for c in _RAW_SPACES)
    if nonspace <= options.max_chars:
        return None
    return "too_long", f"chars={nonspace} > {options.max_chars} (before normalisation)"


def low_han_ratio(view: TextView, options) -> tuple[bool, str]:
    ratio = view.han / view.nonspace if view.nonspace else 0.0
    return ratio >= options.min_han_ratio, f"han_ratio={ratio:.3f} < {options.min_han_ratio}"


def boilerplate_lines(view: TextView, options) -> tuple[bool, str]:
    total = len(view.lines) + view.boilerplate_lines
    ratio = view.boilerplate_lines / total if total else 0.0
    return (ratio <= options.max_boilerplate_line_ratio,
            f"boilerplate_line_ratio={ratio:.3f} > {options.max_boilerplate_line_ratio}")


def repeated_lines(view: TextView, options) -> tuple[bool, str]:
    if len(view.lines) < 2:
        return True, ""
    ratio = 1.0 - len(set(view.lines)) / len(view.lines)
    return (ratio <= options.max_duplicate_line_ratio,
            f"duplicate_line_ratio={ratio:.3f} > {options.max_duplicate_line_ratio}")


def repeated_ngram_ratio(codes: np.ndarray | str, n: int) -> float:
    """Share of character n-grams (whitespace removed) that occur more than once."""
    if isinstance(codes, str):
        codes = code_points(_WS.sub("", codes))
    windows = len(codes) - n + 1
    if windows < 2:
        return 0.0
    codes = codes.astype(np.uint64)
    hashes = codes[:windows].copy()
    base = np.uint64(1_000_003)
    for k in range(1, n):  # polynomial hash of each window, mod 2**64
        hashes *= base
        hashes += codes[k:k + windows]
    hashes.sort()
    same = hashes[1:] == hashes[:-1]
    repeated = np.zeros(windows, dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    return float(np.count_nonzero(repeated)) / windows


def repeated_ngrams(view: TextView, options) -> tuple[bool, str]:
    ratio = repeated_ngram_ratio(view.codes, options.repeated_ngram_size)
    return (ratio <= options.max_repeated_ngram_ratio,
            f"repeated_{options.repeated_ngram_size}gram_ratio={ratio:.3f} > {options.max_repeated_ngram_ratio}")


RULES: tuple[tuple[str, Rule], ...] = (
    ("empty", empty),
    ("too_short", too_short),
    ("too_long", too_long),
    ("low_han_ratio", low_han_ratio),
    ("boilerplate_lines", boilerplate_lines),
    ("repeated_lines", repeated_lines),
    ("repeated_ngrams", repeated_ngrams),
)
RULE_NAMES = tuple(name for name, _ in RULES)


def first_failure(view: TextView, options) -> tuple[str, str] | None:
    """(rule, detail) of the first rule the document fails, or None if it passes all."""
    for name, rule in RULES:
        keep, detail = rule(view, options)
        if not keep:
            return name, detail
    return None
