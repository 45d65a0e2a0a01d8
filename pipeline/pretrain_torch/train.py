"""The PyTorch runner's training loop: transformers' BERT, AdamW with warm-up and linear decay, gradient
clipping, bf16 autocast on GPU, optional ``torch.compile``, DDP under ``torchrun``; checkpoints every N steps
with exact resume (step, optimizer, schedule, RNG, data position); ``metrics.jsonl`` and TensorBoard as
the TensorFlow runner writes them; the export at the end.

The model is ``BertForPreTraining`` (MLM + NSP, bert mode) or ``BertForMaskedLM`` (roberta mode) from the
same ``bert_config.json``; the masked-LM head runs on the masked positions only (gathered, as
google-research/bert and NVIDIA's BERT do), and its loss is ``sum(w * nll) / sum(w)`` over the global batch.

Never imports TensorFlow: the google-format checkpoint is written by a subprocess (``export``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("USE_TF", "0")         # transformers must not import TensorFlow in this process

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from pipeline.pretrain.config import BertConfig, check_against_manifest, preset  # noqa: E402
from pipeline.pretrain_torch import reader  # noqa: E402
from pipeline.pretrain_torch.data import ShardBatches, loader  # noqa: E402
from pipeline.pretrain_torch.events import EventWriter  # noqa: E402

SUMS = ("loss", "mlm_nll", "mlm_weight", "mlm_correct", "nsp_nll", "nsp_correct", "examples")
NO_DECAY = ("LayerNorm", "layer_norm", "bias")


@dataclass
class TorchTrainOptions:
    shards: str
    output_dir: str
    bert_config_file: str = ""
    preset: str = "base"
    mode: str = ""                                # bert | roberta; default: the manifest's
    train_batch_size: int = 32                    # global (all ranks)
    num_train_steps: int = 1000
    num_warmup_steps: int = 100
    learning_rate: float = 1e-4
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    steps_per_loop: int = 100                     # steps per log line
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    seed: int = 12345
    mixed_precision: str = "auto"                 # auto (bf16 on GPU, fp32 on CPU) | bf16 | fp32
    device: str = "auto"                          # auto | cpu | cuda
    compile: bool = False                         # torch.compile the model
    num_workers: int = 2                          # dataloader workers per rank
    init_checkpoint: str = ""                     # a Hugging Face directory (model.safetensors)
    vocab: str = ""
    shuffle_buffer: int = 10_000
    stop_after_steps: int = 0
    export: bool = True


def hf_config(config: BertConfig, mode: str):
    from transformers import BertConfig as HFBertConfig

    return HFBertConfig(**config.to_dict(), layer_norm_eps=1e-12, pad_token_id=0,
                        position_embedding_type="absolute", tie_word_embeddings=True,
                        architectures=["BertForPreTraining" if mode == "bert" else "BertForMaskedLM"])


def build_model(config: BertConfig, mode: str, seed: int):
    """transformers' model for ``mode``, initialised from ``seed`` (the same weights on every rank)."""
    from transformers import BertForMaskedLM, BertForPreTraining

    torch.manual_seed(seed)
    cls = BertForPreTraining if mode == "bert" else BertForMaskedLM
    return cls(hf_config(config, mode))


class Pretrainer(nn.Module):
    """Forward pass to the metric sums: MLM on the gathered masked positions, NSP in bert mode."""

    def __init__(self, model, mode: str):
        super().__init__()
        self.model, self.mode = model, mode

    def forward(self, input_ids, input_mask, segment_ids, masked_lm_positions, masked_lm_ids, masked_lm_weights,
                next_sentence_labels):
        out = self.model.bert(input_ids=input_ids, attention_mask=input_mask, token_type_ids=segment_ids,
                              return_dict=False)
        sequence = out[0]
        hidden = sequence.size(-1)
        gathered = sequence.gather(1, masked_lm_positions.unsqueeze(-1).expand(-1, -1, hidden))
        logits = self.model.cls.predictions(gathered).float()
        nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), masked_lm_ids.reshape(-1), reduction="none")
        w = masked_lm_weights.reshape(-1)
        correct = (logits.argmax(-1).reshape(-1) == masked_lm_ids.reshape(-1)).float()
        mlm_nll, mlm_weight, mlm_correct = (nll * w).sum(), w.sum(), (correct * w).sum()
        if self.mode == "bert":
            nsp_logits = self.model.cls.seq_relationship(out[1]).float()
            nsp = F.cross_entropy(nsp_logits, next_sentence_labels, reduction="none")
            nsp_nll = nsp.sum()
            nsp_correct = (nsp_logits.argmax(-1) == next_sentence_labels).float().sum()
        else:
            nsp_nll = nsp_correct = torch.zeros((), device=logits.device)
        return mlm_nll, mlm_weight, mlm_correct, nsp_nll, nsp_correct


