"""Gather a run's figures into one JSON-ready dict: the report's data (``OUTPUT/report.json``).

Everything comes from what the stages wrote: each stage's ``stats.json``, the
Parquet tables beside it and ``shards/manifest.json``.  A stage that was not
run gives ``None`` for its sections; the HTML says so.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.outputs import parquet_files, read_table
from pipeline.stages import STAGES

FUNNEL_STAGES = ("ingest", "clean", "dedup", "segment")
EXAMPLE_CHARS = 200
EXAMPLES_PER_RULE = 3
DUPLICATE_EXAMPLES = 5
DISTRIBUTION_DOCUMENTS = 20000     # length distributions read at most this many segmented documents
SENTENCE_CAP = 300                 # sentence lengths above this share the last bucket
WORD_CAP = 12
BATCH_ROWS = 8192


def _load(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _excerpt(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + "…"


def _batches(table_dir: Path, columns: list[str]):
    """A table's rows in record batches, file by file: big runs are never read whole."""
    for path in parquet_files(table_dir):
        yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns)


def _add_by_source(totals: dict, sources: pa.Array, chars: pa.Array) -> None:
    grouped = pa.table({"source": sources, "chars": chars}).group_by("source").aggregate(
        [("chars", "sum"), ("chars", "count")])
    for row in grouped.to_pylist():
        entry = totals.setdefault(row["source"], {"documents": 0, "characters": 0})
        entry["documents"] += int(row["chars_count"])
        entry["characters"] += int(row["chars_sum"] or 0)


def funnel(root: Path) -> dict | None:
    """Documents and characters per source after each document stage (what the stage kept)."""
    stages = {}
    for stage in FUNNEL_STAGES:
        if not (root / stage / "stats.json").is_file():
            continue
        totals: dict = {}
        if stage == "segment":
            for batch in _batches(root / stage / "segmented", ["source", "sentences"]):
                sentences = batch.column("sentences")
                lengths = pc.utf8_length(pc.list_flatten(sentences))
                parents = pc.list_parent_indices(sentences)
                per_doc = pa.table({"doc": parents, "n": lengths}).group_by("doc").aggregate([("n", "sum")])
                chars = np.zeros(len(batch), dtype=np.int64)
                chars[per_doc.column("doc").to_numpy()] = per_doc.column("n_sum").to_numpy()
                _add_by_source(totals, batch.column("source"), pa.array(chars))
        else:
            for batch in _batches(root / stage / "documents", ["source", "text"]):
                _add_by_source(totals, batch.column("source"), pc.utf8_length(batch.column("text")))
        stages[stage] = totals
    if not stages:
        return None
    sources = sorted({s for per in stages.values() for s in per})
    return {"stages": list(stages),
            "note": "what each stage kept; segment characters are the sum of its sentences' lengths",
            "by_source": {source: {stage: per.get(source, {"documents": 0, "characters": 0})
                                   for stage, per in stages.items()} for source in sources},
            "totals": {stage: {"documents": sum(v["documents"] for v in per.values()),
                               "characters": sum(v["characters"] for v in per.values())}
                       for stage, per in stages.items()}}


def rejections(root: Path, stats: dict) -> dict | None:
    """Rejected documents per stage and rule, with the first few examples of each rule."""
    out = {}
    for stage in ("clean", "shards"):
        if stage not in stats:
            continue
        examples: dict[str, list] = {}
        counts: Counter = Counter()
        for batch in _batches(root / stage / "rejected", ["id", "source", "rule", "detail", "title", "text"]):
            for row in batch.to_pylist():
                counts[row["rule"]] += 1
                if len(examples.setdefault(row["rule"], [])) < EXAMPLES_PER_RULE:
                    examples[row["rule"]].append({"id": row["id"], "source": row["source"], "detail": row["detail"],
                                                  "title": row["title"], "text": _excerpt(row["text"])})
        out[stage] = {"total": sum(counts.values()), "by_rule": dict(sorted(counts.items())), "examples": examples}
    quarantined = {stage: s.get("quarantined_by_source", {}) for stage, s in stats.items()
                   if s.get("quarantined_by_source")}
    if not out:
        return None
    return {"stages": out, "quarantined_by_source": quarantined}


def _texts(table_dir: Path, ids: list[str]) -> dict[str, dict]:
    files = parquet_files(table_dir)
    if not files or not ids:
        return {}
    dataset = ds.dataset(files, format="parquet")
    rows = dataset.to_table(columns=["id", "source", "title", "text"], filter=pc.field("id").isin(ids)).to_pylist()
    return {r["id"]: r for r in rows}


