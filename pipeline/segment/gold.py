"""Segmented (gold) text: reading it, training an LTP legacy model on it, scoring a segmenter against it.

Gold format: one sentence a line, words separated by whitespace (the SIGHAN
files use two spaces; full-width U+3000 separators are normalised too).
Scores follow the SIGHAN convention: a word counts as correct when its
character span matches a gold word's span exactly; precision = correct /
predicted words, recall = correct / gold words, F1 their harmonic mean.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from pipeline.segment.segmenters import Segmenter


def read_gold(path: str | Path) -> list[list[str]]:
    """Sentences of a gold file as word lists (empty lines skipped)."""
    sentences = []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            words = line.split()       # any whitespace, U+3000 included
            if words:
                sentences.append(words)
    return sentences


def _spans(words: list[str]) -> set[tuple[int, int]]:
    spans, start = set(), 0
    for word in words:
        spans.add((start, start + len(word)))
        start += len(word)
    return spans


def score(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """SIGHAN precision, recall and F1 of predicted words against gold words."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    correct = n_gold = n_pred = 0
    for g, p in zip(gold, predicted):
        p = [w for w in p if w.strip()]
        if "".join(g) != "".join(p):
            raise ValueError(f"predicted words do not join to the gold sentence: {''.join(g)[:50]!r}")
        correct += len(_spans(g) & _spans(p))
        n_gold += len(g)
        n_pred += len(p)
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"sentences": len(gold), "gold_words": n_gold, "predicted_words": n_pred, "correct": correct,
            "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def evaluate(segmenter: Segmenter, gold: list[list[str]]) -> dict:
    """Segment the gold sentences' text and score the result."""
    predicted = segmenter.segment(["".join(words) for words in gold])
    return {**segmenter.describe(), **score(gold, predicted)}


ALGORITHMS = {"ap": ("AP",), "pa": ("Pa",), "pa-i": ("PaI", 0.5), "pa-ii": ("PaII", 0.5)}


def train_legacy(train: list[list[str]], dev: list[list[str]], out_dir: str | Path, epochs: int = 10,
                 algorithm: str = "pa-ii", shuffle: bool = False) -> dict:
    """Train an LTP legacy (perceptron) CWS model; the best epoch on ``dev`` is kept.

    Writes ``out_dir/cws_model.bin`` and ``out_dir/config.json`` (``{"nerual": false, ...}``, the layout
    ``ltp.LTP(dir)`` and :class:`LtpLegacySegmenter` load) and returns what it did.
    """
    if not train:
        raise ValueError("no training sentences")
    if not dev:
        raise ValueError("an evaluation set is required (the trainer keeps the best epoch on it)")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r} ({', '.join(ALGORITHMS)})")
    from ltp_extension.perceptron import Algorithm, CWSTrainer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, sentences in (("train", train), ("dev", dev)):
            paths[name] = Path(tmp) / f"{name}.txt"
            paths[name].write_text("".join(" ".join(words) + "\n" for words in sentences), encoding="utf-8")
        trainer = CWSTrainer()
        trainer.epoch = epochs
        trainer.shuffle = shuffle
        trainer.verbose = False
        trainer.algorithm = Algorithm(*ALGORITHMS[algorithm])
        trainer.load_train_data(str(paths["train"]))
        trainer.load_eval_data(str(paths["dev"]))
        model = trainer.train()
    model.save(str(out / "cws_model.bin"))
    config = {"nerual": False, "tasks": {"cws": "cws_model.bin"}}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    info = {"train_sentences": len(train), "dev_sentences": len(dev), "epochs": epochs, "algorithm": algorithm,
            "model": str(out / "cws_model.bin")}
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def split_dev(sentences: list[list[str]], dev_share: float) -> tuple[list[list[str]], list[list[str]]]:
    """(train, dev): the last ``dev_share`` of the sentences held out for choosing the epoch."""
    n_dev = max(1, round(len(sentences) * dev_share))
    if n_dev >= len(sentences):
        raise ValueError(f"{len(sentences)} sentences are too few to hold out a dev set")
    return sentences[:-n_dev], sentences[-n_dev:]
