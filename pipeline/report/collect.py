"""Gather a run's figures into one JSON-ready dict: the report's data (``OUTPUT/report.json``).

Everything comes from what the stages wrote: each stage's ``stats.json``, the
Parquet tables beside it and ``shards/manifest.json``.  A stage that was not
run gives ``None`` for its sections; the HTML says so.
"""

from __future__ import annotations

import json
import re
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
QUARANTINE_EXAMPLES = 10           # quarantined records shown per stage, with error, file and line
INSTANCES_READ = 20000             # shard instances read for the per-instance histograms
SOURCE_TOKEN_DOCUMENTS = 20000     # segmented documents tokenized for the split of tokens by source


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
    examples = quarantine_examples(root, stats)
    if not out and not examples:
        return None
    return {"stages": out, "quarantined_by_source": quarantined, "quarantined": examples}


def quarantine_examples(root: Path, stats: dict) -> dict:
    """Per stage: how many records were quarantined and the first few, with their error, file and line (as the
    rejected examples are shown), so that a reader sees what went wrong without opening the tables."""
    out = {}
    columns = ["source", "file", "position", "error", "id", "excerpt"]
    for stage in stats:
        table_dir = root / stage / "quarantined"
        if not parquet_files(table_dir):
            continue
        total, examples, kinds = 0, [], Counter()
        for batch in _batches(table_dir, columns):
            total += len(batch)
            for row in batch.to_pylist():
                kinds[re.split(r"[:(]", row["error"] or "", maxsplit=1)[0].strip()[:80]] += 1
                if len(examples) < QUARANTINE_EXAMPLES:
                    examples.append({"source": row["source"], "file": row["file"], "line": row["position"],
                                     "id": row["id"], "error": row["error"], "excerpt": _excerpt(row["excerpt"])})
        if total:
            out[stage] = {"total": total, "by_error": dict(kinds.most_common(10)), "examples": examples}
    return out


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
    similarity = [min(1.0, max(0.0, r["similarity"])) for r in rows if r["method"] != "exact"]
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
    # the headline is the sum of the table (one derivation: characters of the kept texts, as the table counts)
    kept_chars = sum(v["characters"] for v in by_source.values())
    converted = sum(v["characters_converted"] for v in by_source.values())
    return {"characters_converted": converted, "characters_kept": kept_chars,
            "share": round(converted / kept_chars, 6) if kept_chars else None,
            "documents_converted": sum(v["documents_converted"] for v in by_source.values()),
            "documents_kept": sum(v["documents"] for v in by_source.values()), "by_source": by_source,
            "counters": {"clean.chars_converted": counters.get("clean.chars_converted", 0),
                         "clean.chars_kept": counters.get("clean.chars_kept", 0)},
            "note": "characters of the kept texts (spaces and line breaks included), from the clean documents "
                    "table; the clean.chars_kept counter counts non-space characters only"}


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
    whole = documents >= seg["accounting"]["kept"]
    # one derivation of each figure: when the distributions cover every document, the text's sentence and word
    # counts are the histograms' (whitespace runs are not words); otherwise the stage's counters
    return {"segmenter": seg.get("segmenter", {}), "seconds": seg["seconds"],
            "chars_per_s": seg["throughput"].get("segmented_chars_per_s"),
            "docs_per_s": seg["throughput"].get("docs_per_s"),
            "documents": seg["accounting"]["kept"], "characters": counters.get("segment.chars"),
            "sentences": int(sentences.size) if whole else counters.get("segment.sentences"),
            "words": int(words.size) if whole else counters.get("segment.words"),
            "counts_from": "the distributions below" if whole else "the segment stage's counters",
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
    vocab_path = Path(manifest.get("vocab") or root / "vocab" / "vocab.txt")
    if not vocab_path.is_file():
        vocab_path = root / "vocab" / "vocab.txt"
    entries = _vocab_entries(vocab_path)
    instances = instance_figures(root / "shards", manifest, entries)
    return {"shards": len(per_shard), "instances": manifest["instances"], "tokens": tokens,
            "masked_tokens": manifest["masked_tokens"], "masked_words": manifest.get("masked_words"),
            "masked_share": round(manifest["masked_tokens"] / tokens, 4) if tokens else None,
            "document_tokens": manifest.get("document_tokens"),
            "truncated_tokens": manifest["truncated_tokens"],
            "borrowed_truncated_tokens": manifest.get("borrowed_truncated_tokens"),
            "next_sentence": manifest["next_sentence"],
            "max_seq_length": manifest.get("max_seq_length"),
            "settings": manifest.get("settings", {}), "per_shard": per_shard,
            "per_instance": instances, "tokens_by_source": tokens_by_source(root, entries),
            "sources": manifest.get("sources", {})}


def _vocab_entries(path: Path) -> list[str] | None:
    try:
        from pipeline.vocab.wordpiece import read_vocab
        return read_vocab(path)
    except (OSError, ValueError):
        return None


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _fields(data: bytes):
    """(field number, wire type, value) of a protobuf message: varints as int, length-delimited as bytes."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            value, i = data[i:i + n], i + n
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def parse_example(record: bytes) -> dict:
    """A ``tf.train.Example`` as {name: list of ints or floats} (int64 and float lists; no TensorFlow)."""
    out = {}
    for number, _, features in _fields(record):
        if number != 1:
            continue
        for fnum, _, entry in _fields(features):
            if fnum != 1:
                continue
            name, feature = None, b""
            for enum, _, value in _fields(entry):
                if enum == 1:
                    name = value.decode("utf-8")
                elif enum == 2:
                    feature = value
            values: list = []
            for kind, _, body in _fields(feature):
                for vnum, wire, value in _fields(body):
                    if vnum != 1:
                        continue
                    if kind == 3:          # Int64List, packed varints (or one unpacked varint)
                        if wire == 0:
                            values.append(value)
                        else:
                            j = 0
                            while j < len(value):
                                v, j = _varint(value, j)
                                values.append(v - (1 << 64) if v >= 1 << 63 else v)
                    elif kind == 2:        # FloatList, packed little-endian floats
                        values.extend(np.frombuffer(value, dtype="<f4").tolist() if wire == 2
                                      else np.frombuffer(value, dtype="<f4").tolist())
            out[name] = values
    return out


def instance_figures(shards_dir: Path, manifest: dict, entries: list[str] | None) -> dict | None:
    """Histograms of real tokens and masked positions per instance (from the first INSTANCES_READ instances of
    the shards, parsed here), and the first instance decoded with its masked words marked."""
    from pipeline.shards.tfrecord import read_records

    real, masked, first = [], [], None
    for shard in manifest.get("shards", []):
        path = shards_dir / shard["file"]
        if not path.is_file():
            continue
        try:
            for record in read_records(str(path)):
                example = parse_example(record)
                real.append(int(sum(example.get("input_mask", []))))
                if "masked_lm_weights" in example:
                    masked.append(int(round(sum(example["masked_lm_weights"]))))
                elif "word_ids" in example:
                    masked.append(0)
                if first is None:
                    first = example
                if len(real) >= INSTANCES_READ:
                    break
        except ValueError:
            break
        if len(real) >= INSTANCES_READ:
            break
    if not real:
        return None
    length = manifest.get("max_seq_length") or max(real)
    return {"instances_read": len(real), "masked_features": "masked_lm_weights" in (first or {}),
            "real_tokens": _histogram(np.array(real), length),
            "masked_positions": _histogram(np.array(masked), manifest.get("max_predictions_per_seq") or
                                           max(masked or [0])) if masked else None,
            "example": decode_instance(first, entries) if first is not None else None}


def decode_instance(example: dict, entries: list[str] | None) -> dict:
    """One instance as tokens: each {token, segment, masked (the original token when masked, else None)}."""
    ids = example.get("input_ids", [])
    mask = example.get("input_mask", [])
    segments = example.get("segment_ids", [])
    original = {}
    weights = example.get("masked_lm_weights", [])
    for position, token_id, weight in zip(example.get("masked_lm_positions", []), example.get("masked_lm_ids", []),
                                          weights):
        if weight > 0:
            original[position] = token_id

    def token(i: int) -> str:
        return entries[i] if entries is not None and 0 <= i < len(entries) else f"#{i}"

    tokens = []
    for position, token_id in enumerate(ids):
        if position < len(mask) and not mask[position]:
            break
        tokens.append({"token": token(token_id), "segment": segments[position] if position < len(segments) else 0,
                       "masked": token(original[position]) if position in original else None})
    labels = example.get("next_sentence_labels") or [None]
    return {"tokens": tokens, "masked_positions": len(original), "random_next": labels[0] == 1,
            "vocab_found": entries is not None}


def tokens_by_source(root: Path, entries: list[str] | None) -> dict | None:
    """WordPiece tokens of the segmented text per source (the text the shards are cut from), from the first
    SOURCE_TOKEN_DOCUMENTS documents; with ``dupe_factor`` each token is used that many times over."""
    if entries is None or not parquet_files(root / "segment" / "segmented"):
        return None
    from pipeline.vocab.wordpiece import bert_tokenizer

    tokenizer = bert_tokenizer(entries)
    totals: Counter = Counter()
    documents = 0
    for batch in _batches(root / "segment" / "segmented", ["source", "sentences"]):
        rows = batch.to_pylist()[:SOURCE_TOKEN_DOCUMENTS - documents]
        texts = ["\n".join(r["sentences"] or []) for r in rows]
        for row, encoding in zip(rows, tokenizer.encode_batch(texts, add_special_tokens=False)):
            totals[row["source"]] += len(encoding.ids)
        documents += len(rows)
        if documents >= SOURCE_TOKEN_DOCUMENTS:
            break
    total = sum(totals.values())
    return {"documents": documents, "tokens": total,
            "by_source": {s: {"tokens": n, "share": round(n / total, 6) if total else None}
                          for s, n in sorted(totals.items())}}


def timing(stats: dict) -> list[dict]:
    rows = []
    for stage, s in stats.items():
        throughput = s.get("throughput", {})
        docs_per_s = throughput.get("docs_per_s")
        if docs_per_s is None and s.get("seconds"):      # vocab reports MB/s only: documents read over its time
            docs_per_s = round(s["accounting"]["read"] / s["seconds"], 1)
        rows.append({"stage": stage, "engine": s.get("engine"), "seconds": s.get("seconds"),
                     "engine_startup_seconds": s.get("engine_startup_seconds"),
                     "read": s["accounting"]["read"], "docs_per_s": docs_per_s,
                     "mb_per_s": throughput.get("mb_per_s", throughput.get("counting_mb_per_s")),
                     "throughput": throughput})
    return rows


def settings(root: Path, stats: dict) -> dict:
    """The package version each stage ran with, and each stage's settings (from its fingerprint)."""
    from pipeline import __version__

    per_stage = {}
    for stage, s in stats.items():
        made_from = (_load(root / stage / "fingerprint.json") or {}).get("made_from") or {}
        per_stage[stage] = {"version": s.get("version"), "engine": s.get("engine"),
                            "settings": made_from.get("settings")}
    return {"report_version": __version__, "stages": per_stage}


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
        "settings": settings(root, stats),
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
