"""The Hugging Face export as a user loads it: tokenizer files, truncation to the model's length, config keys.

The model is exported here with TensorFlow; transformers (with torch) loads it in a separate process, as in
tests/test_pretrain.py (TensorFlow and torch never share one process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

tf = pytest.importorskip("tensorflow")

from pipeline.pretrain.config import preset  # noqa: E402
from pipeline.pretrain.export import export_all  # noqa: E402
from pipeline.pretrain.model import BertPretrainer  # noqa: E402

NO_TF = {**os.environ, "USE_TF": "0", "TRANSFORMERS_NO_TF": "1"}
CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 1000)]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def torch_python() -> str | None:
    for candidate in (os.environ.get("WWM_TORCH_PYTHON"), sys.executable):
        if candidate and Path(candidate).exists():
            check = subprocess.run([candidate, "-c", "import torch, transformers"], capture_output=True,
                                   timeout=300, env=NO_TF)
            if check.returncode == 0:
                return candidate
    return None


def export(tmp_path: Path, do_lower_case: bool) -> Path:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(SPECIALS + CJK + list("abcdefghijklmnopqrstuvwxyz") + ["A"]) + "\n",
                     encoding="utf-8")
    config = preset("tiny", vocab_size=len(SPECIALS) + len(CJK) + 27)        # max_position_embeddings 512
    export_all(BertPretrainer(config, seed=3), tmp_path / "export", vocab=vocab, do_lower_case=do_lower_case)
    return tmp_path / "export" / "hf"


def test_export_writes_the_tokenizer_files_and_the_current_config_keys(tmp_path):
    folder = export(tmp_path, do_lower_case=False)
    tokenizer = json.loads((folder / "tokenizer_config.json").read_text())
    assert tokenizer["model_max_length"] == 512 and tokenizer["do_lower_case"] is False
    assert {tokenizer[k] for k in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")} == {
        "[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"}
    special = json.loads((folder / "special_tokens_map.json").read_text())
    assert special == {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                       "mask_token": "[MASK]"}
    config = json.loads((folder / "config.json").read_text())
    assert config["dtype"] == "float32" and "torch_dtype" not in config     # transformers 5 renamed the key


LOAD = r"""
import io, json, logging, sys, warnings
import torch, transformers
from transformers import AutoConfig, BertForMaskedLM, BertTokenizer, BertTokenizerFast
folder = sys.argv[1]
log = io.StringIO()
transformers.logging.set_verbosity_warning()
transformers.logging.add_handler(logging.StreamHandler(log))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    fast = BertTokenizerFast.from_pretrained(folder)
    slow = BertTokenizer.from_pretrained(folder)
    config = AutoConfig.from_pretrained(folder)
    model = BertForMaskedLM.from_pretrained(folder).eval()
text = "".join(chr(0x4E00 + i % 1000) for i in range(600))
ids = fast(text, truncation=True, return_tensors="pt")
with torch.no_grad():
    logits = model(**ids).logits
print(json.dumps({
    "fast_ids": int(ids["input_ids"].shape[1]), "slow_ids": len(slow(text, truncation=True)["input_ids"]),
    "max_length": fast.model_max_length, "logits": list(logits.shape), "finite": bool(torch.isfinite(logits).all()),
    "dtype": str(config.dtype) if hasattr(config, "dtype") else None, "lower": fast("A")["input_ids"],
    "version": transformers.__version__, "log": log.getvalue(),
    "warnings": [str(w.message) for w in caught if "dtype" in str(w.message)],
    "tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_transformers_truncates_a_600_character_input_to_512_and_the_model_runs(tmp_path, do_lower_case):
    folder = export(tmp_path, do_lower_case)
    python = torch_python()
    if python is None:
        pytest.skip("no interpreter with torch and transformers")
    script = tmp_path / "load.py"
    script.write_text(LOAD)
    done = subprocess.run([python, str(script), str(folder)], capture_output=True, text=True, timeout=600,
                          env=NO_TF)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["max_length"] == 512
    assert result["fast_ids"] == 512 and result["slow_ids"] == 512
    assert result["logits"] == [1, 512, len(SPECIALS) + len(CJK) + 27] and result["finite"]
    assert not result["tensorflow"]
    # no deprecation of the config's dtype key, in the log or as a warning
    assert "deprecated" not in result["log"] and not result["warnings"], result
    if result["version"] >= "4.56":      # the first 4.x that reads "dtype"
        assert result["dtype"] == "torch.float32"
    # do_lower_case as the shards were made: "A" is "a" (id 5 + 1000) when lowercased, else the "A" entry
    a_id = len(SPECIALS) + len(CJK)
    assert result["lower"] == [2, a_id if do_lower_case else a_id + 26, 3]
