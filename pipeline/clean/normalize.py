"""Text normalisation for the clean stage: each step a small function.

Order (see :func:`pipeline.clean.stage.Cleaner.clean_text`): Unicode cleanup,
markup leftovers, full-width folding, traditional to simplified, whitespace.
Each step returns the new text and how much it changed, so the stage can count.
"""

from __future__ import annotations

import html
import re
import threading

import numpy as np

from pipeline.ingest.wikitext import resolve_conversion_markup

# C0/C1 controls except tab and newline, lone surrogates (from surrogateescape
# decoding), zero-width and invisible formatting characters, the BOM, the
# replacement character left by broken decoding, and noncharacters.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
    "\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufffd\ufffe\uffff]"
)
_CR = re.compile(r"\r\n?")
_LINE_BREAK_TAG = re.compile(r"<\s*(?:br|p|/p|div|/div|li|/li|tr|/tr|h[1-6]|/h[1-6])\b[^<>]{0,200}>", re.I)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]{0,20}(?:\s[^<>]{0,500})?/?>")
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")
# brackets left empty (or holding only punctuation) once markup or templates are gone
_EMPTY_BRACKETS = re.compile(r"[（(]\s*[，,、；;：:\s]*[）)]|【\s*】|「\s*」|《\s*》")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f]+")

# full-width ASCII letters and digits to half-width; the ideographic space to a space.
# Full-width punctuation (，：；！？（）) is Chinese punctuation and is left alone.
_FULLWIDTH = {c: c - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
              for c in range(r[0], r[1] + 1)}
_FULLWIDTH[0x3000] = 0x20
_FULLWIDTH_CHARS = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u3000]")


def remove_invisible(text: str) -> tuple[str, int]:
    """Drop control, zero-width and invalid characters; ``\\r\\n`` and ``\\r`` become ``\\n``."""
    text = _CR.sub("\n", text) if "\r" in text else text
    return _INVISIBLE.subn("", text)


def remove_markup(text: str) -> tuple[str, int]:
    """Strip HTML tags and entities and MediaWiki ``-{}-`` conversion markup left in the text.

    Returns the text and the number of markup pieces removed or resolved.
    """
    changes = 0
    if "-{" in text:
        resolved = resolve_conversion_markup(text)
        changes += resolved != text
        text = resolved
    if "<" in text:
        text, n1 = _LINE_BREAK_TAG.subn("\n", text)
        text, n2 = _TAG.subn("", text)
        changes += n1 + n2
    if "&" in text:
        text, n3 = _ENTITY.subn(lambda m: html.unescape(m.group(0)), text)
        changes += n3
    if "(" in text or "（" in text or "【" in text or "「" in text or "《" in text:
        text, n4 = _EMPTY_BRACKETS.subn("", text)
        changes += n4
    return text, changes


def fold_fullwidth(text: str) -> tuple[str, int]:
    """Full-width ASCII letters and digits (and U+3000) to half-width."""
    n = len(_FULLWIDTH_CHARS.findall(text))
    return (text.translate(_FULLWIDTH), n) if n else (text, 0)


def normalize_whitespace(text: str) -> list[str]:
    """Non-empty lines with runs of spaces collapsed and ends stripped."""
    lines = []
    for line in text.split("\n"):
        line = _SPACES.sub(" ", line).strip()
        if line:
            lines.append(line)
    return lines


def count_changed(before: str, after: str) -> int:
    """Characters that differ between two versions of a text (position by position)."""
    a = np.frombuffer(before.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    b = np.frombuffer(after.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    n = min(len(a), len(b))
    return int(np.count_nonzero(a[:n] != b[:n])) + abs(len(a) - len(b))


class ScriptConverter:
    """OpenCC conversion (``t2s`` by default), loaded lazily once per process."""

    _cache: dict[str, object] = {}
    _lock = threading.Lock()

    def __init__(self, config: str = "t2s") -> None:
        self.config = config

    def _opencc(self):
        with self._lock:
            converter = self._cache.get(self.config)
            if converter is None:
                import opencc

                name = self.config if self.config.endswith(".json") else f"{self.config}.json"
                converter = opencc.OpenCC(name)
                self._cache[self.config] = converter
            return converter

    def __call__(self, text: str) -> tuple[str, int]:
        """The converted text and the number of characters changed."""
        if self.config == "none" or not text:
            return text, 0
        converted = self._opencc().convert(text)
        return (converted, 0) if converted == text else (converted, count_changed(text, converted))

    def __getstate__(self):
        return {"config": self.config}

    def __setstate__(self, state):
        self.config = state["config"]
