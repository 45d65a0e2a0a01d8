"""The PyTorch runner's release layouts, as the TensorFlow runner's (``pipeline/pretrain/export.py``):

- ``export/hf``: transformers' ``save_pretrained`` (``config.json``, ``model.safetensors``) and the tokenizer
  (``vocab.txt``, ``tokenizer_config.json``, ``special_tokens_map.json``, ``tokenizer.json``);
- ``export/``: google-research/bert's ``bert_model.ckpt`` + ``bert_config.json`` + ``vocab.txt``, written by
  ``python -m pipeline.pretrain_torch.google_export`` in a separate process (TensorFlow writes the
  checkpoint bundle; it is never imported in the torch process). Without TensorFlow installed the google
  checkpoint is skipped, and said so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.pretrain.config import BertConfig


def export_hf(model, directory: str | Path, vocab: str | None, lowercase: bool = True) -> list[Path]:
    from transformers import BertTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    paths = [directory / "config.json", directory / "model.safetensors"]
    if vocab and Path(vocab).exists():
        tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=lowercase, tokenize_chinese_chars=True)
        paths += [Path(p) for p in tokenizer.save_pretrained(directory)]
    return paths


def export_google(hf_dir: str | Path, config: BertConfig, directory: str | Path, vocab: str | None,
                  log=print) -> list[Path]:
    """Run ``google_export`` in a child process; [] (and a line saying why) when TensorFlow is missing."""
    directory = Path(directory)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                         os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "pipeline.pretrain_torch.google_export", str(hf_dir), str(directory)]
    if vocab:
        command.append(str(vocab))
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode == 3:
        log("export: no TensorFlow here, google-format bert_model.ckpt not written (pip install -e '.[pretrain]' "
            f"and run: {' '.join(command[1:])})")
        return []
    if done.returncode:
        raise RuntimeError(f"google checkpoint export failed ({' '.join(command)}):\n{done.stderr[-4000:]}")
    return [Path(line) for line in done.stdout.splitlines() if line.strip()]


def export_all(model, config: BertConfig, directory: str | Path, vocab: str | None, lowercase: bool = True,
               log=print) -> list[Path]:
    directory = Path(directory)
    paths = export_hf(model, directory / "hf", vocab, lowercase)
    paths += export_google(directory / "hf", config, directory, vocab, log=log)
    if vocab and Path(vocab).exists() and not (directory / "vocab.txt").exists():
        paths.append(Path(shutil.copyfile(vocab, directory / "vocab.txt")))
    return paths
