"""The TensorFlow pretraining runner on real shards made from the shared wiki2019zh sample.

The shards are built with the real stages (jieba segmentation) and a small vocab of the sample's own
characters (about 2,500 entries), max_seq_length 64, so that a tiny BERT (2 layers, hidden 128) learns
past the unigram plateau in a few hundred CPU steps. Everything runs on CPU in this one process; the
Hugging Face check loads the export with transformers in a separate process (TensorFlow and torch never
share one).
"""

from __future__ import annotations

import json
import math
import os
import string
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from conftest import make_config, shared_file  # noqa: E402
from pipeline.config import InputSpec  # noqa: E402
from pipeline.pretrain import data as pdata  # noqa: E402
from pipeline.pretrain.config import BertConfig, preset  # noqa: E402
from pipeline.pretrain.export import (export_all, hf_names, init_from_checkpoint, read_checkpoint_weights,  # noqa: E402
                                      read_safetensors)
from pipeline.pretrain.model import BertPretrainer, weight_shapes  # noqa: E402
from pipeline.pretrain.train import TrainOptions, Trainer, train  # noqa: E402
from pipeline.shards import manifest as shard_manifest  # noqa: E402
from pipeline.stages import DOCUMENT_STAGES, run_all, run_stage  # noqa: E402
from pipeline.vocab.wordpiece import is_cjk, read_vocab  # noqa: E402

CORPUS = "wiki2019zh_sample.jsonl"
SEQ, PREDICTIONS = 64, 10


