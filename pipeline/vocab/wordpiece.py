"""A BERT WordPiece vocabulary file and the tokenizer it defines.

The tokenizer is built with the ``tokenizers`` library to behave like
google-research/bert's ``FullTokenizer`` (and ``BertTokenizerFast``): text
cleaned of control characters, every CJK character its own pre-token,
punctuation split off, optional lowercasing with accent stripping, then greedy
longest-match WordPiece with ``##`` continuations.  No special tokens are
added: the shard builder places ``[CLS]`` and ``[SEP]`` itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline import storage

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# The code point ranges google-research/bert's tokenization.py treats as CJK characters.
CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def is_cjk(char: str) -> bool:
    """Whether BERT's tokenizer treats ``char`` as a CJK character (its own pre-token)."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in CJK_RANGES)


def read_vocab(path: str | Path) -> list[str]:
    """The entries of a vocab file, one per line, in id order (a trailing empty line is not an entry)."""
    lines = storage.read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    entries = [line.rstrip("\r") for line in lines]
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if not entry:
            raise ValueError(f"{path}: line {index + 1} is empty")
        if entry in seen:
            raise ValueError(f"{path}: line {index + 1} repeats {entry!r} (first at line {seen[entry] + 1})")
        seen[entry] = index
    for token in ("[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        if token not in seen:
            raise ValueError(f"{path}: no {token} entry")
    return entries


def vocab_sha256(path: str | Path) -> str:
    """The hash later stages record to say which vocab they used."""
    return hashlib.sha256(storage.read_bytes(path)).hexdigest()


def bert_tokenizer(vocab: str | Path | list[str], lowercase: bool = True):
    """A ``tokenizers.Tokenizer`` equivalent to BERT's ``FullTokenizer`` for this vocab."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    entries = vocab if isinstance(vocab, list) else read_vocab(vocab)
    model = models.WordPiece({token: i for i, token in enumerate(entries)}, unk_token="[UNK]",
                             max_input_chars_per_word=100)
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                      strip_accents=None, lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer
