"""Benchmark: the pretraining runner's training throughput and its input pipeline's own throughput.

Shards: ``--shards DIR``, else built here from the shared wiki2019zh sample with the real stages (jieba)
and Google's Chinese vocab (21,128 entries), max_seq_length 128, both masked and ``--unmasked`` (dynamic
masking in tf.data).

- model: examples/s of the custom training loop (``steps_per_loop`` steps per tf.function call), the first
  loop (tracing) left out, median of the others; with ``--bf16`` on a GPU/TPU, and the model FLOPs
  utilisation when the accelerator's peak is known (``--peak_tflops``, or H100/H200 detected).
- input: examples/s of the tf.data pipeline alone (same per-replica batch, parse + int32, and for
  unmasked shards the dynamic masking), and its ratio to the model's consumption (it must be >= 10x).

Writes bench/results/pretrain.json (``--out``). CPU usage: python bench/pretrain.py; GPU:
python bench/pretrain.py --preset base --steps 300 --bf16 --batch 64 --shards OUTPUT/shards
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = Path(os.environ.get("WWM_SHARED_DATA", ROOT.parent / "shared" / "data"))
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}   # dense bf16, SXM parts


def build_shards(workdir: Path) -> dict[str, Path]:
    from pipeline.config import Config, InputSpec
    from pipeline.stages import DOCUMENT_STAGES, run_all, run_stage

    corpus = SHARED / "corpora" / "wiki2019zh_sample.jsonl"
    vocab = SHARED / "reference" / "bert_base_chinese_vocab.txt"
    if not corpus.exists() or not vocab.exists():
        raise SystemExit(f"shared data not found under {SHARED}: pass --shards")
    out = {"masked": workdir / "shards-masked", "unmasked": workdir / "shards-unmasked"}
    if all((p / "manifest.json").exists() for p in out.values()):
        return out
    config = Config(engine="beam", output=str(workdir), inputs=[InputSpec(str(corpus), "auto", None)], progress=False)
    config.segment.segmenter = "jieba"
    run_all(config, DOCUMENT_STAGES, log=lambda *_: None)
    for kind, target in out.items():
        config.shards.vocab, config.shards.dupe_factor, config.shards.shards = str(vocab), 5, 4
        config.shards.unmasked = kind == "unmasked"
        run_stage("shards", config, log=lambda *_: None)
        (workdir / "shards").rename(target)
    return out


def training_flops_per_example(config, seq: int, predictions: int) -> float:
    """6 x (matmul parameters touched per token) per token, attention scores and MLM head included."""
    h, i, layers, v = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    encoder = layers * (2 * (4 * h * h + 2 * h * i) * seq + 2 * 2 * seq * seq * h)   # forward FLOPs
    head = 2 * predictions * (h * h + h * v) + 2 * h * h + 2 * 2 * h
    return 3.0 * (encoder + head)


def measure_input(shards: Path, batch: int, batches: int) -> float:
    from pipeline.pretrain import data
    from pipeline.shards import manifest

    m = manifest.read(shards)
    iterator = iter(data.make_dataset(shards, m, batch_size=batch))
    for _ in range(5):
        next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - started)


def measure_model(shards: Path, args) -> dict:
    from pipeline.pretrain.train import TrainOptions, Trainer

    with tempfile.TemporaryDirectory() as out:
        options = TrainOptions(shards=str(shards), output_dir=out, preset=args.preset,
                               train_batch_size=args.batch, num_train_steps=args.steps,
                               num_warmup_steps=max(1, args.steps // 10), steps_per_loop=args.steps_per_loop,
                               save_checkpoints_steps=0, optimizer=args.optimizer,
                               mixed_precision="bf16" if args.bf16 else "fp32", jit_compile=args.jit_compile,
                               export=False)
        trainer = Trainer(options, log=lambda line: print("  " + line))
        trainer.train()
        loops = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    rates = [loop["examples_per_second"] for loop in loops[1:]] or [loops[0]["examples_per_second"]]
    return {"trainer": trainer, "examples_per_second": statistics.median(rates), "loops": len(loops),
            "device": trainer.kind, "replicas": trainer.replicas}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", help="shards directory (default: built from the shared sample)")
    parser.add_argument("--preset", action="append", help="model preset(s) (default: tiny and small)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--steps_per_loop", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32, help="global batch")
    parser.add_argument("--optimizer", default="lamb")
    parser.add_argument("--bf16", action="store_true", help="bf16 compute (GPU/TPU)")
    parser.add_argument("--jit_compile", choices=["auto", "on", "off"], default="auto", help="XLA (auto: on GPU)")
    parser.add_argument("--peak_tflops", type=float, default=0.0, help="accelerator peak for MFU")
    parser.add_argument("--input_batches", type=int, default=100)
    parser.add_argument("--workdir", default=str(ROOT / "build" / "bench-pretrain"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "pretrain.json"))
    args = parser.parse_args()

    import tensorflow as tf

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    shards = {"given": Path(args.shards)} if args.shards else build_shards(workdir)
    gpus = tf.config.list_physical_devices("GPU")
    gpu_name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "") if gpus else ""
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu_name), 0.0)
    from pipeline.shards import manifest

    results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "gpu": gpu_name or None,
                           "tensorflow": tf.__version__},
               "settings": {"batch": args.batch, "steps": args.steps, "steps_per_loop": args.steps_per_loop,
                            "optimizer": args.optimizer, "bf16": args.bf16, "jit_compile": args.jit_compile},
               "input": {}, "models": []}
    for kind, directory in shards.items():
        m = manifest.read(directory)
        rate = measure_input(directory, args.batch, args.input_batches)
        results["input"][kind] = {"shards": str(directory), "features": m["features"],
                                  "max_seq_length": m["max_seq_length"], "examples_per_second": round(rate, 1)}
        print(f"input {kind} ({m['features']}): {rate:,.0f} examples/s")
    train_shards = shards.get("masked", next(iter(shards.values())))
    m = manifest.read(train_shards)
    for name in args.preset or ["tiny", "small"]:
        args.preset = name
        measured = measure_model(train_shards, args)
        config = measured["trainer"].config
        rate = measured["examples_per_second"]
        flops = training_flops_per_example(config, m["max_seq_length"], m["max_predictions_per_seq"])
        row = {"preset": name, "parameters": config.parameters(), "device": measured["device"],
               "replicas": measured["replicas"], "seq": m["max_seq_length"], "examples_per_second": round(rate, 1),
               "model_tflops_per_second": round(rate * flops / 1e12, 3),
               "input_over_model": {k: round(v["examples_per_second"] / rate, 1) for k, v in results["input"].items()}}
        if peak:
            row["mfu"] = round(rate * flops / (peak * 1e12 * measured["replicas"]), 4)
            row["peak_tflops"] = peak
        results["models"].append(row)
        print(f"model {name}: {rate:,.1f} examples/s, {row['model_tflops_per_second']} TFLOP/s, "
              f"input/model {row['input_over_model']}" + (f", MFU {row['mfu']:.1%}" if peak else ""))
    results["input_never_the_bottleneck"] = all(
        ratio >= 10 for row in results["models"] for ratio in row["input_over_model"].values())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    if not math.isfinite(results["models"][0]["examples_per_second"]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
