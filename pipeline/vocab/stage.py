"""The vocab stage after counting: train (or take a given vocab), write it, describe it.

The engine counts pre-tokens (:class:`pipeline.vocab.counting.PreTokenCounter`
on every partition, summed); everything here runs once, on the driver.
Writes ``vocab.txt``, ``counts.tsv`` (when trained) and returns the stats
``stats.json`` gets.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

from pipeline import storage
from pipeline.outputs import read_row_group, row_groups, table_bytes, table_exists, table_rows
from pipeline.vocab.counting import is_held_out
from pipeline.vocab.stats import entries_by_kind, overlap, tokenization_stats
from pipeline.vocab.training import VocabError, build_vocab, read_counts, reserved_layout, write_counts, write_vocab
from pipeline.vocab.wordpiece import read_vocab, vocab_sha256
from pipeline.config import VocabOptions

STAGE = "vocab"


def held_out_sentences(table: str, options: VocabOptions) -> list[str]:
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


def finish(counts, options: VocabOptions, out_dir: str, table: str | None) -> dict:
    """Train from ``counts`` (or copy ``options.vocab``), write the vocab, return its stats."""
    vocab_path = storage.join(out_dir, "vocab.txt")
    started = time.time()
    if options.vocab:
        try:
            entries = read_vocab(options.vocab)
        except (OSError, ValueError) as exc:
            raise VocabError(f"--vocab-vocab {options.vocab}: {exc}") from None
        storage.write_bytes(vocab_path, storage.read_bytes(options.vocab))
        source = storage.absolute(options.vocab)
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


# -- the stage runner's hooks (pipeline.stages.SPECS) ---------------------------------------------------------------

def plan(spec, config, input_dir):
    """Not a per-document stage: every document is either counted or held out (``read = counted +
    held_out``), and nothing is rejected.  With ``--vocab-vocab FILE`` nothing is counted or trained (no
    engine); the file is checked and copied, and the held-out stats are still computed when the segmented
    table is there."""
    from pipeline.engine import Plan
    from pipeline.stages import input_table

    options = config.vocab
    table = input_table(spec, config, input_dir, required=not options.vocab)
    read = table_rows(table) if table else 0
    return Plan(source=table or "", read=read, monitor={"total_docs": read}, engine=not options.vocab,
                input={"segmented": table, "rows": read, "bytes": table_bytes(table) if table else 0})


def read_work_counts(work: str) -> Counter:
    """The pre-token counts an engine wrote as ``counts*.tsv`` files under its work directory, summed."""
    counts: Counter = Counter()
    for rel, _, _ in storage.walk(work):
        if "/" not in rel and rel.startswith("counts") and rel.endswith(".tsv"):
            counts.update(read_counts(storage.join(work, rel)))
    return counts


def finish_stage(ran) -> dict:
    from pipeline.stages import AccountingError, common_stats, per_second

    options, counters, plan = ran.config.vocab, ran.counters, ran.plan
    counts = read_work_counts(ran.out.path("_work")) if plan.engine else {}
    described = finish(counts, options, ran.out.tmp, plan.source or None)
    counting = ran.seconds if plan.engine else 0.0
    seconds = ran.startup + counting + described["training_seconds"] + described["stats_seconds"]
    read, counted, held_out = plan.read, counters.get("vocab.counted", 0), counters.get("vocab.held_out", 0)
    accounting = {"read": read, "counted": None if options.vocab else counted, "held_out": held_out,
                  "balanced": options.vocab != "" or read == counted + held_out,
                  # the identity every stage's stats carry: the vocab stage drops nothing
                  "kept": read, "rejected": 0, "duplicate": 0, "quarantined": 0}
    stats = common_stats(ran)
    del stats["schemas"]
    stats.update({
        "engine": ran.config.engine if plan.engine else None,
        "seconds": round(seconds, 3),
        "counting_seconds": round(counting, 3),
        "throughput": {"counting_mb_per_s": per_second(plan.input["bytes"] / 1e6, counting, 3),
                       "counted_chars_per_s": per_second(counters.get("vocab.chars", 0), counting)},
        "accounting": accounting,
        "options": dataclasses.asdict(options),
        **described,
        "distinct_pre_tokens": len(counts),
        "counters": counters,
        "progress": ran.progress,
    })
    if not accounting["balanced"]:
        raise AccountingError(f"vocab: read {read} but counted {counted} and held out {held_out}")
    return stats


def summary(stats: dict, final: str) -> list[str]:
    options, a = stats["options"], stats["accounting"]
    how = (f"given: {options['vocab']}" if options["vocab"]
           else f"trained on {a['counted']:,} documents, {a['held_out']:,} held out")
    lines = [f"vocab: {stats['size']:,} entries ({how}), sha256 {stats['vocab_sha256'][:12]} "
             f"({stats['seconds']:.1f} s) -> {storage.join(final, 'vocab.txt')}"]
    if stats.get("short_by"):
        lines.append(f"vocab: warning: the corpus gave {stats['size']:,} entries, {stats['short_by']:,} short of "
                     f"{stats['requested_size']:,} (too little text for the requested size)")
    return lines
