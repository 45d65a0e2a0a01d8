"""The neural LTP segmenter, end to end, on a random-weight ``tiny`` model built here (nothing downloaded).

Skipped when the interpreter running pytest has no torch or no ltp (the
optional ``neural`` extra).  torch is never imported into the pytest process
(other tests may import TensorFlow): building the model and segmenting both
run in child processes of the same interpreter, which report JSON in a file.
The weights are random, so only the plumbing is checked: that LTP loads the
directory offline, that the words of every sentence join back to it exactly,
and that long sentences are cut and still come back whole.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SENTENCES = [
    "",
    "北京大学的学生在图书馆里学习自然语言处理。",
    "iPhone 15 Pro 售价 7999 元 😀 还有 ABC-123 型号",      # Latin, digits, emoji, spaces
    "  两头有空格  \t中间也有  ",
    "他說：「今天天氣很好。」",
    ("无标点的长句子" * 172)[:1200],                          # 1,200 characters: longer than max_chars (500)
    "x",
]

SEGMENT_SCRIPT = r"""
import json, pickle, sys
import torch
from pipeline.config import SegmentOptions
from pipeline.counters import Counters
from pipeline.segment.segmenters import make_segmenter

model, sentences_file, out_file = sys.argv[1:4]
sentences = json.loads(open(sentences_file, encoding="utf-8").read())
seg = make_segmenter(SegmentOptions(model=model))
count = Counters()
words = seg.segment(sentences, count)
engine = seg._engine()
saved = torch.load(model + "/pytorch_model.bin", map_location="cpu")
loaded = engine.model.state_dict()
again = pickle.loads(pickle.dumps(seg))
result = {
    "class": type(seg).__name__,
    "describe": seg.describe(),
    "max_chars": seg.max_chars,
    "words": words,
    "counters": count.as_dict(),
    "weights_loaded": sorted(saved) == sorted(loaded) and all(torch.equal(saved[k], loaded[k]) for k in saved),
    "pickled_same": again.segment(sentences) == words,
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "torch", "ltp", "transformers")
                      and "." not in m),
}
open(out_file, "w", encoding="utf-8").write(json.dumps(result, ensure_ascii=False))
"""


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["HF_HUB_OFFLINE"] = "1"          # a hub request would be a bug: the model is a local directory
    env["TRANSFORMERS_OFFLINE"] = "1"
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def _run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"child failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done


@pytest.fixture(scope="module")
def neural_model(tmp_path_factory) -> Path:
    """A random-weight tiny LTP model, built in a child process; skips without torch or ltp."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("ltp") is None:
        pytest.skip("torch or ltp not installed (optional 'neural' extra)")
    probe = subprocess.run([sys.executable, "-c", "import torch, ltp, transformers; print(transformers.__version__)"],
                           env=_env(), capture_output=True, text=True, timeout=300)
    if probe.returncode != 0:
        pytest.skip(f"torch/ltp do not import here: {probe.stderr.strip().splitlines()[-1:]}")
    major = int(probe.stdout.strip().split(".")[0])
    assert major < 5, (f"transformers {probe.stdout.strip()} is installed: ltp 4.2.14 calls "
                       f"tokenizer.batch_encode_plus, which transformers 5 removed; install transformers<5")
    out = tmp_path_factory.mktemp("ltp-tiny-random")
    _run(["-c", f"from pipeline.testing.tiny_neural import build_random_model; build_random_model({str(out)!r})"])
    return out


@pytest.fixture(scope="module")
def segmented(neural_model, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("neural-run")
    sentences, result = work / "sentences.json", work / "result.json"
    sentences.write_text(json.dumps(SENTENCES, ensure_ascii=False), encoding="utf-8")
    _run(["-c", SEGMENT_SCRIPT, str(neural_model), str(sentences), str(result)])
    return json.loads(result.read_text(encoding="utf-8"))


def test_model_directory_holds_a_tiny_cws_model(neural_model):
    from pipeline.testing.tiny_neural import vocabulary

    names = {p.name for p in neural_model.iterdir()}
    assert {"config.json", "pytorch_model.bin", "vocab.txt", "tokenizer_config.json"} <= names
    config = json.loads((neural_model / "config.json").read_text(encoding="utf-8"))
    assert config["nerual"] is True and "random" in config["note"]
    backbone = config["model"]["backbone"]["config"]
    assert (backbone["hidden_size"], backbone["num_hidden_layers"], backbone["num_attention_heads"],
            backbone["intermediate_size"]) == (256, 12, 4, 1024)
    assert list(config["vocabs"]) == ["cws"] and list(config["model"]["heads"]) == ["cws"]
    vocab = (neural_model / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab == vocabulary() and backbone["vocab_size"] == len(vocab)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and "中" in vocab and "##a" in vocab


def test_ltp_loads_the_directory_and_its_weights(segmented):
    assert segmented["class"] == "LtpNeuralSegmenter"
    assert segmented["describe"]["segmenter"] == "ltp-neural"
    assert segmented["weights_loaded"], "LTP did not load pytorch_model.bin (ltp loads with strict=False)"
    assert "tensorflow" not in segmented["modules"]


def test_words_join_back_exactly(segmented):
    words = segmented["words"]
    assert len(words) == len(SENTENCES)
    for sentence, ws in zip(SENTENCES, words):
        assert "".join(ws) == sentence
        assert all(ws)
    assert words[0] == []
    assert any(w.isspace() and "\t" in w for w in words[3])        # whitespace runs come back as words
    # the model's own words joined back: nothing had to be repaired into characters
    assert segmented["counters"].get("segment.repaired", 0) == 0


def test_long_sentences_are_cut_and_come_back_whole(segmented):
    long_words = segmented["words"][5]
    assert len(SENTENCES[5]) > segmented["max_chars"]
    assert "".join(long_words) == SENTENCES[5]
    # each cut is segmented on its own, so no word crosses a cut
    ends, at = set(), 0
    for w in long_words:
        at += len(w)
        ends.add(at)
    assert {500, 1000, 1200} <= ends


def test_segmenter_pickles_as_settings(segmented):
    assert segmented["pickled_same"]
