"""Plain text from MediaWiki wikitext (zhwiki main-namespace articles).

Two public functions:

* :func:`resolve_conversion_markup` resolves the ``-{...}-`` language
  conversion markup of zhwiki's LanguageConverter to one variant's text.
* :func:`wikitext_to_text` turns a page's raw wikitext into plain text
  paragraphs, one a line.

Only the standard library is used.  Every step is either one compiled regex
pass over the text or one linear token scan (templates, tables, links and
conversion markup nest, so they are matched with a stack instead of a
regex), so the cost grows linearly with the page size.  Malformed markup never
raises: unclosed templates and links are left as literal text, an unclosed
table is dropped to the end of the page.
"""

from __future__ import annotations

import html
import re

__all__ = ["resolve_conversion_markup", "wikitext_to_text"]

DEFAULT_VARIANTS: tuple[str, ...] = ("zh-cn", "zh-hans", "zh-sg", "zh-my", "zh")

# ---------------------------------------------------------------------------
# -{...}- language conversion markup
# ---------------------------------------------------------------------------

_CONV_TOKEN = re.compile(r"-\{|\}-")
# What may stand before the first "|" of a rule to count as its flags:
# letters, "-" and ";" only (H, A, T, D, R, -, "zh-hans;zh-hant", ...).
_CONV_FLAGS = re.compile(r"[A-Za-z\-; \t]{0,40}")
_VARIANT = r"zh(?:-[A-Za-z]{2,4})?"
# A body is a variant list when it starts with "zh...:" or is a
# unidirectional rule "from=>zh-xx:to".
_VARIANT_LIST_START = re.compile(
    r"\s*(?:" + _VARIANT + r"\s*:|[^;]*?=>\s*" + _VARIANT + r"\s*:)"
)
_VARIANT_SPLIT = re.compile(
    r";\s*(?=" + _VARIANT + r"\s*:|[^;]*?=>\s*" + _VARIANT + r"\s*:)"
)
_VARIANT_PAIR = re.compile(r"\s*(" + _VARIANT + r")\s*:(.*)\Z", re.S)
_TRAILING_SEMICOLONS = re.compile(r"[;\s]+\Z")
_SILENT_FLAGS = frozenset({"H", "T", "-", "D"})


def _choose_variant(body: str, variants: tuple[str, ...]) -> str:
    """Text of a rule body: the preferred variant's text for a variant list,
    the body unchanged otherwise."""
    if not _VARIANT_LIST_START.match(body):
        return body
    body = _TRAILING_SEMICOLONS.sub("", body)
    both: dict[str, str] = {}  # bidirectional "zh-xx:text"
    one_way: dict[str, str] = {}  # unidirectional "from=>zh-xx:text"
    first_text = None
    first_from = None
    for segment in _VARIANT_SPLIT.split(body):
        if "=>" in segment:
            left, _, right = segment.partition("=>")
            pair = _VARIANT_PAIR.match(right)
            if pair:
                one_way.setdefault(pair.group(1).lower(), pair.group(2).strip())
                if first_from is None:
                    src = _VARIANT_PAIR.match(left)
                    first_from = (src.group(2) if src else left).strip()
                continue
        pair = _VARIANT_PAIR.match(segment)
        if pair is None:
            continue
        text = pair.group(2).strip()
        both.setdefault(pair.group(1).lower(), text)
        if first_text is None:
            first_text = text
    for variant in variants:
        if variant in both:
            return both[variant]
        if variant in one_way:
            return one_way[variant]
    if first_text is not None:
        return first_text
    if first_from is not None:
        return first_from
    return body


def _convert_rule(body: str, variants: tuple[str, ...]) -> str:
    """Output of one ``-{body}-`` rule (the body's own nested rules already
    resolved)."""
    bar = body.find("|")
    if bar != -1:
        head = body[:bar]
        if _CONV_FLAGS.fullmatch(head):
            flags = {flag.strip() for flag in head.split(";")}
            flags.discard("")
            body = body[bar + 1:]
            if "R" in flags:
                return body
            if flags & _SILENT_FLAGS:
                return ""
            # "A" and unknown flags: the body is shown like a plain rule's.
    return _choose_variant(body, variants)