def duplicates(root: Path, stats: dict) -> dict | None:
    """Duplicate clusters per method (sizes) and a few dropped/kept pairs, texts side by side."""
    dedup = stats.get("dedup")
    if dedup is None:
        return None
    table = read_table(root / "dedup" / "duplicates", "duplicates",
                       ["id", "source", "duplicate_of", "duplicate_of_source", "method", "similarity"])
    rows = table.to_pylist()
    picked = []
    for method in sorted({r["method"] for r in rows}):
        # the least similar pairs of each method first: they show where the threshold bites
        of_method = sorted((r for r in rows if r["method"] == method), key=lambda r: (r["similarity"], r["id"]))
        picked.extend(of_method[:DUPLICATE_EXAMPLES])
    dropped = _texts(root / "clean" / "documents", [r["id"] for r in picked])
    kept = _texts(root / "dedup" / "documents", [r["duplicate_of"] for r in picked])
    examples = []
    for r in picked:
        d, k = dropped.get(r["id"], {}), kept.get(r["duplicate_of"], {})
        examples.append({"method": r["method"], "similarity": round(r["similarity"], 4),
                         "dropped": {"id": r["id"], "source": r["source"], "title": d.get("title"),
                                     "text": _excerpt(d.get("text")) if d else None},
                         "kept": {"id": r["duplicate_of"], "source": r["duplicate_of_source"],
                                  "title": k.get("title"), "text": _excerpt(k.get("text")) if k else None}})
    similarity = [r["similarity"] for r in rows if r["method"] != "exact"]
    return {"total": len(rows), "by_method": dedup.get("duplicates_by_method", {}),
            "by_source": dedup.get("duplicates_by_source", {}), "clusters": dedup.get("clusters", {}),
            "near_similarity": similarity, "examples": examples}


def conversion(root: Path, stats: dict) -> dict | None:
    """Traditional-to-simplified conversion in clean: characters and documents changed, per source."""
    clean = stats.get("clean")
    if clean is None:
        return None
    counters = clean.get("counters", {})
    sums: dict[str, Counter] = {}
    for batch in _batches(root / "clean" / "documents", ["source", "text", "chars_converted"]):
        converted = pc.fill_null(batch.column("chars_converted"), 0)
        per = pa.table({"source": batch.column("source"), "chars": pc.utf8_length(batch.column("text")),
                        "converted": converted, "touched": pc.cast(pc.greater(converted, 0), pa.int64())})
        for row in per.group_by("source").aggregate([("chars", "sum"), ("converted", "sum"), ("touched", "sum"),
                                                    ("chars", "count")]).to_pylist():
            sums.setdefault(row["source"], Counter()).update(
                {k: int(row[k] or 0) for k in ("chars_sum", "converted_sum", "touched_sum", "chars_count")})
    by_source = {}
    for source, row in sorted(sums.items()):
        chars = row["chars_sum"]
        by_source[source] = {"documents": row["chars_count"], "documents_converted": row["touched_sum"],
                             "characters": chars, "characters_converted": row["converted_sum"],
                             "share": round(row["converted_sum"] / chars, 6) if chars else None}
    kept_chars = counters.get("clean.chars_kept", 0)
    converted = counters.get("clean.chars_converted", 0)
    return {"characters_converted": converted, "characters_kept": kept_chars,
            "share": round(converted / kept_chars, 4) if kept_chars else None,
            "documents_converted": counters.get("clean.docs_converted", 0),
            "documents_kept": clean["accounting"]["kept"], "by_source": by_source}


def _histogram(lengths: np.ndarray, cap: int) -> dict:
    if lengths.size == 0:
        return {"count": 0, "mean": None, "median": None, "p95": None, "max": None, "cap": cap, "counts": []}
    counts = np.bincount(np.minimum(lengths, cap), minlength=cap + 1)
    return {"count": int(lengths.size), "mean": round(float(lengths.mean()), 2),
            "median": round(float(np.median(lengths)), 2), "p95": round(float(np.percentile(lengths, 95)), 2),
            "max": int(lengths.max()), "cap": cap, "counts": [int(c) for c in counts]}


