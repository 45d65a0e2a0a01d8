"""The table ``wwm run`` and ``wwm report`` print at the end: one row per stage, then the details."""

from __future__ import annotations

_COLUMNS = (("stage", "<8"), ("read", ">10"), ("kept", ">10"), ("rejected", ">9"), ("duplicate", ">9"),
            ("quarantined", ">11"), ("seconds", ">8"), ("MB/s", ">7"), ("docs/s", ">9"))


def _row(values) -> str:
    return " ".join(f"{v:{spec}}" for v, (_, spec) in zip(values, _COLUMNS, strict=True))


def _rate(value) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}" \
        if value >= 0.01 else f"{value:.3f}"


def _note(stage: str, stats: dict) -> str:
    if stage == "segment" and stats.get("segmenter"):
        seg = stats["segmenter"]
        chars = stats.get("throughput", {}).get("segmented_chars_per_s")
        name = seg.get("segmenter", "")
        return f"{name}{f', {chars:,.0f} chars/s' if chars else ''}"
    if stage == "vocab" and "size" in stats:
        return f"{stats['size']:,} entries"
    if stage == "shards" and "instances" in stats:
        return f"{stats['instances']:,} instances in {stats['shards']} shards"
    return ""


def stage_table(stages: dict[str, dict]) -> list[str]:
    """Rows of read/kept/rejected/duplicate/quarantined, time and throughput per stage, and a total."""
    lines = [_row(name for name, _ in _COLUMNS) + "  notes"]
    for stage, stats in stages.items():
        a, speed = stats["accounting"], stats.get("throughput", {})
        mb_s = speed.get("mb_per_s", speed.get("counting_mb_per_s"))
        lines.append((_row([stage, f"{a['read']:,}", f"{a['kept']:,}", f"{a['rejected']:,}", f"{a['duplicate']:,}",
                            f"{a['quarantined']:,}", f"{stats['seconds']:.1f}", _rate(mb_s),
                            _rate(speed.get("docs_per_s"))]) + "  " + _note(stage, stats)).rstrip())
    if "ingest" in stages:
        last = [s for s in stages if s != "vocab"][-1]
        dropped = {key: sum(s["accounting"][key] for s in stages.values())
                   for key in ("rejected", "duplicate", "quarantined")}
        seconds = sum(s["seconds"] for s in stages.values())
        read = stages["ingest"]["accounting"]["read"]
        mb = stages["ingest"]["input"].get("bytes", 0) / 1e6
        lines.append(_row(["total", f"{read:,}", f"{stages[last]['accounting']['kept']:,}",
                           f"{dropped['rejected']:,}", f"{dropped['duplicate']:,}", f"{dropped['quarantined']:,}",
                           f"{seconds:.1f}", _rate(mb / seconds if seconds else None),
                           _rate(read / seconds if seconds else None)]) + f"  {mb:,.2f} MB of input")
    return lines


def detail_lines(stages: dict[str, dict]) -> list[str]:
    """Rejections by rule, duplicates by method and source, cluster sizes, and the shards' totals."""
    lines = []
    for stage, stats in stages.items():
        for key in ("rejected_by_rule", "duplicates_by_method", "duplicates_by_source"):
            if stats.get(key):
                lines.append(f"{stage} {key.replace('_', ' ')}: " +
                             ", ".join(f"{k} {v:,}" for k, v in stats[key].items()))
        for method, info in stats.get("clusters", {}).items():
            sizes = ", ".join(f"{size}: {n:,}" for size, n in info["size_histogram"].items())
            lines.append(f"{stage} {method} clusters: {info['clusters']:,} (documents per cluster {sizes})")
    if "shards" in stages:
        m = stages["shards"]["manifest"]
        lines.append(f"shards: {m['instances']:,} instances in {stages['shards']['shards']} shards, {m['tokens']:,} "
                     f"tokens, {m['masked_tokens']:,} masked, {m['truncated_tokens']:,} document tokens truncated, "
                     f"random next {m['next_sentence']['random_share']}")
    return lines
