"""Release layouts and ``--init_checkpoint``.

- google-research/bert's: ``bert_model.ckpt.{index,data-00000-of-00001}`` whose variables carry exactly
  google's names (written with ``tf.raw_ops.SaveV2``, no object graph), ``bert_config.json`` and
  ``vocab.txt``, as Chinese-BERT-wwm ships its models.
- Hugging Face's: ``config.json`` (``BertForPreTraining``) and ``model.safetensors`` with transformers' BERT
  parameter names, written here from NumPy (safetensors is an 8-byte little-endian header length, a JSON
  header, then the raw little-endian tensors), so no torch is needed; plus ``vocab.txt``,
  ``tokenizer_config.json`` (``model_max_length`` = the model's ``max_position_embeddings``, so
  ``truncation=True`` cuts an over-long input to what the model can take; ``do_lower_case`` as the shards
  were made) and ``special_tokens_map.json``.
- :func:`init_from_checkpoint` reads a google-format checkpoint (Google's Chinese BERT, or our export) or one
  of our training checkpoints (``tf.train.Checkpoint``), and copies every weight by name; a position table
  shorter than the model's (phase 2 at 512 from a 128-position phase 1) fills the first rows and says so.

Note on ``hidden_act``: we follow transformers' names ("gelu" = erf GELU). google-research/bert's TF1 code
computes its "gelu" with the tanh approximation, so a model exported with "gelu" and run by google's code
differs slightly (about 1e-3 in activations); "gelu_new" is the tanh form in both.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import tensorflow as tf

from pipeline.pretrain.config import BertConfig
from pipeline.pretrain.model import BertPretrainer, weight_shapes

CKPT_NAME = "bert_model.ckpt"
OBJECT_PREFIX, OBJECT_SUFFIX = "model/weights/", "/.ATTRIBUTES/VARIABLE_VALUE"


# ---- google-research/bert format
def save_google_checkpoint(weights: dict[str, np.ndarray], prefix: str | Path) -> str:
    """Write ``weights`` under their names as a V2 checkpoint bundle at ``prefix``."""
    prefix = str(prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    names = list(weights)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(weights[n]) for n in names])
    (Path(prefix).parent / "checkpoint").write_text(
        f'model_checkpoint_path: "{Path(prefix).name}"\nall_model_checkpoint_paths: "{Path(prefix).name}"\n',
        encoding="utf-8")
    return prefix


def _unescape(key: str) -> str:
    """tf.train.Checkpoint escapes '/' as '.S' and '.' as '..' in dict keys."""
    out, i = [], 0
    while i < len(key):
        if key[i] == "." and i + 1 < len(key):
            out.append("/" if key[i + 1] == "S" else key[i + 1])
            i += 2
        else:
            out.append(key[i])
            i += 1
    return "".join(out)


def checkpoint_path(path: str | Path) -> str:
    """A checkpoint prefix from a prefix, a directory holding a ``checkpoint`` file, or an export directory."""
    path = str(path)
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        for candidate in (f"{path}/{CKPT_NAME}", f"{path}/checkpoints"):
            if tf.io.gfile.exists(candidate + ".index"):
                return candidate
            if tf.io.gfile.isdir(candidate) and tf.train.latest_checkpoint(candidate):
                return tf.train.latest_checkpoint(candidate)
        raise FileNotFoundError(f"no checkpoint in {path}")
    return path


def read_checkpoint_weights(path: str | Path) -> dict[str, np.ndarray]:
    """google-named weights from a google-format checkpoint or one of our training checkpoints."""
    reader = tf.train.load_checkpoint(checkpoint_path(path))
    shapes = reader.get_variable_to_shape_map()
    if any(k.startswith(OBJECT_PREFIX) for k in shapes):
        return {_unescape(k[len(OBJECT_PREFIX):-len(OBJECT_SUFFIX)]): reader.get_tensor(k)
                for k in shapes if k.startswith(OBJECT_PREFIX) and k.endswith(OBJECT_SUFFIX)}
    return {k: reader.get_tensor(k) for k in shapes
            if k.startswith(("bert/", "cls/")) and not k.endswith(("adam_m", "adam_v"))}


def init_from_checkpoint(model: BertPretrainer, path: str | Path) -> list[str]:
    """Copy weights by name into ``model``; returns what it did, line by line."""
    loaded = read_checkpoint_weights(path)
    lines, missing = [], []
    for name, variable in model.weights.items():
        if name not in loaded:
            missing.append(name)
            continue
        value, shape = loaded[name], tuple(variable.shape)
        if value.shape == shape:
            variable.assign(value)
        elif name == "bert/embeddings/position_embeddings" and value.shape[1:] == shape[1:]:
            rows = min(value.shape[0], shape[0])
            variable.assign(tf.concat([value[:rows], variable[rows:]], axis=0))
            lines.append(f"init: position embeddings: {rows} rows from the checkpoint's {value.shape[0]}, "
                         f"{shape[0] - rows} rows left at their initial values")
        else:
            raise ValueError(f"init checkpoint {path}: {name} has shape {value.shape}, the model {shape}")
    lines.insert(0, f"init: {len(model.weights) - len(missing)} of {len(model.weights)} weights from {path}")
    if missing:
        lines.append(f"init: not in the checkpoint (left initialised): {', '.join(missing)}")
    return lines


# ---- Hugging Face format
def hf_names(config: BertConfig) -> list[tuple[str, str, bool]]:
    """(transformers name, google name, transpose) for BertForPreTraining."""
    out = []
    for name, _, _ in weight_shapes(config):
        hf = name.replace("bert/encoder/layer_", "bert/encoder/layer/")
        hf = hf.replace("/", ".").replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta",
                                                                                          "LayerNorm.bias")
        transpose = name.endswith("/kernel")
        if transpose:
            hf = hf[:-len("kernel")] + "weight"
        elif name.endswith("_embeddings"):
            hf += ".weight"
        elif name == "cls/predictions/output_bias":
            hf = "cls.predictions.bias"
        elif name == "cls/seq_relationship/output_weights":
            hf = "cls.seq_relationship.weight"
        elif name == "cls/seq_relationship/output_bias":
            hf = "cls.seq_relationship.bias"
        out.append((hf, name, transpose))
    return out


def write_safetensors(tensors: dict[str, np.ndarray], path: str | Path, metadata: dict | None = None) -> Path:
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array, dtype=np.dtype("<f4"))
        blob = array.tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    header["__metadata__"] = {"format": "pt", **(metadata or {})}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    path = Path(path)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)
    return path


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    data = Path(path).read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    header.pop("__metadata__", None)
    dtypes = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}
    base = 8 + size
    return {name: np.frombuffer(data[base + h["data_offsets"][0]:base + h["data_offsets"][1]],
                                dtype=dtypes[h["dtype"]]).reshape(h["shape"]) for name, h in header.items()}


def hf_config(config: BertConfig) -> dict:
    # "dtype", not "torch_dtype": transformers 5 renamed the key (4.56+ read both; older 4.x keep an unknown
    # key as a plain attribute, and the safetensors' own F32 sets the weights' type)
    return {"architectures": ["BertForPreTraining"], "model_type": "bert", **config.to_dict(),
            "layer_norm_eps": 1e-12, "pad_token_id": 0, "position_embedding_type": "absolute",
            "tie_word_embeddings": True, "dtype": "float32"}


SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                  "mask_token": "[MASK]"}


def hf_tokenizer_config(config: BertConfig, do_lower_case: bool = True) -> dict:
    """``tokenizer_config.json`` for ``BertTokenizer``/``BertTokenizerFast``: without it transformers takes
    ``model_max_length`` as 1e30 and ``truncation=True`` truncates nothing."""
    return {"tokenizer_class": "BertTokenizer", "do_lower_case": do_lower_case,
            "strip_accents": None, "tokenize_chinese_chars": True,
            "model_max_length": config.max_position_embeddings, "clean_up_tokenization_spaces": True,
            **SPECIAL_TOKENS}


def export_hf(weights: dict[str, np.ndarray], config: BertConfig, directory: str | Path,
              vocab: str | Path | None = None, do_lower_case: bool = True) -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {hf: (weights[name].T if transpose else weights[name]) for hf, name, transpose in hf_names(config)}
    paths = [write_safetensors(tensors, directory / "model.safetensors")]
    for name, body in (("config.json", hf_config(config)),
                       ("tokenizer_config.json", hf_tokenizer_config(config, do_lower_case)),
                       ("special_tokens_map.json", SPECIAL_TOKENS)):
        (directory / name).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        paths.append(directory / name)
    if vocab and Path(vocab).exists():
        paths.append(Path(shutil.copyfile(vocab, directory / "vocab.txt")))
    return paths


def export_google(weights: dict[str, np.ndarray], config: BertConfig, directory: str | Path,
                  vocab: str | Path | None = None) -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    prefix = save_google_checkpoint(weights, directory / CKPT_NAME)
    paths = [Path(prefix + ".index"), config.to_json(directory / "bert_config.json")]
    if vocab and Path(vocab).exists():
        paths.append(Path(shutil.copyfile(vocab, directory / "vocab.txt")))
    return paths


def export_all(model: BertPretrainer, directory: str | Path, vocab: str | Path | None = None,
               do_lower_case: bool = True) -> list[Path]:
    """google layout in ``directory``, Hugging Face layout in ``directory/hf``."""
    weights = model.numpy_weights()
    return (export_google(weights, model.config, directory, vocab)
            + export_hf(weights, model.config, Path(directory) / "hf", vocab, do_lower_case))
