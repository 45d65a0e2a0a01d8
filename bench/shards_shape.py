"""What the instances look like, ours against google-research/bert's create_pretraining_data.py.

The same sentences as bench/shards.py (the shared corpora cleaned, once by
default, segmented with jieba), the same vocab and settings (seq 128, 20
predictions, dupe 5, seed 12345); both outputs are read back here without
TensorFlow and measured alike, instance by instance, from ``segment_ids`` and
``input_mask``: instances, real tokens ([CLS]/[SEP] excluded), A and B lengths,
next-sentence labels, how many A segments are one token (and how many of those
are ``。``), how many instances with an A of at most two tokens are labelled
actual next, and the document tokens per instance (document tokens × dupe over
instances; for ours also the manifest's own tokens, the instance's own
document tokens it holds).

Writes bench/results/shards_shape.json.  Usage:
    BERT_REPO=/path/to/bert python bench/shards_shape.py [--mb 0] [--workdir DIR] [--reuse]
(--reuse keeps the segmented table and google's output of an earlier run in --workdir.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest_clean import SHARED, write_results  # noqa: E402
from shards import (DUPE, MASKED_LM_PROB, PREDICTIONS, RUNNER, SEED, SEQ, VOCAB, _fields,  # noqa: E402
                    _packed, _varint, build_documents, measured, write_google_input)

OUT = ROOT / "bench" / "results" / "shards_shape.json"


def _ints(packed: bytes) -> list[int]:
    out, i = [], 0
    while i < len(packed):
        value, i = _varint(packed, i)
        out.append(value)
    return out


def shape(paths, vocab: list[str]) -> dict:
    """Figures of the bert Examples in these TFRecord files."""
    from pipeline.shards.tfrecord import read_records

    period = vocab.index("。")
    instances = tokens = random_next = 0
    a_lengths, b_lengths = Counter(), Counter()
    one_token_a = one_token_a_period = short_a_actual = short_b = 0
    for path in paths:
        for record in read_records(str(path)):
            features = {}
            for _, message in _fields(record):
                for _, entry in _fields(message):
                    parts = dict(_fields(entry))
                    features[parts[1]] = parts.get(2, b"")
            mask = _packed(features[b"input_mask"])
            real = mask.count(1)
            segments = _packed(features[b"segment_ids"])[:real]
            label = _packed(features[b"next_sentence_labels"])[:1] == b"\x01"
            a = segments.count(0) - 2             # [CLS] A [SEP]
            b = real - a - 3
            instances += 1
            tokens += real - 3
            random_next += label
            a_lengths[a] += 1
            b_lengths[b] += 1
            if a == 1:
                one_token_a += 1
                ids = _ints(_packed(features[b"input_ids"]))
                labels = dict(zip(_ints(_packed(features[b"masked_lm_positions"])),
                                  _ints(_packed(features[b"masked_lm_ids"]))))
                one_token_a_period += labels.get(1, ids[1]) == period
            if a <= 2 and not label:
                short_a_actual += 1
            if b <= 2:
                short_b += 1
    mean = lambda c: round(sum(k * v for k, v in c.items()) / max(1, sum(c.values())), 2)  # noqa: E731
    return {"instances": instances, "real_tokens": tokens, "tokens_per_instance": round(tokens / max(1, instances), 2),
            "random_next_share": round(random_next / max(1, instances), 4),
            "a_mean": mean(a_lengths), "b_mean": mean(b_lengths),
            "one_token_a": one_token_a, "one_token_a_period": one_token_a_period,
            "a_at_most_2_actual_next": short_a_actual, "b_at_most_2": short_b,
            "a_length_deciles": deciles(a_lengths)}


def deciles(counts: Counter) -> list[int]:
    total, out, seen = sum(counts.values()), [], 0
    marks = [total * k / 10 for k in range(1, 10)]
    for length in sorted(counts):
        seen += counts[length]
        while marks and seen >= marks[0]:
            out.append(length)
            marks.pop(0)
    return out


def run_google(bert: Path, text: Path, output: Path, env: dict) -> None:
    runner = output.parent / "run_v1.py"
    runner.write_text(RUNNER, encoding="utf-8")
    cmd = [sys.executable, str(runner), str(bert / "create_pretraining_data.py"),
           f"--input_file={text}", f"--output_file={output}", f"--vocab_file={VOCAB}",
           "--do_lower_case=True", f"--max_seq_length={SEQ}", f"--max_predictions_per_seq={PREDICTIONS}",
           f"--masked_lm_prob={MASKED_LM_PROB}", f"--random_seed={SEED}", f"--dupe_factor={DUPE}"]
    measured(cmd, dict(env, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=0, help="replicate the corpora to at least this many MB (0: once)")
    parser.add_argument("--workdir", default=str(ROOT / "build" / "bench-shards-shape"))
    parser.add_argument("--reuse", action="store_true", help="reuse the segmented table and google's output")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--ours-args", nargs=argparse.REMAINDER, default=[],
                        help="extra arguments for wwm shards (last)")
    args = parser.parse_args()
    if not (SHARED / "corpora").is_dir() or not VOCAB.exists():
        print(f"skipped: shared data not found under {SHARED}")
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    segmented = workdir / "seg" / "segment" / "segmented"
    text = workdir / "google_input.txt"
    if not (args.reuse and segmented.exists()):
        import shutil
        for name in ("documents", "seg"):
            shutil.rmtree(workdir / name, ignore_errors=True)
        corpus = build_documents(workdir, args.mb)
        measured([sys.executable, "-m", "pipeline.cli", "segment", "--input", str(corpus["table"]),
                  "--output", str(workdir / "seg"), "--engine", "beam", "--segment-segmenter", "jieba",
                  "--no-progress"], env)
        (workdir / "google.tfrecord").unlink(missing_ok=True)
    text_figures = write_google_input(segmented, text)
    vocab = VOCAB.read_text(encoding="utf-8").split("\n")
    results = {"benchmark": "instance shapes, wwm shards --shards-mode bert against create_pretraining_data.py",
               "command": "BERT_REPO=/path/to/bert python bench/shards_shape.py"
                          + (f" --mb {args.mb:g}" if args.mb else ""),
               "settings": {"max_seq_length": SEQ, "max_predictions_per_seq": PREDICTIONS, "dupe_factor": DUPE,
                            "seed": SEED, "vocab": VOCAB.name, "ours_args": args.ours_args},
               "sentences": text_figures}
    bert = os.environ.get("BERT_REPO")
    google_out = workdir / "google.tfrecord"
    if bert:
        if not (args.reuse and google_out.exists()):
            run_google(Path(bert), text, google_out, env)
        results["google"] = shape([google_out], vocab)
        print("google", json.dumps(results["google"]), flush=True)
    ours_dir = workdir / "ours"
    import shutil
    shutil.rmtree(ours_dir, ignore_errors=True)
    measured([sys.executable, "-m", "pipeline.cli", "shards", "--input", str(segmented), "--output", str(ours_dir),
              "--vocab", str(VOCAB), "--no-progress", "--shards-mode", "bert", "--shards-max-seq-length", str(SEQ),
              "--shards-max-predictions-per-seq", str(PREDICTIONS), "--shards-masked-lm-prob", str(MASKED_LM_PROB),
              "--shards-dupe-factor", str(DUPE), "--shards-seed", str(SEED), "--engine", "beam",
              "--beam-direct-num-workers", "1", *args.ours_args], env)
    manifest = json.loads((ours_dir / "shards" / "manifest.json").read_text(encoding="utf-8"))
    ours = shape(sorted((ours_dir / "shards").glob("part-*.tfrecord")), vocab)
    document_tokens = manifest.get("document_tokens")
    ours["document_tokens"] = document_tokens
    ours["truncated_tokens"] = manifest.get("truncated_tokens")
    if document_tokens:
        ours["document_tokens_per_instance"] = round(document_tokens * DUPE / ours["instances"], 2)
        ours["own_tokens_per_instance"] = round(manifest["document_tokens_in_instances"] / ours["instances"], 2)
        if bert:
            g = results["google"]
            g["document_tokens_per_instance"] = round(document_tokens * DUPE / g["instances"], 2)
            g["note"] = "document tokens are ours (the same sentences, the same vocab and tokenizer)"
    results["ours"] = ours
    print("ours", json.dumps(ours), flush=True)
    write_results(args.out, results)


if __name__ == "__main__":
    main()
