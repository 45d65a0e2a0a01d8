"""Benchmark: does whole-word masking train a better masked LM than token masking on the same text? An A/B
with the PyTorch runner (no TensorFlow in this process).

1. Documents: the shared corpora (wiki2019zh, ChineseWebText, a wikiextractor dump sample) through ingest,
   clean, dedup and segment (``wwm`` CLI in subprocesses, jieba by default). A tenth of the documents is held
   out, chosen by a seeded hash of the document id (``--heldout-seed``); the rest is the training text.
2. Training shards from the same training text, one set per arm, built by ``wwm shards`` (a subprocess) with
   Google's Chinese vocab; only the masking differs:
   - ``wwm``: whole words chosen, 80/10/10 drawn once per word (the default);
   - ``wwm-google``: whole words chosen, 80/10/10 drawn per token (``--shards-mask-decision token``, as
     google-research/bert and Chinese-BERT-wwm);
   - ``token``: tokens chosen one by one, as the original BERT (``--no-shards-wwm``).
3. Training: the same model (``--preset``), steps, batch, learning rate and seed for every arm, two seeds
   (``--seeds``), with ``pipeline.pretrain_torch`` (MLM + NSP).
4. Evaluation of every model on the held-out documents (unmasked shards, one copy), masked two ways with the
   shards stage's own masking code and the same instance seeds for every model: ``word`` (whole words) and
   ``token`` (each token its own unit). Per scheme: MLM loss and accuracy on the masked tokens, and word
   accuracy: a word with masked tokens counts as right when all its masked tokens are predicted right (under
   ``word`` that is all its tokens), over all such words and over words of two or more tokens.

Writes bench/results/quality.json (``--out``) and prints the table: mean and spread (sample standard
deviation, and each seed's value) over seeds. CPU default: tiny preset, 300 steps of batch 32 at length 128.
GPU: python bench/quality.py --device cuda --preset small --steps 3000 --batch 128 --num_workers 4
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("USE_TF", "0")          # transformers must never import TensorFlow in this process

SHARED = Path(os.environ.get("WWM_SHARED_DATA", ROOT.parent / "shared" / "data"))
CORPORA = ("wiki2019zh_sample.jsonl", "chinesewebtext_sample.jsonl", "wikiextractor_doc_sample.txt")
ARMS = {"wwm": ["--shards-masking", "wwm", "--shards-mask-decision", "word"],
        "wwm-google": ["--shards-masking", "wwm", "--shards-mask-decision", "token"],
        "token": ["--no-shards-wwm"]}
SCHEMES = ("word", "token")
METRICS = ("mlm_loss", "mlm_accuracy", "word_accuracy", "multi_token_word_accuracy")


def wwm(*args: str, log) -> None:
    """One ``wwm`` CLI command in a subprocess (the stages may import what they like there)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "pipeline.cli", *args, "--no-progress"]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    log(f"  {' '.join(args[:1])}: {done.stdout.strip().splitlines()[-1] if done.stdout.strip() else 'done'} "
        f"({time.perf_counter() - started:.0f} s)")


