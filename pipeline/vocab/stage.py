"""The vocab stage after counting: train (or take a given vocab), write it, describe it.

The engine counts pre-tokens (:class:`pipeline.vocab.counting.PreTokenCounter`
on every partition, summed); everything here runs once, on the driver.
Writes ``vocab.txt``, ``counts.tsv`` (when trained) and returns the stats
``stats.json`` gets.
"""

from __future__ import annotations

import time
from pathlib import Path

from pipeline import storage
from pipeline.outputs import read_row_group, row_groups, table_exists
from pipeline.vocab.counting import is_held_out
from pipeline.vocab.stats import entries_by_kind, overlap, tokenization_stats
from pipeline.vocab.training import VocabError, build_vocab, reserved_layout, write_counts, write_vocab
from pipeline.vocab.wordpiece import read_vocab, vocab_sha256

STAGE = "vocab"


def segmented_dir(path: str | Path) -> str | Path:
    """A segmented table given either the table directory or the stage directory holding it."""
    if storage.is_remote(path):
        inner = storage.join(path, "segmented")
        return inner if storage.walk(inner) else str(path)
    path = Path(path)
    return path / "segmented" if (path / "segmented").is_dir() else path


def held_out_sentences(table: str | Path, options) -> list[str]:
    """Sentences of the held-out documents, in table order, up to ``held_out_max_chars`` characters."""
    sentences: list[str] = []
    chars = 0
    for path, index in row_groups(table):
        for row in read_row_group(path, index, "segmented", ["id", "sentences"]):
            if is_held_out(row["id"], options.held_out_fraction):
                for sentence in row["sentences"] or ():
                    if chars >= options.held_out_max_chars:
                        return sentences
                    sentences.append(sentence)
                    chars += len(sentence)
    return sentences


def check_layout(entries: list[str], reserved_unused: int) -> dict:
    """Whether a given vocab starts with Google's reserved layout (a warning in the stats, not an error)."""
    layout = reserved_layout(reserved_unused)
    return {"google_layout": entries[:len(layout)] == layout}


def finish(counts, options, out_dir: str | Path, table: str | Path | None) -> dict:
    """Train from ``counts`` (or copy ``options.vocab``), write the vocab, return its stats."""
    vocab_path = storage.join(out_dir, "vocab.txt")
    started = time.time()
    if options.vocab:
        try:
            entries = read_vocab(options.vocab)
        except (OSError, ValueError) as exc:
            raise VocabError(f"--vocab-vocab {options.vocab}: {exc}") from None
        storage.write_bytes(vocab_path, storage.read_bytes(options.vocab))
        source = options.vocab if storage.is_remote(options.vocab) else str(Path(options.vocab).resolve())
        info = {"trained": False, "source": source, "size": len(entries),
                **check_layout(entries, options.reserved_unused)}
    else:
        entries, info = build_vocab(counts, options)
        write_vocab(entries, vocab_path)
        write_counts(counts, storage.join(out_dir, "counts.tsv"))
        info = {"trained": True, **info}
    training_seconds = time.time() - started
    stats = {"vocab_file": "vocab.txt", "vocab_sha256": vocab_sha256(vocab_path), **info,
             "training_seconds": round(training_seconds, 3), "entries_by_kind": entries_by_kind(entries)}
    started = time.time()
    if table is not None and table_exists(table):
        sentences = held_out_sentences(table, options)
        held = {"vocab": tokenization_stats(entries, sentences, options.lowercase)}
        if options.reference:
            held["reference"] = tokenization_stats(read_vocab(options.reference), sentences, options.lowercase)
        stats["held_out"] = held
    if options.reference:
        stats["overlap"] = {"reference": str(options.reference), **overlap(entries, read_vocab(options.reference))}
    stats["stats_seconds"] = round(time.time() - started, 3)
    return stats