def resolve_conversion_markup(text: str, variants: tuple[str, ...] = DEFAULT_VARIANTS) -> str:
    """Resolve MediaWiki -{...}- language-conversion markup to one variant's text."""
    if "-{" not in text:
        return text
    variants = tuple(v.lower() for v in variants)
    # stack[0] collects the output; each open "-{" gets a list of its own.
    stack: list[list[str]] = [[]]
    pos = 0
    for match in _CONV_TOKEN.finditer(text):
        stack[-1].append(text[pos:match.start()])
        pos = match.end()
        if match.group() == "-{":
            stack.append([])
        elif len(stack) > 1:
            body = "".join(stack.pop())
            stack[-1].append(_convert_rule(body, variants))
        else:
            stack[-1].append("}-")  # a stray closer is plain text
    stack[-1].append(text[pos:])
    out = stack[0]
    for unclosed in stack[1:]:  # "-{" never closed: left as it was
        out.append("-{")
        out.extend(unclosed)
    return "".join(out)


# ---------------------------------------------------------------------------
# Templates {{...}}, template parameters {{{...}}} and tables {|...|}
# ---------------------------------------------------------------------------

_BLOCK_TOKEN = re.compile(
    r"(?P<open>\{\{+)|(?P<close>\}\}+)|(?P<topen>^[ \t:]*\{\|)|(?P<tclose>^[ \t]*\|\})",
    re.M,
)
_BRACE, _TABLE = 0, 1


def _strip_blocks(text: str) -> str:
    """Remove templates, template parameters, parser functions and tables,
    all of which may nest in each other, in one left-to-right scan.

    Braces pair up like MediaWiki's preprocessor does it: a run of closing
    braces closes the innermost open run, 3 braces at a time at most.  An
    unclosed ``{{`` stays as text (what is inside it and closed is still
    removed); an unclosed table is removed to the end of the text.
    """
    if "{{" not in text and "{|" not in text:
        return text
    stack: list[list[int]] = []  # [kind, start, open braces left]
    spans: list[list[int]] = []  # removed spans: sorted, disjoint

    def record(start: int, end: int) -> None:
        # A span closes at the scan position, so every recorded span that
        # starts inside it lies inside it.
        while spans and spans[-1][0] >= start:
            spans.pop()
        spans.append([start, end])

    search = _BLOCK_TOKEN.search
    pos = 0
    while True:
        match = search(text, pos)
        if match is None:
            break
        kind = match.lastgroup
        if kind == "open":
            stack.append([_BRACE, match.start(), match.end() - match.start()])
            pos = match.end()
        elif kind == "close":
            pos = match.end()
            left = pos - match.start()
            end = match.start()
            matched = False
            while left >= 2:
                i = len(stack) - 1
                while i >= 0 and stack[i][0] != _BRACE:
                    i -= 1
                if i < 0:
                    break
                del stack[i + 1:]  # tables left open inside the template
                entry = stack[i]
                count = min(entry[2], left, 3)
                entry[2] -= count
                left -= count
                end += count
                if entry[2] < 2:  # fully closed (a stray single "{" goes too)
                    stack.pop()
                    record(entry[1], end)
                else:
                    record(entry[1] + entry[2], end)
                matched = True
            if matched and left == 1:  # a stray single "}" goes with it
                spans[-1][1] += 1
        elif kind == "topen":
            stack.append([_TABLE, match.start(), 0])
            pos = match.end()
        else:  # "tclose"
            if stack and stack[-1][0] == _TABLE:
                record(stack.pop()[1], match.end())
                pos = match.end()
            else:
                # Not a table end ("|}}" closing a template, or stray):
                # scan on from the "}" so that a brace run is still seen.
                pos = match.end() - 1
    for entry in stack:
        if entry[0] == _TABLE:  # unclosed table: drop to the end
            record(entry[1], len(text))
            break
    return _splice(text, spans)


# punctuation that attaches to the word before it: a space left before it by a removed template or ref goes
_CLOSING_PUNCT = frozenset(",.;:!?)]}%\u3001\u3002\uff0c\uff0e\uff1b\uff1a\uff01\uff1f\uff09\uff3d\uff5d"
                           "\u300d\u300f\u3011\u300b\u3009\u3015\u3017\u2019\u201d")
