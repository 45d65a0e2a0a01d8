"""A BERT WordPiece vocab from pre-token counts.

The vocab is assembled in this order:

1. the reserved layout of Google's Chinese vocab: ``[PAD]``, ``[unused1]`` ..
   ``[unusedR]``, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``, ``<S>``, ``<T>``;
   then (``ascii``, the default) every printable ASCII character from ``!`` to
   ``~`` in code point order (upper case left out when lowercasing; the
   backquote, which Google's lacks, last), as Google's vocab has them there,
   and the ``##`` form of each digit and letter:
   a character the corpus never shows (``{``, ``}``) still has an entry, and a
   rare letter inside a word does not turn the whole word into ``[UNK]``;
2. every CJK character counted at least ``min_char_count`` times, by code
   point, then the ``##`` form of each, in the same order (BERT splits every
   CJK character off on its own, so no Han text maps to ``[UNK]`` for lack of
   a character, and whole-word masking can mark a character as a continuation);
3. the pieces ``tokenizers``' WordPiece trainer (its ``BpeTrainer`` with
   ``##`` continuations, see :func:`train_pieces`) learns from the other
   pre-tokens (Latin words, digits, punctuation, kana, ...), in the trainer's
   order, until the vocab has ``size`` entries.

Single CJK characters are left out of the trainer's input: they are whole
pre-tokens that can never merge, and step 2 already decides their entries.
The trainer has no train-from-counts entry point in Python, so each word is
fed as one string repeating it ``count`` times (``"word " * count``, in
chunks) to a whitespace pre-tokenizer: the expansion and the counting happen
in Rust, and the counts the trainer sees are exactly ours.  Same counts, same
options, same vocab bytes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from pipeline import storage
from pipeline.counters import CountFn, no_count
from pipeline.vocab.wordpiece import is_cjk

CHAR_SHARE = 0.75          # automatic min_char_count: characters + ## forms fill at most this share
FEED_CHUNK_BYTES = 1 << 16  # size of the strings handed to the trainer: its pre-tokenizer expands each many times over


class VocabError(ValueError):
    """Vocab options that cannot be met, or an unusable vocab file."""


def reserved_layout(reserved_unused: int = 99) -> list[str]:
    """Google's Chinese BERT layout: [PAD], [unused1..N], [UNK], [CLS], [SEP], [MASK], <S>, <T>."""
    return ["[PAD]", *(f"[unused{i}]" for i in range(1, reserved_unused + 1)),
            "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<S>", "<T>"]


def ascii_entries(lowercase: bool = True) -> list[str]:
    """Printable ASCII ``!`` .. ``~`` (no upper case when lowercasing) in Google's order, then ``##`` + each digit
    and letter.  Google's vocab has every one of them but the backquote, so it comes last here: the entries
    before it get Google's ids."""
    chars = [chr(c) for c in range(0x21, 0x7F) if c != 0x60 and not (lowercase and "A" <= chr(c) <= "Z")] + ["`"]
    return chars + ["##" + c for c in chars if c.isalnum()]


def char_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """The counts of single CJK characters."""
    return {w: n for w, n in counts.items() if len(w) == 1 and is_cjk(w)}


def auto_min_char_count(chars: Mapping[str, int], size: int, reserved: int) -> int:
    """The smallest count at which the characters and their ## forms fit in CHAR_SHARE of the free entries."""
    room = int(CHAR_SHARE * (size - reserved)) // 2
    ranked = sorted(chars.values(), reverse=True)
    if len(ranked) <= room:
        return 1
    return ranked[room] + 1


def required_chars(chars: Mapping[str, int], min_count: int) -> list[str]:
    return sorted((c for c, n in chars.items() if n >= min_count), key=ord)


