"""``bert_config.json`` in google-research/bert's format, presets, and the checks against a manifest.

No TensorFlow here: the CLI and the export code read configs without it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class BertConfig:
    """The keys of google-research/bert's ``bert_config.json`` (``modeling.BertConfig``)."""

    vocab_size: int = 21128
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                             f"{self.num_attention_heads}")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r}: expected one of {sorted(ACTIVATIONS)}")

    @classmethod
    def from_dict(cls, values: dict) -> "BertConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        # google's configs also carry e.g. directionality, pooler_* keys: ignored
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_json(cls, path: str | Path) -> "BertConfig":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    def parameters(self) -> int:
        """Trainable parameters (embeddings, encoder, pooler, MLM transform and bias, NSP)."""
        h, i, v = self.hidden_size, self.intermediate_size, self.vocab_size
        embeddings = (v + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h
        layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
        heads = (h * h + h) + (h * h + h) + 2 * h + v + (2 * h + 2)
        return embeddings + self.num_hidden_layers * layer + heads


# hidden_act values: google's modeling.py "gelu" is the tanh approximation; transformers' "gelu" is erf.
# We follow transformers' names so that the Hugging Face export computes exactly the same function.
ACTIVATIONS = {"gelu", "gelu_new", "gelu_pytorch_tanh", "relu"}

PRESETS = {
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512),
    "mini": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "small": dict(hidden_size=512, num_hidden_layers=4, num_attention_heads=8, intermediate_size=2048),
    "medium": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, intermediate_size=2048),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}


def preset(name: str, vocab_size: int = 21128, **overrides) -> BertConfig:
    """A preset (the sizes of google-research/bert's BERT-Tiny ... BERT-Large) for this vocab size."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
    return BertConfig(vocab_size=vocab_size, **{**PRESETS[name], **overrides})


def check_against_manifest(config: BertConfig, manifest: dict) -> None:
    """Raise ValueError when the model cannot read these shards (google's README: a wrong vocab_size gives NaNs)."""
    if config.vocab_size < manifest["vocab_size"]:
        raise ValueError(f"bert_config vocab_size {config.vocab_size} < the shards' vocab size "
                         f"{manifest['vocab_size']}")
    if config.max_position_embeddings < manifest["max_seq_length"]:
        raise ValueError(f"bert_config max_position_embeddings {config.max_position_embeddings} < the shards' "
                         f"max_seq_length {manifest['max_seq_length']}")