def small_vocab(corpus: Path, path: Path) -> Path:
    """BERT layout: specials, the corpus's CJK characters and punctuation seen 3+ times, ASCII alphanumerics
    and their ## forms."""
    counts = Counter()
    for line in corpus.open(encoding="utf-8"):
        counts.update(json.loads(line)["text"])
    frequent = [ch for ch, n in counts.most_common() if n >= 3 and not ch.isspace()]
    cjk = [ch for ch in frequent if is_cjk(ch)]
    punct = [ch for ch in frequent if not is_cjk(ch) and not ch.isalnum()]
    alnum = list(string.digits + string.ascii_lowercase)
    entries = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *cjk, *punct, *alnum, *("##" + a for a in alnum)]
    path.write_text("\n".join(entries) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    corpus = shared_file("corpora", CORPUS)
    output = tmp_path_factory.mktemp("pretrain-run")
    config = make_config(output, [InputSpec(str(corpus), "auto", None)], "beam", segment={"segmenter": "jieba"})
    run_all(config, DOCUMENT_STAGES, log=lambda *_: None)
    small_vocab(corpus, output / "vocab.txt")
    return output


def make_shards(run_dir: Path, name: str, **options) -> Path:
    target = run_dir / name
    if not target.exists():
        config = make_config(run_dir, [], "beam", shards={
            "vocab": str(run_dir / "vocab.txt"), "max_seq_length": SEQ, "max_predictions_per_seq": PREDICTIONS,
            "dupe_factor": 2, "shards": 2, **options})
        run_stage("shards", config, log=lambda *_: None)
        (run_dir / "shards").rename(target)
    return target


@pytest.fixture(scope="module")
def shards(run_dir):
    return make_shards(run_dir, "shards-bert")


@pytest.fixture(scope="module")
def unmasked(run_dir):
    return make_shards(run_dir, "shards-unmasked", unmasked=True)


def options(shards: Path, output: Path, **overrides) -> TrainOptions:
    values = dict(shards=str(shards), output_dir=str(output), preset="tiny", train_batch_size=16,
                  num_train_steps=40, num_warmup_steps=10, learning_rate=1e-2, optimizer="lamb",
                  steps_per_loop=10, save_checkpoints_steps=20, shuffle_buffer=1000, export=False)
    values.update(overrides)
    return TrainOptions(**values)


def metrics(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]


def most_frequent_label_share(shards: Path, batches: int = 20) -> float:
    manifest = shard_manifest.read(shards)
    labels = []
    for batch in pdata.make_dataset(shards, manifest, batch_size=512, seed=3).take(batches):
        weights = batch["masked_lm_weights"].numpy() > 0
        labels.append(batch["masked_lm_ids"].numpy()[weights])
    counts = np.bincount(np.concatenate(labels))
    return counts.max() / counts.sum()


# ---- input
def test_input_is_static_int32_and_resumes_at_any_batch(shards):
    manifest = shard_manifest.read(shards)
    ds = pdata.make_dataset(shards, manifest, batch_size=8, seed=5, shuffle_buffer=100)
    for name, spec in ds.element_spec.items():
        assert spec.shape.is_fully_defined(), name
        assert spec.dtype == (tf.float32 if name == "masked_lm_weights" else tf.int32), name
    assert ds.element_spec["input_ids"].shape == (8, SEQ)
    assert ds.element_spec["masked_lm_ids"].shape == (8, PREDICTIONS)
    straight = [b["input_ids"].numpy() for b in ds.take(12)]
    resumed = [b["input_ids"].numpy() for b in pdata.make_dataset(shards, manifest, batch_size=8, seed=5,
                                                                 shuffle_buffer=100, skip_batches=7).take(5)]
    for a, b in zip(straight[7:], resumed):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(straight[0], straight[1])
    # across epochs: whole epochs are skipped by arithmetic, the same batches come out as when read through
    big = manifest["instances"] // 3 + 7                                  # batches straddle epoch ends
    files, counts = pdata.shard_files(shards, manifest), pdata.shard_instances(manifest)
    read = [b[2].numpy() for b in pdata.records(files, batch_size=big, seed=5, shuffle_buffer=100).take(8)]
    for start in (3, 4, 6):
        jumped = next(iter(pdata.records(files, batch_size=big, seed=5, shuffle_buffer=100, skip_batches=start,
                                         instances=counts)))
        np.testing.assert_array_equal(jumped[2].numpy(), read[start])


def test_pipelines_read_disjoint_files(shards):
    manifest = shard_manifest.read(shards)
    seen = []
    for pipeline_id in range(2):
        ds = pdata.make_dataset(shards, manifest, batch_size=64, num_pipelines=2, pipeline_id=pipeline_id,
                                shuffle_buffer=1)
        rows = np.concatenate([b["input_ids"].numpy() for b in ds.take(10)])
        seen.append({r.tobytes() for r in rows})
    assert not seen[0] & seen[1]


# ---- dynamic masking
def test_dynamic_masking_whole_words_rate_and_80_10_10(unmasked, run_dir):
    manifest = shard_manifest.read(unmasked)
    assert manifest["features"] == "unmasked"
    masking = pdata.Masking.from_manifest(manifest)
    entries = read_vocab(run_dir / "vocab.txt")
    raw = next(iter(pdata.records(pdata.shard_files(unmasked, manifest), batch_size=2048, seed=1, shuffle_buffer=1)))
    features = pdata.parse(raw[2], manifest)
    out = {k: v.numpy() for k, v in pdata.dynamic_mask(features, tf.constant([4, 2], tf.int64), masking).items()}
    again = pdata.dynamic_mask(features, tf.constant([4, 2], tf.int64), masking)["input_ids"].numpy()
    other = pdata.dynamic_mask(features, tf.constant([4, 3], tf.int64), masking)["input_ids"].numpy()
    np.testing.assert_array_equal(out["input_ids"], again)               # deterministic for a seed
    assert (out["input_ids"] != other).mean() > 0.05                     # a fresh mask for a fresh seed
    ids, words = features["input_ids"].numpy(), features["word_ids"].numpy()
    real = features["input_mask"].numpy().sum()
    weights = out["masked_lm_weights"] > 0
    masked = int(weights.sum())
    assert 0.12 < masked / real < 0.16, masked / real                    # masked_lm_prob 0.15, whole words
    replaced = mask = kept = 0
    for row in range(ids.shape[0]):
        positions = out["masked_lm_positions"][row][weights[row]]
        assert list(positions) == sorted(set(positions))
        assert words[row][positions].min() > 0                           # never [CLS]/[SEP]/padding
        np.testing.assert_array_equal(out["masked_lm_ids"][row][weights[row]], ids[row][positions])
        chosen = set(words[row][positions])
        assert set(np.flatnonzero(np.isin(words[row], list(chosen)))) == set(positions)  # whole words only
        changed = out["input_ids"][row] != ids[row]
        assert not changed[np.setdiff1d(np.arange(SEQ), positions)].any()
        for word in chosen:                                              # one decision per word
            tokens = out["input_ids"][row][words[row] == word]
            originals = ids[row][words[row] == word]
            if (tokens == masking.mask_id).all():
                mask += 1
            elif (tokens == originals).all():
                kept += 1
            else:
                replaced += 1
                assert not (tokens == masking.mask_id).any()
                assert all(not entries[t].startswith("##") or not is_cjk(entries[t][2:]) for t in tokens)
    total = mask + kept + replaced
    assert abs(mask / total - 0.8) < 0.03 and abs(kept / total - 0.1) < 0.03, (mask, kept, replaced)


def test_fresh_mask_every_epoch(unmasked):
    """Every instance, seen again in the next epoch, gets another mask (the instance is recovered from the
    masked ids and the labels at the masked positions)."""
    manifest = shard_manifest.read(unmasked)
    batch = 2048
    masks: dict[bytes, list[bytes]] = {}
    for b in pdata.make_dataset(unmasked, manifest, batch_size=batch, seed=9).take(
            2 * manifest["instances"] // batch):
        ids, positions = b["input_ids"].numpy(), b["masked_lm_positions"].numpy()
        labels, weights = b["masked_lm_ids"].numpy(), b["masked_lm_weights"].numpy() > 0
        for row in range(batch):
            original = ids[row].copy()
            original[positions[row][weights[row]]] = labels[row][weights[row]]
            masks.setdefault(original.tobytes(), []).append(positions[row][weights[row]].tobytes())
    seen_twice = [m for m in masks.values() if len(m) >= 2]
    assert len(seen_twice) > manifest["instances"] // 2
    assert sum(len(set(m)) > 1 for m in seen_twice) / len(seen_twice) > 0.95


# ---- training
def test_tiny_bert_learns_past_the_unigram_baseline(shards, tmp_path):
    manifest = shard_manifest.read(shards)
    baseline = most_frequent_label_share(shards)
    last = train(options(shards, tmp_path / "out", num_train_steps=800, num_warmup_steps=50, steps_per_loop=100,
                         save_checkpoints_steps=0), log=print)
    history = metrics(tmp_path / "out")
    print("baseline accuracy", baseline, "ln(V)", math.log(manifest["vocab_size"]), history)
    assert history[0]["mlm_loss"] > math.log(manifest["vocab_size"]) - 1.0           # starts near uniform
    assert last["mlm_loss"] < math.log(manifest["vocab_size"]) - 1.5
    assert last["mlm_accuracy"] > 1.5 * baseline
    assert last["nsp_accuracy"] > 0.75
    assert {"loss", "mlm_accuracy", "nsp_accuracy", "learning_rate", "examples_per_second"} <= set(last)
    events = list((tmp_path / "out" / "tensorboard").glob("events.out.tfevents.*"))
    tags = {value.tag for event in tf.compat.v1.train.summary_iterator(str(events[0]))
            for value in event.summary.value}
    assert {"loss", "mlm_loss", "mlm_accuracy", "nsp_accuracy", "learning_rate", "examples_per_second"} <= tags


def test_stop_and_resume_reaches_the_same_loss(shards, tmp_path):
    straight = train(options(shards, tmp_path / "straight"), log=print)
    first = train(options(shards, tmp_path / "resumed", stop_after_steps=20), log=print)
    assert first["step"] == 20
    resumed = train(options(shards, tmp_path / "resumed"), log=print)
    assert resumed["step"] == 40
    for key in ("loss", "mlm_loss", "mlm_accuracy", "nsp_loss"):
        assert resumed[key] == pytest.approx(straight[key], rel=1e-5, abs=1e-6), key
    a = read_checkpoint_weights(tmp_path / "straight" / "checkpoints")
    b = read_checkpoint_weights(tmp_path / "resumed" / "checkpoints")
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)
    steps = [m["step"] for m in metrics(tmp_path / "resumed")]
    assert steps == [10, 20, 30, 40]


def test_roberta_mode_trains_mlm_only(tmp_path, run_dir):
    shards = make_shards(run_dir, "shards-roberta", mode="roberta")
    last = train(options(shards, tmp_path / "out", num_train_steps=20), log=print)
    assert "nsp_loss" not in last and last["mlm_loss"] > 0


def test_bf16_compute_on_cpu_tracks_fp32(shards, tmp_path):
    fp32 = train(options(shards, tmp_path / "fp32", num_train_steps=10, steps_per_loop=5))
    bf16 = train(options(shards, tmp_path / "bf16", num_train_steps=10, steps_per_loop=5, mixed_precision="bf16"))
    assert math.isfinite(bf16["loss"])
    assert bf16["mlm_loss"] == pytest.approx(fp32["mlm_loss"], rel=0.02)
    assert bf16["mlm_loss"] != fp32["mlm_loss"]                          # it did compute in bf16


# ---- export and init
def sample_features(shards: Path, batch: int = 4) -> dict:
    manifest = shard_manifest.read(shards)
    return next(iter(pdata.make_dataset(shards, manifest, batch_size=batch, seed=2, shuffle_buffer=1)))


def trained_model(shards: Path, output: Path) -> Trainer:
    """A short run of a tiny model with a phase-1 position table (64 positions, like a 128-position phase 1)."""
    config = preset("tiny", vocab_size=shard_manifest.read(shards)["vocab_size"], max_position_embeddings=SEQ)
    config_file = config.to_json(output / "phase1_config.json")
    trainer = Trainer(options(shards, output, num_train_steps=20, bert_config_file=str(config_file)))
    trainer.train()
    return trainer


@pytest.fixture(scope="module")
def exported(shards, tmp_path_factory):
    output = tmp_path_factory.mktemp("export")
    trainer = trained_model(shards, output)
    paths = export_all(trainer.model, output / "export", vocab=shard_manifest.read(shards)["vocab"])
    return trainer, output, paths


def test_google_checkpoint_has_exactly_googles_names_and_round_trips(exported, shards):
    trainer, output, _ = exported
    reader = tf.train.load_checkpoint(str(output / "export" / "bert_model.ckpt"))
    shapes = reader.get_variable_to_shape_map()
    expected = {name: list(shape) for name, shape, _ in weight_shapes(trainer.config)}
    assert shapes == expected
    assert "bert/encoder/layer_1/attention/self/query/kernel" in shapes
    assert shapes["cls/seq_relationship/output_weights"] == [2, trainer.config.hidden_size]
    assert BertConfig.from_json(output / "export" / "bert_config.json") == trainer.config
    assert (output / "export" / "vocab.txt").exists()
    features = sample_features(shards)
    want = trainer.model(features)
    for source in (output / "export" / "bert_model.ckpt", output / "checkpoints"):       # google's and ours
        fresh = BertPretrainer(trainer.config, seed=99)
        lines = init_from_checkpoint(fresh, source)
        assert lines[0].startswith(f"init: {len(fresh.weights)} of {len(fresh.weights)} weights"), lines
        got = fresh(features)
        for key in want:
            np.testing.assert_array_equal(want[key].numpy(), got[key].numpy())


def test_phase_two_from_a_shorter_position_table(exported, shards):
    trainer, output, _ = exported
    longer = BertConfig(**{**trainer.config.to_dict(), "max_position_embeddings": 2 * SEQ})
    model = BertPretrainer(longer, seed=5)
    initial = model.weights["bert/embeddings/position_embeddings"].numpy()
    lines = init_from_checkpoint(model, output / "export" / "bert_model.ckpt")
    assert any("position embeddings: 64 rows from the checkpoint's 64" in line for line in lines), lines
    table = model.weights["bert/embeddings/position_embeddings"].numpy()
    np.testing.assert_array_equal(table[:SEQ], trainer.model.weights["bert/embeddings/position_embeddings"].numpy())
    np.testing.assert_array_equal(table[SEQ:], initial[SEQ:])
    features = sample_features(shards)
    np.testing.assert_allclose(model(features)["mlm_logits"].numpy(), trainer.model(features)["mlm_logits"].numpy(),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="word_embeddings"):
        init_from_checkpoint(BertPretrainer(preset("tiny", vocab_size=100)), output / "export" / "bert_model.ckpt")


def test_wwm_pretrain_cli_init_checkpoint_and_export(exported, shards, tmp_path):
    _, output, _ = exported
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "pipeline.cli", "pretrain", str(shards), "--output_dir", str(tmp_path / "cli"),
           "--preset", "tiny", "--train_batch_size", "8", "--num_train_steps", "4", "--num_warmup_steps", "1",
           "--steps_per_loop", "2", "--save_checkpoints_steps", "2", "--init_checkpoint",
           str(output / "export" / "bert_model.ckpt")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "init: " in done.stdout and "step 4 loss" in done.stdout, done.stdout
    # the preset has 512 positions, the checkpoint 64: phase 2 from phase 1
    assert "position embeddings: 64 rows from the checkpoint's 64, 448 rows left" in done.stdout, done.stdout
    assert (tmp_path / "cli" / "export" / "bert_model.ckpt.index").exists()
    assert (tmp_path / "cli" / "export" / "hf" / "model.safetensors").exists()


def test_help_does_not_import_tensorflow():
    code = ("import sys, pipeline.cli as c; c.build_parser().parse_args(['pretrain', 'x', '--output_dir', 'y']); "
            "sys.exit('tensorflow' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=120).returncode == 0


# torch processes: transformers must not import TensorFlow beside torch (both are installed by `make test`)
NO_TF = {**os.environ, "USE_TF": "0", "TRANSFORMERS_NO_TF": "1"}


def torch_python() -> str | None:
    """An interpreter with torch and transformers: $WWM_TORCH_PYTHON, this one, or /tmp/venvneural's."""
    for candidate in (os.environ.get("WWM_TORCH_PYTHON"), sys.executable, "/tmp/venvneural/bin/python"):
        if candidate and Path(candidate).exists():
            check = subprocess.run([candidate, "-c", "import torch, transformers"], capture_output=True, timeout=300,
                                   env=NO_TF)
            if check.returncode == 0:
                return candidate
    return None


HF_SCRIPT = r"""
import json, sys
import numpy as np, torch
from transformers import BertForPreTraining
folder, inputs, out = sys.argv[1:4]
model, info = BertForPreTraining.from_pretrained(folder, output_loading_info=True)
model.eval()
x = np.load(inputs)
with torch.no_grad():
    o = model(input_ids=torch.tensor(x["input_ids"], dtype=torch.long),
              attention_mask=torch.tensor(x["input_mask"], dtype=torch.long),
              token_type_ids=torch.tensor(x["segment_ids"], dtype=torch.long))
np.savez(out, mlm=o.prediction_logits.numpy(), nsp=o.seq_relationship_logits.numpy())
assert "tensorflow" not in sys.modules, "transformers imported TensorFlow beside torch"
print(json.dumps({k: sorted(v) if isinstance(v, (list, set)) else str(v) for k, v in info.items()}))
"""


def test_hugging_face_folder_loads_in_transformers_with_the_same_logits(exported, shards, tmp_path):
    trainer, output, _ = exported
    folder = output / "export" / "hf"
    tensors = read_safetensors(folder / "model.safetensors")
    assert set(tensors) == {hf for hf, _, _ in hf_names(trainer.config)}
    np.testing.assert_array_equal(tensors["bert.encoder.layer.0.attention.self.query.weight"],
                                  trainer.model.weights["bert/encoder/layer_0/attention/self/query/kernel"].numpy().T)
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["BertForPreTraining"]
    python = torch_python()
    if python is None:
        pytest.skip("no interpreter with torch and transformers")
    features = sample_features(shards)
    features = {k: v.numpy() for k, v in features.items()}
    length = features["input_ids"].shape[1]
    features["masked_lm_positions"] = np.tile(np.arange(length, dtype=np.int32), (features["input_ids"].shape[0], 1))
    np.savez(tmp_path / "inputs.npz", **features)
    script = tmp_path / "hf.py"
    script.write_text(HF_SCRIPT)
    done = subprocess.run([python, str(script), str(folder), str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz")],
                          capture_output=True, text=True, timeout=600, env=NO_TF)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    theirs = np.load(tmp_path / "out.npz")
    ours = trainer.model(features)
    np.testing.assert_allclose(theirs["mlm"], ours["mlm_logits"].numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(theirs["nsp"], ours["nsp_logits"].numpy(), atol=1e-4, rtol=1e-4)


def test_two_replicas_compute_the_one_replica_loss(shards, tmp_path):
    """MirroredStrategy over 2 logical CPUs (in a subprocess: logical devices need a fresh runtime) gives the
    losses of the default strategy: the MLM denominator and the gradients are summed across replicas."""
    config = preset("tiny", vocab_size=shard_manifest.read(shards)["vocab_size"], hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0)
    config_file = str(config.to_json(tmp_path / "bert_config.json"))
    single = train(options(shards, tmp_path / "one", num_train_steps=20, bert_config_file=config_file))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "pipeline.cli", "pretrain", str(shards), "--output_dir", str(tmp_path / "two"),
           "--bert_config_file", config_file, "--train_batch_size", "16", "--num_train_steps", "20",
           "--num_warmup_steps", "10", "--learning_rate", "1e-2", "--optimizer", "lamb", "--steps_per_loop", "10",
           "--save_checkpoints_steps", "20", "--shuffle_buffer", "1000", "--cpu_replicas", "2", "--no_export"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cpu x2 replicas" in done.stdout
    two = metrics(tmp_path / "two")[-1]
    for key in ("loss", "mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy"):
        assert two[key] == pytest.approx(single[key], rel=1e-4, abs=1e-5), key


# ---- optimization
def reference_update(kind, w, g, m, v, t, lr, decay, wd=0.01, b1=0.9, b2=0.999, eps=1e-6):
    """NumPy AdamW (google's: no bias correction) and LAMB (paper: decay inside the trust ratio)."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    if kind == "adamw":
        update = m / (np.sqrt(v) + eps) + (wd * w if decay else 0)
        return w - lr * update, m, v
    update = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps) + (wd * w if decay else 0)
    ratio = np.linalg.norm(w) / np.linalg.norm(update) if decay else 1.0
    return w - lr * ratio * update, m, v


@pytest.mark.parametrize("kind", ["adamw", "lamb"])
def test_optimizers_match_their_definitions(kind):
    from pipeline.pretrain.optimization import Optimizer, WarmupLinearDecay

    rng = np.random.default_rng(0)
    start = {"bert/encoder/layer_0/output/dense/kernel": rng.normal(size=(4, 3)).astype(np.float32),
             "bert/encoder/layer_0/output/dense/bias": rng.normal(size=(3,)).astype(np.float32),
             "bert/encoder/layer_0/output/LayerNorm/gamma": rng.normal(size=(3,)).astype(np.float32)}
    weights = {name: tf.Variable(value) for name, value in start.items()}
    schedule = WarmupLinearDecay(0.1, total_steps=10, warmup_steps=2)
    assert [float(schedule(s)) for s in (0, 1, 2, 5, 10, 12)] == pytest.approx([0, 0.05, 0.08, 0.05, 0, 0])
    optimizer = Optimizer(weights, schedule, kind=kind, clip_norm=0.0)
    state = {name: (value.astype(np.float64), 0.0, 0.0) for name, value in start.items()}
    for step in range(3):
        grads = {name: rng.normal(size=value.shape).astype(np.float32) for name, value in start.items()}
        lr = float(schedule(step))
        optimizer.apply_gradients(weights, [tf.constant(grads[n]) for n in optimizer.names])
        for name in start:
            w, m, v = state[name]
            state[name] = reference_update(kind, w, grads[name], m, v, step + 1, lr, decay=name.endswith("kernel"))
            np.testing.assert_allclose(weights[name].numpy(), state[name][0], rtol=1e-5, atol=1e-6, err_msg=name)
    assert int(optimizer.iterations.numpy()) == 3


# ---- what a user running a short job sees (issue 19: warm-up longer than the run, steps/s and ETA)
def test_warmup_defaults_to_a_tenth_of_the_steps_and_a_too_long_one_is_warned_about(shards, tmp_path):
    from pipeline.pretrain.train import eta, warmup_steps

    assert warmup_steps(60, -1) == (6, None)
    assert warmup_steps(100_000, -1) == (10_000, None)
    assert warmup_steps(1_000_000, -1) == (10_000, None)
    kept, warning = warmup_steps(60, 10_000)
    assert kept == 10_000 and "the learning rate only reaches 0.6% of its peak" in warning
    assert warmup_steps(60, 30) == (30, None)
    assert eta(3725) == "1:02:05" and eta(90_061) == "1d 1:01:01"
    log: list[str] = []
    last = train(options(shards, tmp_path / "long", num_train_steps=20, num_warmup_steps=10_000, steps_per_loop=10,
                         learning_rate=1e-3), log=log.append)
    assert any(line.startswith("warning: --num_warmup_steps 10,000 >= --num_train_steps 20") for line in log)
    assert last["learning_rate"] == pytest.approx(1e-3 * 20 / 10_000, rel=1e-3)
    log.clear()
    last = train(options(shards, tmp_path / "auto", num_train_steps=20, num_warmup_steps=-1, steps_per_loop=10,
                         learning_rate=1e-3), log=log.append)
    assert not any(line.startswith("warning") for line in log)
    assert any("warm-up 2" in line for line in log)
    assert last["learning_rate"] == pytest.approx(0.0, abs=1e-9)    # the peak reached, then decayed to 0 at the end


def test_progress_lines_carry_steps_per_second_and_eta(shards, tmp_path):
    log: list[str] = []
    train(options(shards, tmp_path / "out", num_train_steps=30, steps_per_loop=10), log=log.append)
    progress = [line for line in log if line.startswith("step ")]
    assert len(progress) == 3
    for line in progress:
        words = line.split()
        rate = float(words[words.index("steps_per_second") + 1])
        assert rate > 0
        assert words[words.index("eta") + 1].count(":") == 2
    assert progress[-1].endswith("eta 0:00:00")
    history = metrics(tmp_path / "out")
    assert [m["eta_seconds"] for m in history][-1] == 0
    assert history[0]["eta_seconds"] > 0 and all(m["steps_per_second"] > 0 for m in history)