def _feed(words: list[tuple[str, int]]) -> Iterator[str]:
    """Strings that hold each word ``count`` times, separated by spaces, about FEED_CHUNK_BYTES each."""
    parts: list[str] = []
    size = 0
    for word, n in words:
        unit = word + " "
        per_chunk = max(1, FEED_CHUNK_BYTES // len(unit.encode("utf-8")))
        while n > 0:
            k = min(n, per_chunk)
            parts.append(unit * k)
            size += k * len(unit)
            n -= k
            if size >= FEED_CHUNK_BYTES:
                yield "".join(parts)
                parts, size = [], 0
    if parts:
        yield "".join(parts)


def _continuation_symbols(words: Iterable[str]) -> dict[str, str]:
    """Each character that occurs after the first of some word -> a private-use character of its own.

    Planes 15-16 are private use; characters already in the words are skipped.
    Symbols are given in code point order of the characters they stand for.
    """
    used: set[str] = set()
    later: set[str] = set()
    for word in words:
        used.update(word)
        later.update(word[1:])
    symbols: dict[str, str] = {}
    code = 0xF0000
    for char in sorted(later):
        while chr(code) in used or (code & 0xFFFE) == 0xFFFE:
            code += 1
        if code > 0x10FFFD:
            raise VocabError("too many distinct characters to train on")
        symbols[char] = chr(code)
        code += 1
    return symbols


def train_pieces(words: Mapping[str, int], vocab_size: int, min_frequency: int = 2) -> list[str]:
    """WordPiece pieces learned from word counts, in the trainer's order (alphabet, merges).

    ``WordPieceTrainer`` numbers its ``##`` characters in the order it meets
    them in a hash map, and breaks ties between equally frequent merges by
    those numbers, so the same counts can give different vocabs.  To make the
    result a function of the counts alone, the continuation characters are
    marked here instead: each character after the first of a word is replaced
    by a private-use symbol of its own (:func:`_continuation_symbols`), so
    every one belongs to the alphabet the trainer sorts by code point, and the
    trainer runs without a prefix.  A learned piece that starts with a symbol
    is a continuation: it becomes ``##`` + the characters it stands for.  That
    is the trainer's own algorithm with the ``##`` bookkeeping done before and
    after.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if not words or vocab_size <= 0:
        return []
    symbols = _continuation_symbols(words)
    to_symbol = str.maketrans(symbols)
    from_symbol = str.maketrans({v: k for k, v in symbols.items()})
    marked: dict[str, int] = {}
    for word, n in words.items():
        key = word[0] + word[1:].translate(to_symbol)
        marked[key] = marked.get(key, 0) + n
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                  special_tokens=[])
    ordered = sorted(marked.items(), key=lambda kv: (-kv[1], kv[0]))
    tokenizer.train_from_iterator(_feed(ordered), trainer)
    vocab = tokenizer.get_vocab()
    marks = set(symbols.values())
    pieces = []
    for piece in sorted(vocab, key=vocab.__getitem__):
        text = piece.translate(from_symbol)
        pieces.append("##" + text if piece[0] in marks else text)
    return pieces


def build_vocab(counts: Mapping[str, int], options, count: CountFn = no_count) -> tuple[list[str], dict]:
    """The vocab entries for these pre-token counts, and what was decided on the way."""
    layout = reserved_layout(options.reserved_unused)
    if getattr(options, "ascii", True):
        layout += ascii_entries(options.lowercase)
    size = options.size
    if size < len(layout):
        raise VocabError(f"vocab size {size} is smaller than the {len(layout)} reserved entries")
    chars = char_counts(counts)
    min_count = options.min_char_count or auto_min_char_count(chars, size, len(layout))
    kept = required_chars(chars, min_count)
    required = len(layout) + 2 * len(kept)
    if required > size:
        suggestion = auto_min_char_count(chars, size, len(layout))
        raise VocabError(f"{len(kept):,} Han characters are counted at least {min_count} times; with their ## forms "
                         f"and the {len(layout)} reserved entries that is {required:,} entries, more than the vocab "
                         f"size {size:,}: raise --vocab-min-char-count (e.g. {suggestion}) or --vocab-size")
    entries = layout + kept + ["##" + c for c in kept]
    room = size - len(entries)
    words = {w: n for w, n in counts.items() if w not in chars}
    pieces = train_pieces(words, room, options.min_frequency)
    seen = set(entries)
    for piece in pieces:
        if len(entries) >= size:
            break
        if piece not in seen:
            seen.add(piece)
            entries.append(piece)
    count("vocab.entries", len(entries))
    info = {"min_char_count": min_count, "min_char_count_automatic": not options.min_char_count,
            "han_characters_seen": len(chars), "han_characters_kept": len(kept),
            "han_characters_dropped": len(chars) - len(kept),
            "trainer_words": len(words), "trainer_pieces": len(pieces),
            "requested_size": size, "size": len(entries), "short_by": size - len(entries)}
    return entries, info


def write_vocab(entries: Iterable[str], path: str | Path) -> None:
    storage.write_text(path, "".join(e + "\n" for e in entries))


def write_counts(counts: Mapping[str, int], path: str | Path) -> None:
    """``token<TAB>count`` lines, most frequent first (ties by token), so training can be rerun."""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    with storage.open_output_stream(path) as f:
        for start in range(0, len(ordered), 65536):
            f.write("".join(f"{token}\t{n}\n" for token, n in ordered[start:start + 65536]).encode("utf-8"))


def read_counts(path: str | Path) -> Counter:
    counts: Counter = Counter()
    with storage.open_input_stream(path) as f:
        for line in f:          # split at "\n" only
            token, tab, n = line.decode("utf-8").rstrip("\n").rpartition("\t")
            if tab:
                counts[token] += int(n)
    return counts