def segmentation(root: Path, stats: dict) -> dict | None:
    """Segmenter, its speed, and sentence / word length distributions (in characters)."""
    seg = stats.get("segment")
    if seg is None:
        return None
    sentence_lengths, word_lengths, documents = [], [], 0
    for path in parquet_files(root / "segment" / "segmented"):
        if documents >= DISTRIBUTION_DOCUMENTS:
            break
        table = pq.read_table(path, columns=["sentences", "words"]).slice(0, DISTRIBUTION_DOCUMENTS - documents)
        documents += len(table)
        sentence_lengths.append(pc.utf8_length(pc.list_flatten(table.column("sentences"))).to_numpy())
        words = pc.list_flatten(pc.list_flatten(table.column("words")))
        words = pc.filter(words, pc.invert(pc.utf8_is_space(words)))     # whitespace runs are not words
        word_lengths.append(pc.utf8_length(words).to_numpy())
    sentences = np.concatenate(sentence_lengths) if sentence_lengths else np.zeros(0, dtype=np.int64)
    words = np.concatenate(word_lengths) if word_lengths else np.zeros(0, dtype=np.int64)
    counters = seg.get("counters", {})
    return {"segmenter": seg.get("segmenter", {}), "seconds": seg["seconds"],
            "chars_per_s": seg["throughput"].get("segmented_chars_per_s"),
            "docs_per_s": seg["throughput"].get("docs_per_s"),
            "documents": seg["accounting"]["kept"], "characters": counters.get("segment.chars"),
            "sentences": counters.get("segment.sentences"), "words": counters.get("segment.words"),
            "distribution_documents": documents,
            "sentence_length": _histogram(sentences, SENTENCE_CAP), "word_length": _histogram(words, WORD_CAP)}


def vocab(stats: dict) -> dict | None:
    v = stats.get("vocab")
    if v is None:
        return None
    keys = ("trained", "size", "requested_size", "short_by", "vocab_sha256", "entries_by_kind",
            "han_characters_seen", "han_characters_kept", "han_characters_dropped", "min_char_count",
            "distinct_pre_tokens", "held_out", "overlap")
    return {k: v.get(k) for k in keys if k in v}


def shards(root: Path, stats: dict) -> dict | None:
    s = stats.get("shards")
    manifest = _load(root / "shards" / "manifest.json")
    if s is None or manifest is None:
        return None
    tokens = manifest["tokens"]
    per_shard = [{k: shard.get(k) for k in ("file", "instances", "tokens", "masked", "random_next", "truncated",
                                             "bytes")} for shard in manifest["shards"]]
    return {"shards": len(per_shard), "instances": manifest["instances"], "tokens": tokens,
            "masked_tokens": manifest["masked_tokens"], "masked_words": manifest.get("masked_words"),
            "masked_share": round(manifest["masked_tokens"] / tokens, 4) if tokens else None,
            "document_tokens": manifest.get("document_tokens"),
            "truncated_tokens": manifest["truncated_tokens"],
            "borrowed_truncated_tokens": manifest.get("borrowed_truncated_tokens"),
            "next_sentence": manifest["next_sentence"],
            "max_seq_length": manifest.get("max_seq_length"),
            "settings": manifest.get("settings", {}), "per_shard": per_shard,
            "sources": manifest.get("sources", {})}


def timing(stats: dict) -> list[dict]:
    rows = []
    for stage, s in stats.items():
        throughput = s.get("throughput", {})
        rows.append({"stage": stage, "engine": s.get("engine"), "seconds": s.get("seconds"),
                     "engine_startup_seconds": s.get("engine_startup_seconds"),
                     "read": s["accounting"]["read"], "docs_per_s": throughput.get("docs_per_s"),
                     "mb_per_s": throughput.get("mb_per_s", throughput.get("counting_mb_per_s")),
                     "throughput": throughput})
    return rows


def collect(run_dir: str | Path) -> dict:
    """The report's data for the run under ``run_dir``."""
    root = Path(run_dir)
    stats = {}
    for stage in STAGES:
        loaded = _load(root / stage / "stats.json")
        if loaded is not None:
            stats[stage] = loaded
    if not stats:
        raise FileNotFoundError(f"no stage stats under {root}")
    run = _load(root / "run.json")
    return {
        "run_dir": str(root.resolve()),
        "stages_run": list(stats),
        "accounting": (run or {}).get("accounting"),
        "funnel": funnel(root),
        "rejections": rejections(root, stats),
        "duplicates": duplicates(root, stats),
        "conversion": conversion(root, stats),
        "segmentation": segmentation(root, stats),
        "vocab": vocab(stats),
        "shards": shards(root, stats),
        "timing": timing(stats),
        "stages": stats,
    }
