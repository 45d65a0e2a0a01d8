"""A random-weight neural LTP model of the ``tiny`` shape, built here, for offline tests and benchmarks.

No neural LTP model can be downloaded on the project's machines (no model hub), so
:func:`build_random_model` writes a directory that ``ltp.LTP(path)`` (ltp 4.2.x)
loads from disk alone, and that :class:`pipeline.segment.segmenters.LtpNeuralSegmenter`
accepts.  THE WEIGHTS ARE RANDOM (seeded): the words it finds are meaningless.
Only the plumbing (loading, tokenizing, batching, cutting long chunks, joining
words back) and the throughput (same shape, so the same arithmetic per token as
the real model) are real.

The directory holds:

- ``config.json``: what ``ltp`` reads: ``"nerual": true`` (ltp's own spelling;
  ``ltp.LTP`` indexes this key and fails without it), ``"model"``: the
  ``ltp_core`` module tree, instantiated by ``ltp_core.models.utils.instantiate``
  (``_ltp_target_`` keys): an ``LTPModule`` whose backbone is
  ``ltp_core.models.utils.load_transformers`` over an ELECTRA config (the shape of
  the ELECTRA-small discriminator LTP ``tiny`` is built on: embeddings 128,
  hidden 256, 12 layers, 4 heads, intermediate 1024, 512 positions; the vocabulary
  is this module's own, so its size differs from the real 21,128), with one task:
  ``cws`` (processor ``TokenOnly``: the tokens without [CLS]/[SEP]; head
  ``MLPTokenClassifier`` 256 -> 2, no CRF), and ``"vocabs": {"cws": ["B-W", "I-W"]}``
  (the label set is what tells ``ltp`` which tasks the model supports);
- ``pytorch_model.bin``: the module tree's ``state_dict`` (``torch.save``; what
  ``ltp`` loads with ``torch.load``), all weights drawn from ``torch.manual_seed(seed)``;
- ``vocab.txt``, ``tokenizer_config.json``, ``special_tokens_map.json``: a WordPiece
  (BERT-style) vocabulary generated here, not copied: [PAD] [UNK] [CLS] [SEP] [MASK],
  every CJK Unified Ideograph U+4E00-U+9FFF, CJK symbols and punctuation
  U+3000-U+303F, the full-width forms U+FF01-U+FF5E, printable ASCII, and
  ``##`` continuations of ASCII letters and digits (so Latin words split into
  pieces the way the real Chinese vocabularies split them); ``transformers``
  builds the fast tokenizer ``ltp`` needs (it reads token offsets) from these files.

torch, transformers and ltp are imported inside :func:`build_random_model` only:
this module imports without them.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_SHAPE = {
    "embedding_size": 128,
    "hidden_size": 256,
    "num_hidden_layers": 12,
    "num_attention_heads": 4,
    "intermediate_size": 1024,
    "max_position_embeddings": 512,
}
CWS_LABELS = ["B-W", "I-W"]
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
NOTE = ("random weights (seeded), built by pipeline.testing.tiny_neural: the segmentation is meaningless; "
        "only loading, batching and throughput are real")


def vocabulary() -> list[str]:
    """The WordPiece vocabulary, generated: special tokens, CJK ideographs and punctuation, ASCII."""
    tokens = list(SPECIAL_TOKENS)
    tokens += [chr(c) for c in range(0x4E00, 0xA000)]            # CJK Unified Ideographs
    tokens += [chr(c) for c in range(0x3001, 0x3040)]            # CJK symbols and punctuation (not U+3000, a space)
    tokens += [chr(c) for c in range(0xFF01, 0xFF5F)]            # full-width ASCII forms
    tokens += [chr(c) for c in range(0x21, 0x7F)]                # printable ASCII, no space
    tokens += ["##" + chr(c) for c in range(0x21, 0x7F) if chr(c).isalnum()]
    seen: set[str] = set()
    return [t for t in tokens if not (t in seen or seen.add(t))]


def model_config(vocab_size: int) -> dict:
    """The ``config.json`` that ``ltp.LTP`` reads (see the module docstring)."""
    hidden = TINY_SHAPE["hidden_size"]
    return {
        "nerual": True,                      # sic: ltp's spelling, read as config["nerual"]
        "note": NOTE,
        "shape": "tiny (ELECTRA-small discriminator shape)",
        "model": {
            "_ltp_target_": "ltp_core.models.ltp_model.LTPModule",
            "backbone": {
                "_ltp_target_": "ltp_core.models.utils.load_transformers",
                "config": {
                    "model_type": "electra",
                    "vocab_size": vocab_size,
                    **TINY_SHAPE,
                    "type_vocab_size": 2,
                    "hidden_act": "gelu",
                    "hidden_dropout_prob": 0.1,
                    "attention_probs_dropout_prob": 0.1,
                    "initializer_range": 0.02,
                    "layer_norm_eps": 1e-12,
                    "pad_token_id": 0,
                },
            },
            "processor": {"cws": {"_ltp_target_": "ltp_core.models.processor.TokenOnly"}},
            "heads": {"cws": {"_ltp_target_": "ltp_core.models.components.token.MLPTokenClassifier",
                              "input_size": hidden, "num_labels": len(CWS_LABELS), "dropout": 0.1}},
        },
        "vocabs": {"cws": CWS_LABELS},
    }


def build_random_model(out_dir, seed: int = 0) -> Path:
    """Write a random-weight ``tiny``-shaped neural LTP model (cws only) into ``out_dir``; return its path.

    ``ltp.LTP(str(path))`` loads it with no network access.  Needs torch,
    transformers and ltp_core (the ``neural`` extra); same seed, same weights.
    """
    import torch
    from ltp_core.models.utils import instantiate

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary()
    config = model_config(len(vocab))
    (out / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    (out / "special_tokens_map.json").write_text(json.dumps(
        {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
         "mask_token": "[MASK]"}, indent=2) + "\n", encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "tokenize_chinese_chars": True,
         "strip_accents": None, "model_max_length": 512, "unk_token": "[UNK]", "sep_token": "[SEP]",
         "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}, indent=2) + "\n", encoding="utf-8")
    (out / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        module = instantiate(config["model"])       # transformers initialises every weight from the seed
    finally:
        torch.random.set_rng_state(state)
    weights = {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}
    torch.save(weights, out / "pytorch_model.bin")
    return out
