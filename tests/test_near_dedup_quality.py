"""Near-dedup quality on real documents: edited copies of shared-corpus documents must be found,
unrelated documents must not be clustered (see pipeline/testing/dedup_evaluation.py for the labelled set)."""

from __future__ import annotations

import json
import random

import pytest

from conftest import shared_file
from pipeline.config import DedupOptions
from pipeline.testing.dedup_evaluation import (EDITS, KEPT_TARGET, build_labelled_set, evaluate, kept_share,
                                       make_near_copy, shared_documents)
from pipeline.dedup.minhash import MinHasher

CORPORA = ("wiki2019zh_sample.jsonl", "chinesewebtext_sample.jsonl", "cmrc2018_dev.json",
           "drcd_dev_traditional.json")
ORIGINALS = 400
COPIES_PER_DOC = 2

TEXT = ("数学是利用符号语言研究数量、结构、变化以及空间等概念的一门学科。数学透过抽象化和逻辑推理的使用而产生。\n"
        "基础数学的知识与运用总是个人与团体生活中不可或缺的一环。早在古埃及便可观见数学文本。\n"
        "从那时开始，数学的发展便持续不断地小幅进展。至16世纪的文艺复兴时期，数学加速发展。\n"
        "今日，数学被使用在不同的领域上，包括科学、工程、医学和经济学等。")
DONOR = "天气预报说明天有雨。出门记得带伞。这家饭馆的面条很好吃，每天都有很多人排队。"


@pytest.mark.parametrize("edit", EDITS)
def test_every_edit_changes_the_text_and_is_reproducible(edit):
    one = make_near_copy(TEXT, edit, 0.3, random.Random(7), DONOR)
    two = make_near_copy(TEXT, edit, 0.3, random.Random(7), DONOR)
    assert one == two and one != TEXT


def test_kept_share_counts_surviving_characters_of_the_original():
    assert kept_share(TEXT, TEXT) == 1.0
    assert kept_share(TEXT, make_near_copy(TEXT, "traditional", 0, random.Random(0))) > 0.99
    assert 0.65 < kept_share(TEXT, make_near_copy(TEXT, "truncate", 0.3, random.Random(0))) < 0.75
    assert kept_share(TEXT, make_near_copy(TEXT, "insert_sentences", 0.3, random.Random(0), DONOR)) > 0.99
    assert kept_share(TEXT, DONOR) < 0.05


@pytest.fixture(scope="module")
def report():
    paths = [shared_file("corpora", name) for name in CORPORA]
    labelled = build_labelled_set(shared_documents(paths), seed=0, copies_per_doc=COPIES_PER_DOC,
                                  max_originals=ORIGINALS)
    assert len(labelled.originals) == ORIGINALS and len(labelled.unrelated) > 1000
    options = DedupOptions()                   # the pipeline's defaults: threshold 0.6, 128 permutations
    result = evaluate(labelled, MinHasher.from_options(options), verify=options.verify)
    print(json.dumps({k: result[k] for k in ("hasher", "pairs", "recall_kept_ge_0_8", "recall_both_shares_ge_0_8",
                                             "recall_jaccard_ge_threshold", "recall_by_edit",
                                             "recall_by_strength")}, indent=1))
    return result


def _summary(result) -> str:
    edits = {e: r["recall"] for e, r in result["recall_by_edit"].items()}
    strengths = {s: r["recall"] for s, r in result["recall_by_strength"].items()}
    return (f"precision {result['pairs']['precision']}, recall (kept >= {KEPT_TARGET}) "
            f"{result['recall_kept_ge_0_8']}, by edit {edits}, by strength {strengths}, "
            f"missed e.g. {result['missed_kept_ge_0_8']['examples'][:5]}")


def test_precision_of_predicted_pairs(report):
    assert report["pairs"]["predicted"] > 0
    assert report["pairs"]["precision"] >= 0.98, _summary(report)


def test_recall_for_copies_keeping_most_of_their_text(report):
    assert report["recall_kept_ge_0_8"]["copies"] > 300
    assert report["recall_kept_ge_0_8"]["recall"] >= 0.95, _summary(report)


def test_recall_for_copies_at_or_above_the_threshold(report):
    """What the detector is specified to find: copies whose shingle Jaccard reaches the threshold."""
    rows = report["recall_jaccard_ge_threshold"]
    assert rows["copies"] > 300
    assert rows["recall"] >= 0.95, _summary(report)


def test_traditional_script_copies_are_all_found(report):
    traditional = report["recall_by_edit"]["traditional"]
    assert traditional["copies"] > 50
    assert traditional["found"] == traditional["copies"], _summary(report)


def test_unrelated_documents_form_no_clusters(report):
    assert report["unrelated_pairs"]["count"] == 0, report["unrelated_pairs"]["examples"]


def test_copies_keeping_60_percent_are_found_at_every_edit_and_strength(report):
    """Issue 19.6: truncated and abridged copies (and every other edit) keeping >= 60% of the original are
    found at every strength (containment in the verification), at precision >= 0.99."""
    assert report["pairs"]["precision"] >= 0.99 and report["unrelated_pairs"]["count"] == 0
    cells = [(edit, strength, row) for edit, curve in report["curve_kept_ge_0_6"].items()
             for strength, row in curve.items()]
    assert {e for e, _, _ in cells} == set(report["recall_by_edit"]) and len(cells) >= 30
    for edit, strength, row in cells:
        assert row["recall"] >= 0.95, (edit, strength, row)
    for edit in ("truncate", "delete_sentences"):        # the edits the issue names: their 40% cells are in
        assert report["curve_kept_ge_0_6"][edit]["0.4"]["copies"] >= 10
