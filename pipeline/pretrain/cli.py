"""``wwm pretrain``: flags (google-research/bert's run_pretraining.py names where they exist) and the entry.

Importing this module does not import TensorFlow; :func:`run` does.
"""

from __future__ import annotations

import argparse
import dataclasses

from pipeline.pretrain.config import PRESETS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shards", metavar="SHARDS", help="directory with part-*.tfrecord and manifest.json "
                   "(OUTPUT/shards); sequence length, predictions per sequence and vocab size come from the manifest")
    p.add_argument("--output_dir", "--output-dir", required=True, metavar="DIR",
                   help="checkpoints, metrics.jsonl, tensorboard/ and export/ (resumes from DIR/checkpoints)")
    p.add_argument("--bert_config_file", metavar="FILE", default="", help="bert_config.json (default: --preset)")
    p.add_argument("--preset", choices=list(PRESETS), default="base", help="model size when no --bert_config_file")
    p.add_argument("--mode", choices=["bert", "roberta"], default="",
                   help="bert: MLM + NSP; roberta: MLM only (default: the shards' mode)")
    p.add_argument("--train_batch_size", type=int, default=32, help="global batch size")
    p.add_argument("--num_train_steps", type=int, default=100_000)
    p.add_argument("--num_warmup_steps", type=int, default=10_000)
    p.add_argument("--learning_rate", type=float, default=1e-4, help="peak learning rate")
    p.add_argument("--optimizer", choices=["adamw", "lamb"], default="adamw")
    p.add_argument("--weight_decay", type=float, default=0.01)
    p.add_argument("--clip_norm", type=float, default=1.0, help="global gradient norm clip (0: none)")
    p.add_argument("--steps_per_loop", "--iterations_per_loop", type=int, default=1000,
                   help="training steps per tf.function call (and per log line)")
    p.add_argument("--save_checkpoints_steps", type=int, default=1000)
    p.add_argument("--keep_checkpoint_max", type=int, default=5)
    p.add_argument("--seed", type=int, default=12345, help="data order, dynamic masks, dropout, initialisation")
    p.add_argument("--tpu", default="", metavar="NAME|local", help="train on this TPU (default: GPUs, else CPU)")
    p.add_argument("--cpu_replicas", type=int, default=0, help="MirroredStrategy over this many logical CPUs")
    p.add_argument("--mixed_precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="auto: bf16 on TPU/GPU, fp32 on CPU")
    p.add_argument("--jit_compile", choices=["auto", "on", "off"], default="auto",
                   help="XLA-compile forward and backward (auto: on GPU; TPU always compiles)")
    p.add_argument("--init_checkpoint", default="", metavar="CKPT",
                   help="start from a google-format bert_model.ckpt or one of our checkpoints")
    p.add_argument("--vocab", default="", metavar="FILE", help="vocab.txt when the manifest's path is not here")
    p.add_argument("--shuffle_buffer", type=int, default=10_000)
    p.add_argument("--cycle_length", type=int, default=8, help="shard files read at once")
    p.add_argument("--stop_after_steps", type=int, default=0, help="stop (checkpointed) at this step")
    p.add_argument("--no_export", action="store_true", help="do not export the release layouts at the end")
    p.add_argument("--framework", choices=["tf", "torch"], default="tf",
                   help="tf: the TensorFlow runner (TPU, GPU, CPU); torch: PyTorch + transformers, no TensorFlow "
                        "(GPUs, DDP under torchrun; pip install -e '.[torch]')")
    from pipeline.pretrain_torch.cli import add_arguments as add_torch_arguments
    add_torch_arguments(p)


def run(args: argparse.Namespace) -> int:
    import sys

    if getattr(args, "framework", "tf") == "torch":
        from pipeline.pretrain_torch.cli import run as run_torch
        return run_torch(args)

    try:
        import tensorflow  # noqa: F401
    except ImportError:
        print("wwm pretrain needs TensorFlow: pip install -e '.[pretrain]' (tensorflow, or tensorflow-tpu on a "
              "TPU VM)", file=sys.stderr)
        return 2
    from pipeline.pretrain.train import TrainOptions, train

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainOptions) if hasattr(args, f.name)}
    values["export"] = not args.no_export
    train(TrainOptions(**values))
    return 0
