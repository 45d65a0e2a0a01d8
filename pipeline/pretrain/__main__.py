"""``python -m pipeline.pretrain SHARDS --output_dir DIR ...``: ``wwm pretrain`` without the rest of ``wwm``.

Imports only the runner (TensorFlow, NumPy, pyarrow and google-crc32c, as ``.[pretrain]`` lists them), not the
stages' engines, segmenters or tokenizers, so a TPU VM needs nothing else installed (see jobs/targets.py).
"""

from __future__ import annotations

import argparse
import sys

from pipeline.pretrain.cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.pretrain",
                                     description="Pretrain BERT (MLM + NSP) or RoBERTa-style (MLM) from the shards "
                                                 "(the same options as 'wwm pretrain').")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
