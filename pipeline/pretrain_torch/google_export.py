"""``python -m pipeline.pretrain_torch.google_export HF_DIR OUT_DIR [VOCAB]``: a Hugging Face BERT directory
(``model.safetensors`` + ``config.json``) -> google-research/bert's ``bert_model.ckpt`` in OUT_DIR.

Runs in its own process because it imports TensorFlow (the torch runner never does). Weights absent from
the directory (the pooler and NSP head of a ``BertForMaskedLM``) are written freshly initialised as the
TensorFlow runner's untrained ones (normal(0.02) kernels, zero biases), and said so on stderr. Exit 3:
no TensorFlow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return 3
    import numpy as np

    from pipeline.pretrain.config import BertConfig
    from pipeline.pretrain.export import export_google, hf_names, read_safetensors
    from pipeline.pretrain.model import weight_shapes

    hf_dir, out = Path(argv[0]), Path(argv[1])
    values = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    config = BertConfig.from_dict(values)
    tensors = read_safetensors(hf_dir / "model.safetensors")
    shapes = {name: shape for name, shape, _ in weight_shapes(config)}
    rng = np.random.default_rng(0)
    weights, fresh = {}, []
    for hf, name, transpose in hf_names(config):
        if hf not in tensors and hf == "cls.predictions.bias" and "cls.predictions.decoder.bias" in tensors:
            hf = "cls.predictions.decoder.bias"
        if hf in tensors:
            value = np.asarray(tensors[hf], np.float32)
            weights[name] = value.T if transpose else value
        else:
            shape = tuple(shapes[name])
            weights[name] = (rng.normal(0, config.initializer_range, shape).astype(np.float32)
                             if name.endswith(("kernel", "output_weights")) else np.zeros(shape, np.float32))
            fresh.append(name)
        if tuple(weights[name].shape) != tuple(shapes[name]):
            raise ValueError(f"{hf}: shape {weights[name].shape}, google's {name} is {tuple(shapes[name])}")
    if fresh:
        print(f"google_export: not in {hf_dir} (written initialised): {', '.join(fresh)}", file=sys.stderr)
    for path in export_google(weights, config, out, argv[2] if len(argv) == 3 else None):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