_GAP = " \t"


def _splice(text: str, spans) -> str:
    """``text`` without the (sorted, disjoint) ``spans``.

    Where a removed piece stood between a space and punctuation that attaches to the word before it
    (``fricative {{IPA|ɬ}}, a sound``), the spaces around it go too: ``fricative, a sound``, not
    ``fricative , a sound``.  Spaces the author put between words stay (``a {{x}} b`` keeps one).
    """
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out.append(text[pos:start])
        pos = end
        if _attach_punctuation(out, text[pos:pos + 200]):
            while pos < len(text) and text[pos] in _GAP:
                pos += 1
    out.append(text[pos:])
    return "".join(out)


def _attach_punctuation(out: list[str], following: str) -> bool:
    """When the text ``following`` a removed piece starts (after spaces) with attaching punctuation, strip the
    spaces at the end of ``out`` (back over pieces left empty); whether it did."""
    if following.lstrip(_GAP)[:1] not in _CLOSING_PUNCT or not following.lstrip(_GAP):
        return False
    i = len(out) - 1
    while i >= 0:          # back over pieces left empty between adjacent removed spans
        out[i] = out[i].rstrip(_GAP)
        if out[i]:
            break
        i -= 1
    return True


# ---------------------------------------------------------------------------
# Links
# ---------------------------------------------------------------------------

_LINK_TOKEN = re.compile(r"\[\[|\]\]")
_FILE_NAMESPACES = frozenset(
    {"file", "image", "文件", "檔案", "档案", "图像", "圖像", "media", "媒体", "媒體", "图片", "圖片"}
)
_CATEGORY_NAMESPACES = frozenset({"category", "分类", "分類"})
_INTERLANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]+)*|simple")
_PIPE_TRICK_PAREN = re.compile(r"\s*[(（][^()（）]*[)）]\s*\Z")


def _link_text(inner: str) -> str:
    """Displayed text of the internal link ``[[inner]]``."""
    target, pipe, label = inner.partition("|")
    target = target.strip()
    visible_ns = False
    if target.startswith(":"):
        # [[:Category:X]], [[:File:X]], [[:en:X]]: an ordinary inline link.
        target = target[1:].lstrip()
        visible_ns = True
    namespace, colon, rest = target.partition(":")
    if colon and not visible_ns:
        ns = namespace.strip()
        key = ns.replace("_", " ").lower()
        if key in _FILE_NAMESPACES or key in _CATEGORY_NAMESPACES:
            return ""
        if _INTERLANGUAGE.fullmatch(ns):
            return ""
    if pipe:
        if label.strip():
            return label
        # Pipe trick [[Title (x)|]] -> "Title" (also when the label was a
        # template that has been removed).
        shown = rest.strip() if colon else target
        return _PIPE_TRICK_PAREN.sub("", shown) or shown
    return target


def _replace_internal_links(text: str) -> str:
    if "[[" not in text:
        return text
    stack: list[list[str]] = [[]]
    pos = 0
    dropped = False       # the last piece was a link that shows nothing (a file, a category)

    def add(piece: str) -> None:
        nonlocal dropped
        if dropped:
            _attach_punctuation(stack[-1], piece)
            piece = piece.lstrip(_GAP) if piece.lstrip(_GAP)[:1] in _CLOSING_PUNCT else piece
        stack[-1].append(piece)
        dropped = False

    for match in _LINK_TOKEN.finditer(text):
        add(text[pos:match.start()])
        pos = match.end()
        if match.group() == "[[":
            stack.append([])
        elif len(stack) > 1:
            inner = "".join(stack.pop())
            shown = _link_text(inner)
            stack[-1].append(shown)
            dropped = not shown
        else:
            stack[-1].append("]]")
    add(text[pos:])
    out = stack[0]
    for unclosed in stack[1:]:  # "[[" never closed: left as text
        out.append("[[")
        out.extend(unclosed)
    return "".join(out)


_EXTERNAL_LINK = re.compile(
    r"\[(?:(?:https?|ftps?|sftp|ssh|irc|ircs|news|nntp|gopher|telnet|svn|git|mms|worldwind|wss?):)?"
    r"//[^\s\[\]<>\"]+"
    r"(?:[ \t\u3000]+([^\[\]\n]*))?\]"
    r"|\[mailto:[^\s\[\]<>\"]+(?:[ \t\u3000]+([^\[\]\n]*))?\]",
    re.I,
)