def summarize(sums, steps: int) -> dict:
    s = dict(zip(SUMS, [float(x) for x in sums]))
    return {"loss": s["loss"] / max(steps, 1),
            "mlm_loss": s["mlm_nll"] / max(s["mlm_weight"], 1e-5),
            "mlm_accuracy": s["mlm_correct"] / max(s["mlm_weight"], 1e-5),
            "nsp_loss": s["nsp_nll"] / max(s["examples"], 1),
            "nsp_accuracy": s["nsp_correct"] / max(s["examples"], 1),
            "examples": int(s["examples"])}


def warmup_linear_decay(total: int, warmup: int):
    """The TF runner's schedule as a LambdaLR factor: ``step / warmup`` then ``1 - step / total``, floored at 0."""
    def factor(step: int) -> float:
        decayed = max(0.0, 1.0 - step / max(total, 1))
        return step / warmup if warmup > 0 and step < warmup else decayed
    return factor


def load_bert_config(options: TorchTrainOptions, manifest: dict) -> BertConfig:
    config = (BertConfig.from_json(options.bert_config_file) if options.bert_config_file
              else preset(options.preset, vocab_size=manifest["vocab_size"]))
    check_against_manifest(config, manifest)
    return config


CHECKPOINT = re.compile(r"^ckpt-(\d+)\.pt$")


def checkpoints(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), directory / p.name) for p in directory.iterdir() if (m := CHECKPOINT.match(p.name))]
    return sorted(found)


