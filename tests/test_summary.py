"""The table wwm run and wwm report print."""

from pipeline.summary import detail_lines, stage_table


def _stats(read, kept, rejected=0, duplicate=0, quarantined=0, seconds=1.0, **extra):
    return {"accounting": {"read": read, "kept": kept, "rejected": rejected, "duplicate": duplicate,
                           "quarantined": quarantined}, "seconds": seconds, **extra}


def test_table_has_a_row_per_stage_and_a_total_that_adds_up():
    stages = {
        "ingest": _stats(100, 98, quarantined=2, seconds=2.0, input={"bytes": 4_000_000},
                         throughput={"mb_per_s": 2.0, "docs_per_s": 50.0}),
        "clean": _stats(98, 90, rejected=8, throughput={"mb_per_s": 1.5, "docs_per_s": 98.0},
                        rejected_by_rule={"too_short": 8}),
        "dedup": _stats(90, 85, duplicate=5),
        "segment": _stats(85, 85, segmenter={"segmenter": "jieba"}, throughput={"segmented_chars_per_s": 1234.0}),
        "vocab": _stats(85, 85, size=21128, throughput={"counting_mb_per_s": 3.0}),
        "shards": _stats(85, 84, quarantined=1, instances=4000, shards=2, manifest={
            "instances": 4000, "tokens": 500_000, "masked_tokens": 75_000, "truncated_tokens": 12,
            "next_sentence": {"random_share": 0.5}}),
    }
    lines = stage_table(stages)
    assert lines[0].split()[:6] == ["stage", "read", "kept", "rejected", "duplicate", "quarantined"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == ["ingest", "clean", "dedup", "segment", "vocab", "shards", "total"]
    assert rows["segment"].endswith("jieba, 1,234 chars/s") and rows["vocab"].endswith("21,128 entries")
    assert rows["shards"].endswith("4,000 instances in 2 shards")
    total = rows["total"].split()
    # read 100 = kept 84 + rejected 8 + duplicate 5 + quarantined 3, in 7 s, 4 MB
    assert total[1:6] == ["100", "84", "8", "5", "3"] and total[6] == "7.0" and total[7] == "0.57"
    assert "4.00 MB of input" in rows["total"]
    assert detail_lines(stages) == ["clean rejected by rule: too_short 8",
                                    "shards: 4,000 instances in 2 shards, 500,000 tokens, 75,000 masked, 12 document "
                                    "tokens truncated, random next 0.5"]