def _external_link_text(match: re.Match) -> str:
    label = match.group(1)
    if label is None:
        label = match.group(2)
    return label or ""


# ---------------------------------------------------------------------------
# Comments, tags and elements
# ---------------------------------------------------------------------------

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_REDIRECT = re.compile(r"\s*#\s*(?:redirect|重定向)\b", re.I)
_NOWIKI_OPEN = re.compile(r"<(nowiki|pre)(?=[\s/>])(?:\s[^<>]*?)?(/?)>", re.I)
_NOWIKI_CLOSE = {
    "nowiki": re.compile(r"</nowiki\s*>", re.I),
    "pre": re.compile(r"</pre\s*>", re.I),
}
# Markup characters of nowiki/pre content become character references, so no
# later step sees them as markup; html.unescape at the end brings them back.
_NOWIKI_ESCAPES = {ord(c): "&#%d;" % ord(c) for c in "&<>[]{}|'=-*#:;_"}

_DROPPED_ELEMENTS = (
    "ref", "references", "math", "chem", "ce", "gallery", "timeline", "score",
    "graph", "syntaxhighlight", "source", "templatedata", "imagemap",
    "noinclude", "hiero", "inputbox", "categorytree", "mapframe", "maplink",
    "indicator",
)
_DROPPED_OPEN = re.compile(
    r"<(" + "|".join(sorted(_DROPPED_ELEMENTS, key=len, reverse=True))
    + r")(?=[\s/>])(?:\s[^<>]*?)?(/?)>",
    re.I,
)
_DROPPED_CLOSE = {
    name: re.compile(r"</" + name + r"\s*>", re.I) for name in _DROPPED_ELEMENTS
}

_BLOCK_TAGS = (
    "br", "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "tr", "td", "th",
    "table", "caption", "hr", "blockquote", "center", "h1", "h2", "h3", "h4",
    "h5", "h6", "poem", "pre",
)
_INLINE_TAGS = (
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn",
    "em", "font", "i", "ins", "kbd", "mark", "q", "rb", "rp", "rt", "rtc",
    "ruby", "s", "samp", "small", "span", "strike", "strong", "sub", "sup",
    "time", "tt", "u", "var", "wbr", "img", "meta", "link", "thead", "tbody",
    "tfoot", "nowiki", "onlyinclude", "includeonly", "section",
    "templatestyles", "translate", "tvar", "languages", "langconvert",
) + _DROPPED_ELEMENTS


def _tag_pattern(names: tuple[str, ...]) -> str:
    alternatives = "|".join(sorted(set(names), key=len, reverse=True))
    return r"<\s*/?\s*(?:" + alternatives + r")(?=[\s/>])[^<>]*>"


_BLOCK_TAG = re.compile(_tag_pattern(_BLOCK_TAGS), re.I)
_INLINE_TAG = re.compile(_tag_pattern(_INLINE_TAGS), re.I)


def _escape_nowiki(text: str) -> str:
    """Make the content of <nowiki> and <pre> elements literal text.  Tags
    without a closing tag after them are left for the tag stripping."""
    out = []
    pos = 0
    no_closer: set[str] = set()
    search = _NOWIKI_OPEN.search
    while True:
        match = search(text, pos)
        if match is None:
            break
        name = match.group(1).lower()
        if match.group(2) or name in no_closer:  # <nowiki/> or unclosed
            out.append(text[pos:match.end()])
            pos = match.end()
            continue
        closer = _NOWIKI_CLOSE[name].search(text, match.end())
        if closer is None:
            no_closer.add(name)
            out.append(text[pos:match.end()])
            pos = match.end()
            continue
        out.append(text[pos:match.start()])
        content = text[match.end():closer.start()].translate(_NOWIKI_ESCAPES)
        out.append("\n" + content + "\n" if name == "pre" else content)
        pos = closer.end()
    out.append(text[pos:])
    return "".join(out)


