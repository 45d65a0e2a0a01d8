"""The flags only ``--framework torch`` reads, and its entry (imports torch, never TensorFlow)."""

from __future__ import annotations

import argparse
import dataclasses


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("--framework torch")
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="torch: the device (auto: cuda when visible; under torchrun, cuda:LOCAL_RANK)")
    g.add_argument("--compile", action="store_true", help="torch: torch.compile the model")
    g.add_argument("--num_workers", "--num-workers", type=int, default=2,
                   help="torch: dataloader worker processes per rank (decode and mask)")


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    os.environ.setdefault("USE_TF", "0")     # before transformers is first imported: never TensorFlow here
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        print("wwm pretrain --framework torch needs PyTorch and transformers: pip install -e '.[torch]'",
              file=sys.stderr)
        return 2
    from pipeline.pretrain_torch.train import TorchTrainOptions, train

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TorchTrainOptions) if hasattr(args, f.name)}
    values["export"] = not args.no_export
    if getattr(args, "mixed_precision", "auto") not in ("auto", "bf16", "fp32"):
        values["mixed_precision"] = "auto"
    train(TorchTrainOptions(**values))
    return 0
