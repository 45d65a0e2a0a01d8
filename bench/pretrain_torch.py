"""Benchmark: the PyTorch runner's training throughput, its model FLOP utilisation, and its input pipeline's
own throughput beside the model's consumption (no TensorFlow in this process).

Shards: ``--shards DIR`` (one per ``--seq``, in the same order), else built here from the shared wiki2019zh
sample with the real stages (jieba) and Google's Chinese vocab (21,128 entries), masked, for each ``--seq``.

- model: examples/s of ``Trainer.train_step`` (forward, backward, clip, AdamW), ``--warmup`` steps (and
  torch.compile's compilation) left out; bf16 autocast on GPU; MFU = achieved training FLOP/s (6 x matmul
  parameters per token + attention + the gathered MLM head) / the chip's dense bf16 peak (``--peak_tflops``,
  or H100/H200/A100 detected; none on CPU).
- input: examples/s of the DataLoader alone (same workers, batch, decode, masking for unmasked shards) and
  its ratio to the model's consumption (target >= 10x).

Writes bench/results/pretrain_torch.json (``--out``). CPU: python bench/pretrain_torch.py; GPU (H200):
python bench/pretrain_torch.py --device cuda --preset base --seq 128 512 --batch 256 64 --steps 60 --compile
--num_workers 8 --shards DIR128 DIR512
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("USE_TF", "0")

SHARED = Path(os.environ.get("WWM_SHARED_DATA", ROOT.parent / "shared" / "data"))
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}   # dense bf16, SXM parts
PREDICTIONS = {128: 20, 512: 80}


def build_shards(workdir: Path, seq: int, unmasked: bool = False) -> Path:
    from pipeline.config import Config, InputSpec
    from pipeline.stages import DOCUMENT_STAGES, run_all, run_stage

    corpus = SHARED / "corpora" / "wiki2019zh_sample.jsonl"
    vocab = SHARED / "reference" / "bert_base_chinese_vocab.txt"
    if not corpus.exists() or not vocab.exists():
        raise SystemExit(f"shared data not found under {SHARED}: pass --shards")
    target = workdir / f"shards-{seq}{'-unmasked' if unmasked else ''}"
    if (target / "manifest.json").exists():
        return target
    config = Config(engine="beam", output=str(workdir), inputs=[InputSpec(str(corpus), "auto", None)], progress=False)
    config.segment.segmenter = "jieba"
    if not (workdir / "segment").exists():
        run_all(config, DOCUMENT_STAGES, log=lambda *_: None)
    config.shards.vocab, config.shards.dupe_factor, config.shards.shards = str(vocab), 5, 4
    config.shards.max_seq_length, config.shards.max_predictions_per_seq = seq, PREDICTIONS.get(seq, seq * 20 // 128)
    config.shards.unmasked = unmasked
    run_stage("shards", config, log=lambda *_: None)
    (workdir / "shards").rename(target)
    return target


def training_flops_per_example(config, seq: int, predictions: int) -> float:
    """3 x forward FLOPs: 2 per matmul parameter per token, attention scores/values, the gathered MLM head."""
    h, i, layers, v = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    encoder = layers * (2 * (4 * h * h + 2 * h * i) * seq + 2 * 2 * seq * seq * h)
    head = 2 * predictions * (h * h + h * v) + 2 * h * h + 2 * 2 * h
    return 3.0 * (encoder + head)


def peak_tflops(args, device_name: str) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in device_name:
            return value
    return None


def measure(shards: Path, seq: int, batch: int, args) -> dict:
    import torch

    from pipeline.pretrain_torch.train import TorchTrainOptions, Trainer

    with tempfile.TemporaryDirectory() as out:
        options = TorchTrainOptions(shards=str(shards), output_dir=out, preset=args.preset, train_batch_size=batch,
                                    num_train_steps=args.warmup + args.steps, num_warmup_steps=1,
                                    save_checkpoints_steps=0, device=args.device, compile=args.compile,
                                    num_workers=args.num_workers, shuffle_buffer=args.shuffle_buffer,
                                    mixed_precision="bf16" if args.device == "cuda" else "fp32", export=False)
        trainer = Trainer(options, log=lambda *_: None)
        manifest = trainer.manifest
        if manifest["max_seq_length"] != seq:
            raise SystemExit(f"{shards}: max_seq_length {manifest['max_seq_length']}, expected {seq}")
        sync = torch.cuda.synchronize if trainer.kind == "cuda" else (lambda: None)
        batches = trainer.batches(0)
        trainer.model.train()
        for _ in range(args.warmup):
            trainer.train_step(next(batches))
        sync()
        times = []
        for _ in range(args.steps):
            started = time.perf_counter()
            sums = trainer.train_step(next(batches))
            sync()
            times.append(time.perf_counter() - started)
        float(sums[0])
        step_s = statistics.median(times)
        model_eps = batch / step_s
        # the input pipeline alone: a fresh loader, same settings, no model
        loader_it = trainer.batches(0)
        for _ in range(3):
            next(loader_it)
        n_input = max(args.steps, 20)
        started = time.perf_counter()
        for _ in range(n_input):
            next(loader_it)
        input_eps = n_input * batch / (time.perf_counter() - started)
        flops = training_flops_per_example(trainer.config, seq, manifest["max_predictions_per_seq"])
        name = torch.cuda.get_device_name(trainer.device) if trainer.kind == "cuda" else platform.processor() or "cpu"
        peak = peak_tflops(args, name) if trainer.kind == "cuda" else args.peak_tflops
        achieved = flops * model_eps / 1e12
        return {"seq": seq, "batch": batch, "predictions": manifest["max_predictions_per_seq"],
                "features": manifest["features"], "device": name, "precision": "bf16" if trainer.bf16 else "fp32",
                "compiled": args.compile, "num_workers": args.num_workers, "steps_timed": args.steps,
                "median_step_s": round(step_s, 5), "model_examples_per_s": round(model_eps, 1),
                "model_tflops": round(achieved, 3), "peak_bf16_tflops": peak,
                "mfu": round(achieved / peak, 4) if peak else None,
                "input_examples_per_s": round(input_eps, 1), "input_over_model": round(input_eps / model_eps, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--preset", default="", help="model size (default: tiny on CPU, base on cuda)")
    p.add_argument("--seq", type=int, nargs="+", default=[128])
    p.add_argument("--batch", type=int, nargs="+", default=[32], help="global batch, one per --seq (or one)")
    p.add_argument("--shards", nargs="*", default=[], help="shard directories, one per --seq")
    p.add_argument("--unmasked", action="store_true", help="build unmasked shards (dynamic masking in the loader)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--num_workers", type=int, default=2)
    p.add_argument("--shuffle_buffer", type=int, default=10_000)
    p.add_argument("--peak_tflops", type=float, default=0.0)
    p.add_argument("--workdir", default="", help="where shards are built (default: a temporary directory)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "pretrain_torch.json"))
    args = p.parse_args()
    args.preset = args.preset or ("base" if args.device == "cuda" else "tiny")
    import torch

    if args.device == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 2) - args.num_workers) if args.num_workers else os.cpu_count())
    batches = args.batch * len(args.seq) if len(args.batch) == 1 else args.batch
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-pretrain-torch-"))
    runs = []
    for k, seq in enumerate(args.seq):
        shards = Path(args.shards[k]) if args.shards else build_shards(workdir, seq, args.unmasked)
        result = measure(shards, seq, batches[k], args)
        print(json.dumps(result))
        runs.append(result)
    report = {"benchmark": "pretrain_torch", "preset": args.preset, "torch": torch.__version__,
              "host": platform.node(), "cpus": os.cpu_count(), "runs": runs,
              "command": " ".join(sys.argv),
              "tensorflow_imported": "tensorflow" in sys.modules}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