def _drop_elements(text: str) -> str:
    """Remove <ref>, <math>, <gallery>... elements with their content, and
    self-closing ones.  An opening tag with no closing tag after it is
    removed alone."""
    if "<" not in text:
        return text
    spans: list[tuple[int, int]] = []
    pos = 0
    no_closer: set[str] = set()  # names whose closer is absent from here on
    search = _DROPPED_OPEN.search
    while True:
        match = search(text, pos)
        if match is None:
            break
        pos = match.end()
        if match.group(2):  # <ref name="x" />
            spans.append((match.start(), pos))
            continue
        name = match.group(1).lower()
        if name in no_closer:
            spans.append((match.start(), pos))
            continue
        closer = _DROPPED_CLOSE[name].search(text, pos)
        if closer is None:
            no_closer.add(name)
            spans.append((match.start(), pos))
            continue
        pos = closer.end()
        spans.append((match.start(), pos))
    return _splice(text, spans)


# ---------------------------------------------------------------------------
# Line-level markup and final clean-up
# ---------------------------------------------------------------------------

_QUOTES = re.compile(r"''+")
_HEADING = re.compile(r"^(=+)[ \t]*(.*?)[ \t]*(=+)[ \t]*$", re.M)
_LIST_MARKERS = re.compile(r"^[*#:;]+[ \t]*", re.M)
_HORIZONTAL_RULE = re.compile(r"^-{4,}", re.M)
_SWITCH = re.compile(r"__(?:[A-Z]+|[\u4e00-\u9fff]{2,8})__")

_LABEL_BEFORE_NOTHING = re.compile(
    r"(?<=[（(，,；;、])[\u3400-\u9fffA-Za-z][\u3400-\u9fffA-Za-z \-]{0,11}[：:]\s*(?=[）)，,；;、])"
)
_EMPTY_BRACKETS = re.compile(r"[（(][\s，,；;、：:．.·/]*[）)]")
_LEADING_SEPARATORS = re.compile(r"([（(])[\s，,；;、]+")
_TRAILING_SEPARATORS = re.compile(r"[\s，,；;、]+([）)])")
_SPACES = re.compile(r"[ \t\u00a0\f\v]+")


def _quotes(match: re.Match) -> str:
    n = len(match.group())
    if n == 4:  # an apostrophe followed by bold
        return "'"
    if n > 5:  # bold italic after some apostrophes
        return "'" * (n - 5)
    return ""


def _heading(match: re.Match) -> str:
    opening, inner, closing = match.groups()
    n = min(len(opening), len(closing))
    # Unbalanced "== x ===" keeps the extra "=" as text, like MediaWiki.
    return ("=" * (len(opening) - n) + inner + "=" * (len(closing) - n)).strip()


def _clean_brackets(text: str) -> str:
    if "(" not in text and "（" not in text:
        return text
    text = _LABEL_BEFORE_NOTHING.sub("", text)
    text = _EMPTY_BRACKETS.sub("", text)
    text = _LEADING_SEPARATORS.sub(r"\1", text)
    text = _TRAILING_SEPARATORS.sub(r"\1", text)
    return _EMPTY_BRACKETS.sub("", text)


def wikitext_to_text(wikitext: str) -> str:
    """Turn a page's wikitext into plain text paragraphs (one paragraph a line, blank lines between paragraphs allowed)."""
    if not wikitext:
        return ""
    text = wikitext.replace("\r\n", "\n").replace("\r", "\n")
    if _REDIRECT.match(text):
        return ""
    if "<!--" in text:
        text = _COMMENT.sub("", text)
    if "<" in text:
        text = _escape_nowiki(text)
        text = _drop_elements(text)
    text = _strip_blocks(text)
    text = resolve_conversion_markup(text)
    text = _replace_internal_links(text)
    if "[" in text:
        text = _EXTERNAL_LINK.sub(_external_link_text, text)
    if "<" in text:
        text = _BLOCK_TAG.sub("\n", text)
        text = _INLINE_TAG.sub("", text)
    if "''" in text:
        text = _QUOTES.sub(_quotes, text)
    text = _HEADING.sub(_heading, text)
    text = _LIST_MARKERS.sub("", text)
    text = _HORIZONTAL_RULE.sub("", text)
    if "__" in text:
        text = _SWITCH.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    text = _clean_brackets(text)
    text = _SPACES.sub(" ", text)
    lines = (line.strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)
