"""``wwm pretrain``: flags (google-research/bert's run_pretraining.py names where they exist) and the entry.

Importing this module does not import TensorFlow; :func:`run` does.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from pipeline.pretrain.config import PRESETS


class PretrainInputError(ValueError):
    """A missing or unusable input of ``wwm pretrain`` (answered with one line and exit 2)."""


class DefaultsShown(argparse.HelpFormatter):
    """Every option's default in ``--help`` (those with no value, None or "", say what empty means)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.option_strings and action.default not in (None, "", argparse.SUPPRESS) \
                and "%(default)" not in text and not isinstance(action.default, bool):
            text += " (default: %(default)s)"
        return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = DefaultsShown    # every default shown in --help
    p.add_argument("shards", metavar="SHARDS", help="directory with part-*.tfrecord and manifest.json "
                   "(OUTPUT/shards); sequence length, predictions per sequence and vocab size come from the manifest")
    p.add_argument("--output_dir", "--output-dir", required=True, metavar="DIR",
                   help="checkpoints, metrics.jsonl, tensorboard/ and export/ (resumes from DIR/checkpoints)")
    p.add_argument("--bert_config_file", metavar="FILE", default="", help="bert_config.json (empty: --preset)")
    p.add_argument("--preset", choices=list(PRESETS), default="base", help="model size when no --bert_config_file")
    p.add_argument("--mode", choices=["bert", "roberta"], default="",
                   help="bert: MLM + NSP; roberta: MLM only (empty: the shards' mode)")
    p.add_argument("--train_batch_size", type=int, default=32, help="global batch size")
    p.add_argument("--num_train_steps", type=int, default=100_000, help="training steps in all")
    p.add_argument("--num_warmup_steps", type=int, default=-1,
                   help="linear warm-up steps (-1: 10%% of --num_train_steps, at most 10,000; a warm-up as long as "
                        "the run is warned about)")
    p.add_argument("--learning_rate", type=float, default=1e-4, help="peak learning rate")
    p.add_argument("--optimizer", choices=["adamw", "lamb"], default="adamw", help="optimizer")
    p.add_argument("--weight_decay", type=float, default=0.01, help="decoupled weight decay")
    p.add_argument("--clip_norm", type=float, default=1.0, help="global gradient norm clip (0: none)")
    p.add_argument("--steps_per_loop", "--iterations_per_loop", type=int, default=1000,
                   help="training steps per tf.function call (and per log line)")
    p.add_argument("--save_checkpoints_steps", type=int, default=1000, help="checkpoint every N steps")
    p.add_argument("--keep_checkpoint_max", type=int, default=5, help="checkpoints kept")
    p.add_argument("--seed", type=int, default=12345, help="data order, dynamic masks, dropout, initialisation")
    p.add_argument("--tpu", default="", metavar="NAME|local", help="train on this TPU (empty: GPUs, else CPU)")
    p.add_argument("--cpu_replicas", type=int, default=0, help="MirroredStrategy over this many logical CPUs")
    p.add_argument("--mixed_precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="auto: bf16 on TPU/GPU, fp32 on CPU")
    p.add_argument("--jit_compile", choices=["auto", "on", "off"], default="auto",
                   help="XLA-compile forward and backward (auto: on GPU; TPU always compiles)")
    p.add_argument("--init_checkpoint", default="", metavar="CKPT",
                   help="start from a google-format bert_model.ckpt or one of our checkpoints")
    p.add_argument("--vocab", default="", metavar="FILE", help="vocab.txt when the manifest's path is not here")
    p.add_argument("--shuffle_buffer", type=int, default=10_000, help="instances in the shuffle buffer")
    p.add_argument("--cycle_length", type=int, default=8, help="shard files read at once")
    p.add_argument("--stop_after_steps", type=int, default=0, help="stop (checkpointed) at this step")
    p.add_argument("--no_export", action="store_true", help="do not export the release layouts at the end")
    p.add_argument("--framework", choices=["tf", "torch"], default="tf",
                   help="tf: the TensorFlow runner (TPU, GPU, CPU); torch: PyTorch + transformers, no TensorFlow "
                        "(GPUs, DDP under torchrun; pip install -e '.[torch]')")
    from pipeline.pretrain_torch.cli import add_arguments as add_torch_arguments
    add_torch_arguments(p)


def _exists(path: str) -> bool:
    if "://" not in path:
        return Path(path).exists()
    import tensorflow as tf

    return tf.io.gfile.exists(path)


def check_inputs(args: argparse.Namespace) -> None:
    """Raise :class:`PretrainInputError` naming the first missing input (before any training starts)."""
    shards = str(args.shards).rstrip("/")
    if not _exists(shards):
        raise PretrainInputError(f"shards directory {args.shards} does not exist (wwm run or wwm shards writes "
                                 f"OUTPUT/shards)")
    if not _exists(f"{shards}/manifest.json"):
        raise PretrainInputError(f"{args.shards} has no manifest.json: not a shards directory (OUTPUT/shards)")
    for flag in ("bert_config_file", "vocab"):
        value = getattr(args, flag, "")
        if value and not _exists(value):
            raise PretrainInputError(f"--{flag} {value} does not exist")
    init = getattr(args, "init_checkpoint", "")
    if init and not (_exists(init) or _exists(init + ".index")):
        raise PretrainInputError(f"--init_checkpoint {init} does not exist (neither it nor {init}.index)")


def run(args: argparse.Namespace) -> int:
    import sys

    local = [v for v in (args.shards, args.bert_config_file, args.vocab, args.init_checkpoint) if v]
    if not any("://" in v for v in local):
        try:
            check_inputs(args)       # before TensorFlow's import (and its start-up lines)
        except PretrainInputError as exc:
            return _input_error(exc)
    if getattr(args, "framework", "tf") == "torch":
        from pipeline.pretrain_torch.cli import run as run_torch
        return run_torch(args)

    try:
        import tensorflow  # noqa: F401
    except ImportError:
        print("wwm pretrain needs TensorFlow: pip install -e '.[pretrain]' (on a Cloud TPU VM, create it with a "
              "tpu-vm-tf-* software version: TensorFlow for TPU comes with it)", file=sys.stderr)
        return 2
    import tensorflow as tf

    from pipeline.pretrain.train import Trainer, TrainOptions

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainOptions) if hasattr(args, f.name)}
    values["export"] = not args.no_export
    unusable = (PretrainInputError, FileNotFoundError, tf.errors.NotFoundError, tf.errors.PermissionDeniedError)
    try:
        check_inputs(args)
        # what the set-up rejects (a manifest or bert_config the model cannot read, a batch the replicas
        # cannot split) is an input error too; a ValueError once training runs is a fault with its traceback
        trainer = Trainer(TrainOptions(**values))
    except unusable + (ValueError, KeyError) as exc:
        return _input_error(exc)
    try:
        trainer.train()
    except unusable as exc:
        return _input_error(exc)
    return 0


def _input_error(exc: BaseException) -> int:
    import sys

    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if isinstance(exc, KeyError):
        message = f"the shards' manifest.json has no {exc}: not a manifest this version wrote"
    print(f"wwm pretrain: {message.strip().splitlines()[0]}", file=sys.stderr)
    return 2