class Trainer:
    def __init__(self, options: TorchTrainOptions, log=print):
        self.options, o = options, options
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.log = log if self.rank == 0 else (lambda *_: None)
        if o.device == "auto":
            kind = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            kind = o.device
        if kind == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda: no CUDA device is visible to torch")
        self.device = torch.device(f"cuda:{self.local_rank}" if kind == "cuda" else "cpu")
        if kind == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if kind == "cuda" else "gloo")
        if o.optimizer != "adamw":
            raise ValueError(f"--optimizer {o.optimizer}: the torch runner has adamw only (lamb: the TF runner)")
        self.manifest = reader.read_manifest(o.shards)
        self.config = load_bert_config(o, self.manifest)
        self.mode = o.mode or self.manifest.get("settings", {}).get("mode", "bert")
        if self.mode not in ("bert", "roberta"):
            raise ValueError(f"mode {self.mode!r}: bert or roberta")
        if o.train_batch_size % self.world:
            raise ValueError(f"train_batch_size {o.train_batch_size} is not a multiple of the {self.world} ranks")
        self.batch_size = o.train_batch_size // self.world
        precision = o.mixed_precision
        if precision == "auto":
            precision = "bf16" if kind == "cuda" else "fp32"
        self.bf16 = precision == "bf16"
        self.model = build_model(self.config, self.mode, o.seed).to(self.device)
        if o.init_checkpoint:
            self._init_from(o.init_checkpoint)
        self.pretrainer = Pretrainer(self.model, self.mode)
        self.step_module = self.pretrainer
        if self.world > 1:
            self.step_module = nn.parallel.DistributedDataParallel(
                self.pretrainer, device_ids=[self.device.index] if kind == "cuda" else None)
        if o.compile:
            self.step_module = torch.compile(self.step_module)
        decay = [p for n, p in self.model.named_parameters() if not any(x in n for x in NO_DECAY)]
        no_decay = [p for n, p in self.model.named_parameters() if any(x in n for x in NO_DECAY)]
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay},
                                            {"params": no_decay, "weight_decay": 0.0}],
                                           lr=o.learning_rate, betas=(0.9, 0.999), eps=1e-6,
                                           fused=kind == "cuda")
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_linear_decay(o.num_train_steps, o.num_warmup_steps))
        self.kind = kind
        self.out = Path(o.output_dir)
        self.checkpoint_dir = self.out / "checkpoints"

    def _init_from(self, path: str) -> None:
        from safetensors.torch import load_file

        file = Path(path) / "model.safetensors" if Path(path).is_dir() else Path(path)
        if not file.exists():
            raise FileNotFoundError(f"--init_checkpoint {path}: no model.safetensors (the torch runner starts "
                                    "from a Hugging Face directory, e.g. an export's hf/)")
        missing, unexpected = self.model.load_state_dict(load_file(str(file)), strict=False)
        missing = [m for m in missing if m != "cls.predictions.decoder.weight"]      # tied to the embeddings
        self.log(f"init: weights from {file}; missing: {', '.join(missing) or 'none'}; "
                 f"not used: {', '.join(unexpected) or 'none'}")

    # ---- checkpoints
    def save(self, step: int) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        rng = {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(self.device)
               if self.kind == "cuda" else None}
        torch.save(rng, self.checkpoint_dir / f"rng-{step}-rank{self.rank}.pt")
        if self.rank == 0:
            state = {"step": step, "data_position": {"batches_per_rank": step, "world": self.world,
                                                     "workers": self.options.num_workers,
                                                     "batch_size_per_rank": self.batch_size},
                     "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                     "scheduler": self.scheduler.state_dict()}
            tmp = self.checkpoint_dir / f"ckpt-{step}.pt.tmp"
            torch.save(state, tmp)
            os.replace(tmp, self.checkpoint_dir / f"ckpt-{step}.pt")
            for old, path in checkpoints(self.checkpoint_dir)[:-max(1, self.options.keep_checkpoint_max)]:
                path.unlink(missing_ok=True)
                for rng_file in self.checkpoint_dir.glob(f"rng-{old}-rank*.pt"):
                    rng_file.unlink(missing_ok=True)
        if self.world > 1:
            torch.distributed.barrier()

    def restore(self) -> int:
        found = checkpoints(self.checkpoint_dir)
        if not found:
            return 0
        step, path = found[-1]
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        position = state["data_position"]
        if (position["world"], position["workers"], position["batch_size_per_rank"]) != (
                self.world, self.options.num_workers, self.batch_size):
            self.log(f"warning: resuming with {self.world} ranks x {self.options.num_workers} workers x batch "
                     f"{self.batch_size}, saved with {position['world']} x {position['workers']} x "
                     f"{position['batch_size_per_rank']}: the data order is not the interrupted run's")
        rng_file = self.checkpoint_dir / f"rng-{step}-rank{self.rank}.pt"
        if rng_file.exists():
            rng = torch.load(rng_file, weights_only=True)
            torch.set_rng_state(rng["cpu"])
            if rng["cuda"] is not None and self.kind == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.log(f"resumed from {path} at step {step}")
        return int(state["step"])

    def _check_run_settings(self) -> None:
        o = self.options
        settings = {"shards": str(Path(o.shards).resolve()), "train_batch_size": o.train_batch_size, "seed": o.seed,
                    "world": self.world, "num_workers": o.num_workers, "shuffle_buffer": o.shuffle_buffer,
                    "num_train_steps": o.num_train_steps, "bert_config": self.config.to_dict(), "mode": self.mode,
                    "framework": "torch"}
        path = self.out / "run_settings.json"
        if path.exists() and checkpoints(self.checkpoint_dir):
            before = json.loads(path.read_text(encoding="utf-8"))
            changed = sorted(k for k in settings if before.get(k) != settings[k])
            if changed:
                self.log(f"warning: resuming with changed settings {changed}: the data position and schedule "
                         "are not those of the interrupted run")
        path.write_text(json.dumps({**settings, "options": dataclasses.asdict(o)}, indent=2) + "\n",
                        encoding="utf-8")

    def batches(self, start: int):
        o = self.options
        dataset = ShardBatches(o.shards, self.manifest, batch_size=self.batch_size, seed=o.seed, rank=self.rank,
                               world=self.world, workers=o.num_workers, start_batch=start,
                               shuffle_buffer=o.shuffle_buffer, vocab=o.vocab or None)
        return iter(loader(dataset, o.num_workers, o.seed, pin_memory=self.kind == "cuda"))

    def train_step(self, batch: dict) -> torch.Tensor:
        """One optimizer step; returns the metric sums (``SUMS``) of this rank, on the device."""
        o = self.options
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(device_type=self.kind, dtype=torch.bfloat16, enabled=self.bf16):
            mlm_nll, mlm_weight, mlm_correct, nsp_nll, nsp_correct = self.step_module(
                **{name: batch[name] for name in reader.MASKED_OUTPUTS})
        total_weight = mlm_weight.detach().clone()
        if self.world > 1:
            torch.distributed.all_reduce(total_weight)
        # DDP averages gradients over ranks: scale by the world so that they are those of the global loss
        loss = mlm_nll / (total_weight + 1e-5) * self.world
        if self.mode == "bert":
            loss = loss + nsp_nll / float(o.train_batch_size) * self.world
        loss.backward()
        if o.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), o.clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        examples = torch.tensor(float(batch["input_ids"].shape[0]), device=self.device)
        return torch.stack([loss.detach() / self.world, mlm_nll.detach(), mlm_weight.detach(), mlm_correct.detach(),
                            nsp_nll.detach(), nsp_correct.detach(), examples])

    def train(self) -> dict:
        o = self.options
        self.out.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            self._check_run_settings()
            self.config.to_json(self.out / "bert_config.json")
        start = self.restore()
        end = o.num_train_steps if not o.stop_after_steps else min(o.num_train_steps, o.stop_after_steps)
        self.log(f"pretrain (torch): {self.kind} x{self.world} ranks, {self.mode} mode, "
                 f"{self.config.num_hidden_layers} layers x {self.config.hidden_size}, "
                 f"{'bf16' if self.bf16 else 'fp32'}{', compiled' if o.compile else ''}, adamw, "
                 f"batch {o.train_batch_size}, steps {start} -> {end} of {o.num_train_steps}")
        batches = self.batches(start)
        writer = EventWriter(self.out / "tensorboard") if self.rank == 0 else None
        self.model.train()
        step, last = start, {}
        metrics_file = open(self.out / "metrics.jsonl", "a", encoding="utf-8") if self.rank == 0 else None
        try:
            while step < end:
                steps = min(o.steps_per_loop, end - step)
                if o.save_checkpoints_steps:
                    steps = min(steps, o.save_checkpoints_steps - step % o.save_checkpoints_steps)
                started = time.perf_counter()
                sums = torch.zeros(len(SUMS), device=self.device)
                for _ in range(steps):
                    sums += self.train_step(next(batches))
                if self.world > 1:
                    torch.distributed.all_reduce(sums)
                    sums[0] /= self.world
                sums = sums.cpu().numpy()
                seconds = time.perf_counter() - started
                step += steps
                last = {"step": step, **summarize(sums, steps), "learning_rate": float(self.scheduler.get_last_lr()[0]),
                        "examples_per_second": float(sums[-1]) / max(seconds, 1e-9)}
                if self.mode != "bert":
                    last.pop("nsp_loss"), last.pop("nsp_accuracy")
                self.log(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in last.items()))
                if metrics_file:
                    metrics_file.write(json.dumps(last) + "\n")
                    metrics_file.flush()
                    writer.scalars(step, {k: v for k, v in last.items() if k not in ("step", "examples")})
                if (o.save_checkpoints_steps and step % o.save_checkpoints_steps == 0) or step == end:
                    self.save(step)
        finally:
            if metrics_file:
                metrics_file.close()
                writer.close()
        if o.export and step >= o.num_train_steps and self.rank == 0:
            from pipeline.pretrain_torch.export import export_all

            lowercase = bool(self.manifest.get("settings", {}).get("lowercase", True))
            for path in export_all(self.model, self.config, self.out / "export", o.vocab or self.manifest.get("vocab"),
                                   lowercase=lowercase, log=self.log):
                self.log(f"exported {path}")
        return last


def train(options: TorchTrainOptions, log=print) -> dict:
    if "tensorflow" in sys.modules:
        raise RuntimeError("TensorFlow is imported in this process: the torch runner must run without it")
    return Trainer(options, log).train()