def held_out(doc_id: str, seed: int, tenth: int = 10) -> bool:
    """A document is held out when the seeded hash of its id falls in one bucket of ``tenth``."""
    digest = hashlib.blake2b(f"{seed}:{doc_id}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % tenth == 0


def documents(work: Path, args, log) -> tuple[Path, Path, dict]:
    """The segmented documents split into train/ and heldout/ tables (Parquet with the segmented schema)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = work / "documents"
    if not (docs / "segment" / "stats.json").exists():
        inputs = [str(SHARED / "corpora" / name) for name in CORPORA]
        missing = [p for p in inputs if not Path(p).exists()]
        if missing:
            raise SystemExit(f"shared corpora not found: {', '.join(missing)} (set WWM_SHARED_DATA)")
        log(f"documents: {', '.join(CORPORA)} -> {docs}")
        wwm("ingest", *inputs, "--output", str(docs), log=log)
        wwm("clean", "--output", str(docs), log=log)
        wwm("dedup", "--output", str(docs), log=log)
        wwm("segment", "--output", str(docs), "--segment-segmenter", args.segmenter, log=log)
    parts = sorted((docs / "segment" / "segmented").rglob("*.parquet"))
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    out = {}
    keep = [held_out(i, args.heldout_seed) for i in table.column("id").to_pylist()]
    for name, mask in (("train", [not k for k in keep]), ("heldout", keep)):
        target = work / "split" / name
        target.mkdir(parents=True, exist_ok=True)
        part = table.filter(pa.array(mask))
        pq.write_table(part, target / "part-00000-of-00001.parquet")
        out[name] = {"documents": part.num_rows,
                     "characters": sum(len(s) for doc in part.column("sentences").to_pylist() for s in doc)}
    log(f"split (seed {args.heldout_seed}): {out['train']['documents']} training documents "
        f"({out['train']['characters']:,} characters), {out['heldout']['documents']} held out "
        f"({out['heldout']['characters']:,} characters)")
    return work / "split" / "train", work / "split" / "heldout", out


def shards(source: Path, target: Path, options: list[str], args, log) -> Path:
    if not (target / "shards" / "manifest.json").exists():
        wwm("shards", "--input", str(source), "--vocab", str(args.vocab), "--output", str(target),
            "--shards-max-seq-length", str(args.seq), "--shards-max-predictions-per-seq", str(args.predictions),
            "--shards-seed", str(args.shards_seed), *options, log=log)
    return target / "shards"


def evaluation_sets(directory: Path, args) -> dict:
    """The held-out instances masked under each scheme, with the same instance seeds (and their word ids)."""
    import numpy as np

    from pipeline.pretrain_torch import reader
    from pipeline.pretrain_torch.masking import DynamicMasker
    from pipeline.shards.seeds import mix

    manifest = reader.read_manifest(directory)
    files, _ = reader.shard_files(directory, manifest)
    names = [f.name for f in reader.layout(manifest)]
    items = [(path, i, data) for path in files for i, data in reader.records(path, names)]
    features = reader.decode_batch(items, reader.layout(manifest))
    seeds = mix(np.uint64(args.eval_seed), np.arange(len(items), dtype=np.uint64))
    sets = {}
    for scheme in SCHEMES:
        settings = {**manifest.get("settings", {}), "masking": "wwm", "mask_decision": "word"}
        masker = DynamicMasker({**manifest, "settings": settings}, str(args.vocab))
        units = features["word_ids"]
        if scheme == "token":          # every real token its own unit: the same code masks tokens one by one
            positions = np.arange(1, units.shape[1] + 1)[None, :]
            units = np.where(units > 0, positions, 0)
        masked = masker({**features, "word_ids": units}, seeds)
        sets[scheme] = {**masked, "word_ids": features["word_ids"]}
    return sets


def evaluate(model, sets: dict, device, batch: int, bf16: bool) -> dict:
    """Per scheme: MLM loss and accuracy on the masked tokens, word accuracies (see the module's doc)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    model.eval()
    results = {}
    for scheme, data in sets.items():
        n = len(data["input_ids"])
        nll, correct = [], []
        with torch.no_grad():
            for start in range(0, n, batch):
                part = {k: torch.from_numpy(np.ascontiguousarray(v[start:start + batch])).to(device)
                        for k, v in data.items() if k != "word_ids"}
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                    sequence = model.bert(input_ids=part["input_ids"], attention_mask=part["input_mask"],
                                          token_type_ids=part["segment_ids"], return_dict=False)[0]
                    positions = part["masked_lm_positions"]
                    gathered = sequence.gather(1, positions.unsqueeze(-1).expand(-1, -1, sequence.size(-1)))
                    logits = model.cls.predictions(gathered).float()
                labels = part["masked_lm_ids"]
                nll.append(F.cross_entropy(logits.transpose(1, 2), labels, reduction="none").cpu().numpy())
                correct.append((logits.argmax(-1) == labels).cpu().numpy())
        nll, correct = np.concatenate(nll), np.concatenate(correct)
        weights = data["masked_lm_weights"] > 0
        positions, word_ids = data["masked_lm_positions"], data["word_ids"]
        # words: (instance, word id) of every masked position; right when all its masked positions are right
        rows = np.broadcast_to(np.arange(n)[:, None], positions.shape)
        width = word_ids.max() + 1
        keys = (rows * width + np.take_along_axis(word_ids, positions, axis=1))[weights]
        words, inverse = np.unique(keys, return_inverse=True)
        wrong = np.bincount(inverse, weights=(~correct[weights]).astype(np.float64), minlength=len(words))
        lengths = np.bincount((np.arange(n)[:, None] * width + word_ids).ravel(), minlength=n * width)
        multi = lengths[words] >= 2
        results[scheme] = {"mlm_loss": float(nll[weights].mean()), "mlm_accuracy": float(correct[weights].mean()),
                           "word_accuracy": float((wrong == 0).mean()),
                           "multi_token_word_accuracy": float((wrong[multi] == 0).mean()) if multi.any() else None,
                           "masked_tokens": int(weights.sum()), "masked_words": int(len(words)),
                           "masked_multi_token_words": int(multi.sum()), "instances": int(n)}
    model.train()
    return results


def train_one(shards_dir: Path, out: Path, arm: str, seed: int, args, log) -> tuple[object, dict]:
    from pipeline.pretrain_torch.train import TorchTrainOptions, Trainer

    options = TorchTrainOptions(shards=str(shards_dir), output_dir=str(out), preset=args.preset,
                                train_batch_size=args.batch, num_train_steps=args.steps,
                                num_warmup_steps=args.warmup if args.warmup >= 0 else max(1, args.steps // 10),
                                learning_rate=args.learning_rate, steps_per_loop=max(1, args.steps // 5),
                                save_checkpoints_steps=0, seed=seed, device=args.device,
                                mixed_precision="bf16" if args.device == "cuda" else "fp32",
                                num_workers=args.num_workers, shuffle_buffer=args.shuffle_buffer,
                                compile=args.compile, export=False)
    trainer = Trainer(options, log=lambda line: log(f"    {line}"))
    started = time.perf_counter()
    last = trainer.train()
    return trainer, {"train_seconds": round(time.perf_counter() - started, 1),
                     "final_train": {k: last.get(k) for k in ("mlm_loss", "mlm_accuracy", "nsp_accuracy")}}


def summary(runs: list[dict], arms: list[str]) -> dict:
    out = {}
    for arm in arms:
        mine = [r for r in runs if r["arm"] == arm]
        out[arm] = {}
        for scheme in SCHEMES:
            out[arm][scheme] = {}
            for metric in METRICS:
                values = [r["eval"][scheme][metric] for r in mine if r["eval"][scheme][metric] is not None]
                out[arm][scheme][metric] = {
                    "mean": statistics.fmean(values) if values else None,
                    "sd": statistics.stdev(values) if len(values) > 1 else None,
                    "values": values}
    return out


def table(summary_: dict, arms: list[str]) -> str:
    heads = {"mlm_loss": "loss", "mlm_accuracy": "token acc", "word_accuracy": "word acc",
             "multi_token_word_accuracy": "word acc (2+)"}
    lines = ["| trained with | eval masking | " + " | ".join(heads.values()) + " |",
             "|---|---|" + "---|" * len(heads)]
    for arm in arms:
        for scheme in SCHEMES:
            cells = []
            for metric in METRICS:
                s = summary_[arm][scheme][metric]
                if s["mean"] is None:
                    cells.append("-")
                    continue
                digits = 3 if metric == "mlm_loss" else 4
                sd = f" ± {s['sd']:.{digits}f}" if s["sd"] is not None else ""
                cells.append(f"{s['mean']:.{digits}f}{sd}")
            lines.append(f"| {arm} | {scheme} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--preset", default="tiny", help="model size (pipeline.pretrain.config.PRESETS)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=32, help="global batch")
    p.add_argument("--learning_rate", "--learning-rate", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=-1, help="warm-up steps (-1: a tenth of --steps)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="training seeds (each arm, each seed)")
    p.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--predictions", type=int, default=20)
    p.add_argument("--dupe_factor", "--dupe-factor", type=int, default=5, help="training shards' copies per document")
    p.add_argument("--segmenter", choices=["jieba", "ltp"], default="jieba")
    p.add_argument("--vocab", default=str(SHARED / "reference" / "bert_base_chinese_vocab.txt"))
    p.add_argument("--heldout_seed", "--heldout-seed", type=int, default=2024)
    p.add_argument("--shards_seed", "--shards-seed", type=int, default=12345)
    p.add_argument("--eval_seed", "--eval-seed", type=int, default=777)
    p.add_argument("--eval_batch", "--eval-batch", type=int, default=128)
    p.add_argument("--num_workers", "--num-workers", type=int, default=0, help="dataloader workers")
    p.add_argument("--shuffle_buffer", "--shuffle-buffer", type=int, default=10_000)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="CPU: torch threads (0: all cores)")
    p.add_argument("--workdir", default="", help="documents, splits and shards (default: a temporary directory; "
                   "reused when given)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "quality.json"))
    args = p.parse_args()
    if not Path(args.vocab).exists():
        raise SystemExit(f"vocab {args.vocab} not found (set WWM_SHARED_DATA or pass --vocab)")
    log = lambda line: print(line, flush=True)  # noqa: E731
    began = time.perf_counter()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-quality-"))
    work.mkdir(parents=True, exist_ok=True)

    train_docs, heldout_docs, split = documents(work, args, log)
    arm_shards, manifests = {}, {}
    for arm in args.arms:
        arm_shards[arm] = shards(train_docs, work / f"train-{arm}", ARMS[arm] + [
            "--shards-dupe-factor", str(args.dupe_factor)], args, log)
    heldout = shards(heldout_docs, work / "heldout", ["--shards-unmasked", "--shards-dupe-factor", "1"], args, log)
    prep_seconds = time.perf_counter() - began

    import torch

    from pipeline.pretrain_torch import reader

    if args.device == "cpu":
        torch.set_num_threads(args.threads or os.cpu_count() or 1)
    for arm, directory in arm_shards.items():
        m = reader.read_manifest(directory)
        manifests[arm] = {"instances": m["instances"], "settings": {k: m["settings"].get(k) for k in
                                                                    ("wwm", "masking", "mask_decision", "dupe_factor")}}
    sets = evaluation_sets(heldout, args)
    log(f"held out: {len(sets['word']['input_ids'])} instances; masked tokens: "
        + ", ".join(f"{s} {int(sets[s]['masked_lm_weights'].sum())}" for s in SCHEMES))

    runs = []
    for seed in args.seeds:
        for arm in args.arms:
            log(f"train {arm}, seed {seed}: {args.preset}, {args.steps} steps of {args.batch}")
            trainer, info = train_one(arm_shards[arm], work / "runs" / f"{arm}-seed{seed}", arm, seed, args, log)
            info["eval"] = evaluate(trainer.model, sets, trainer.device, args.eval_batch, trainer.bf16)
            log("    eval: " + "; ".join(f"{s} loss {e['mlm_loss']:.3f} acc {e['mlm_accuracy']:.4f} "
                                         f"word acc {e['word_accuracy']:.4f}" for s, e in info["eval"].items()))
            runs.append({"arm": arm, "seed": seed, **info})
            del trainer
    result = summary(runs, args.arms)
    text = table(result, args.arms)
    print(text)
    device_name = torch.cuda.get_device_name(0) if args.device == "cuda" else (platform.processor() or "cpu")
    report = {"benchmark": "quality", "command": " ".join(sys.argv), "device": device_name, "torch": torch.__version__,
              "cpus": os.cpu_count(), "preset": args.preset, "steps": args.steps, "batch": args.batch,
              "learning_rate": args.learning_rate, "seeds": args.seeds, "seq": args.seq,
              "predictions": args.predictions, "segmenter": args.segmenter, "vocab": Path(args.vocab).name,
              "corpora": list(CORPORA), "split": {"heldout_seed": args.heldout_seed, **split},
              "train_shards": manifests, "eval_instances": len(sets["word"]["input_ids"]),
              "arms": {arm: ARMS[arm] for arm in args.arms}, "runs": runs, "summary": result, "table": text,
              "prep_seconds": round(prep_seconds, 1), "seconds": round(time.perf_counter() - began, 1),
              "tensorflow_imported": "tensorflow" in sys.modules}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({report['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
