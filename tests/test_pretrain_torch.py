"""The PyTorch runner (``wwm pretrain --framework torch``) on real shards of the shared wiki2019zh sample.

This process imports torch and never TensorFlow; every comparison with TensorFlow (the shards parsed by
``tf.io.parse_example``, the google checkpoint, the TensorBoard events) runs TensorFlow in a subprocess.
The shards are built with the real stages (jieba), a small vocab of the sample's characters, length 64.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

os.environ["USE_TF"] = "0"          # transformers reads it when first imported: never TensorFlow in this process
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from conftest import make_config, shared_file  # noqa: E402
from pipeline.config import InputSpec, ShardOptions  # noqa: E402
from pipeline.pretrain_torch import reader  # noqa: E402
from pipeline.pretrain_torch.data import ShardBatches, loader  # noqa: E402
from pipeline.pretrain_torch.masking import DynamicMasker  # noqa: E402
from pipeline.stages import DOCUMENT_STAGES, run_all, run_stage  # noqa: E402
from pipeline.vocab.wordpiece import is_cjk  # noqa: E402

CORPUS = "wiki2019zh_sample.jsonl"
SEQ, PREDICTIONS = 64, 10
ROOT = Path(__file__).resolve().parents[1]


def has_tensorflow() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def run_tensorflow(code: str, *args, timeout: int = 300) -> str:
    """``code`` in a fresh Python with TensorFlow (skips when it is not installed)."""
    if not has_tensorflow():
        pytest.skip("TensorFlow not installed")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def small_vocab(corpus: Path, path: Path) -> Path:
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
    output = tmp_path_factory.mktemp("pretrain-torch-run")
    config = make_config(output, [InputSpec(str(corpus), "auto", None)], "beam", segment={"segmenter": "jieba"})
    run_all(config, DOCUMENT_STAGES, log=lambda *_: None)
    small_vocab(corpus, output / "vocab.txt")
    return output


def make_shards(run_dir: Path, name: str, **options) -> Path:
    target = run_dir / name
    if not target.exists():
        config = make_config(run_dir, [], "beam", shards={
            "vocab": str(run_dir / "vocab.txt"), "max_seq_length": SEQ, "max_predictions_per_seq": PREDICTIONS,
            "dupe_factor": 2, "shards": 3, **options})
        run_stage("shards", config, log=lambda *_: None)
        (run_dir / "shards").rename(target)
    return target


@pytest.fixture(scope="module")
def shards(run_dir):
    return make_shards(run_dir, "shards-bert")


@pytest.fixture(scope="module")
def unmasked(run_dir):
    return make_shards(run_dir, "shards-unmasked", unmasked=True)


def read_all(directory: Path) -> dict[str, np.ndarray]:
    """Every record of every shard, in file order, decoded by the reader."""
    manifest = reader.read_manifest(directory)
    files, _ = reader.shard_files(directory, manifest)
    names = [f.name for f in reader.layout(manifest)]
    items = [(path, i, data) for path in files for i, data in reader.records(path, names)]
    return reader.decode_batch(items, reader.layout(manifest))


def test_this_process_has_no_tensorflow():
    from transformers import BertForPreTraining  # noqa: F401

    assert "tensorflow" not in sys.modules


# ---- reader
@pytest.mark.parametrize("variant", ["shards", "unmasked"])
def test_reader_gives_exactly_what_tensorflow_parses(variant, request, tmp_path):
    directory = request.getfixturevalue(variant)
    ours = read_all(directory)
    out = tmp_path / "tf.npz"
    run_tensorflow("""
        import sys, numpy as np, tensorflow as tf
        from pipeline.pretrain import data
        directory, out = sys.argv[1], sys.argv[2]
        manifest = data.read_manifest(directory)
        ds = tf.data.TFRecordDataset(data.shard_files(directory, manifest)).batch(100000)
        features = data.parse(next(iter(ds)), manifest)
        np.savez(out, **{k: v.numpy() for k, v in features.items()})
    """, directory, out)
    theirs = np.load(out)
    assert sorted(theirs.files) == sorted(ours)
    assert len(ours["input_ids"]) == reader.read_manifest(directory)["instances"]
    for name in theirs.files:
        np.testing.assert_array_equal(ours[name], theirs[name].astype(ours[name].dtype), err_msg=name)


def test_varints_of_every_size_and_unpacked_lists():
    from pipeline.shards import tfrecord

    values = [0, 1, 127, 128, 300, 16383, 16384, 2**21 + 5, 2**35 + 7, 2**62]
    packed = b"".join(tfrecord.varint(v) for v in values)
    assert reader.decode_varints(packed).tolist() == values
    # an Int64List written unpacked (field 1 as separate varints) and a FloatList unpacked
    int_list = b"".join(b"\x08" + tfrecord.varint(v) for v in (5, 300))
    float_list = b"".join(b"\x0d" + tfrecord.floats([v]) for v in (1.5, -2.0))
    feature_i = b"\x1a" + tfrecord.varint(len(int_list)) + int_list
    feature_f = b"\x12" + tfrecord.varint(len(float_list)) + float_list
    example = tfrecord.example([(b"a", feature_i), (b"b", feature_f)])
    got = reader.decode_batch([("x", 0, example)], [reader.Feature("a", "int64", 2), reader.Feature("b", "float", 2)])
    assert got["a"].tolist() == [[5, 300]] and got["b"].tolist() == [[1.5, -2.0]]


def test_a_corrupt_shard_names_its_file_and_record(shards, tmp_path):
    manifest = reader.read_manifest(shards)
    files, _ = reader.shard_files(shards, manifest)
    data = bytearray(Path(files[0]).read_bytes())
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        pos += 16 + int.from_bytes(data[pos:pos + 8], "little")
    bad = tmp_path / "part-bad.tfrecord"
    flipped = bytearray(data)
    flipped[offsets[5] + 12 + 3] ^= 0xFF                      # a byte of record 5's data
    bad.write_bytes(bytes(flipped))
    with pytest.raises(reader.ShardError, match=r"part-bad\.tfrecord: record 5: bad data checksum"):
        list(reader.tfrecords(str(bad)))
    bad.write_bytes(bytes(data[:offsets[7] + 20]))            # cut inside record 7
    with pytest.raises(reader.ShardError, match=r"part-bad\.tfrecord: record 7: truncated record"):
        list(reader.tfrecords(str(bad)))
    garbage = tmp_path / "part-garbage.tfrecord"
    from pipeline.shards.tfrecord import frame

    garbage.write_bytes(data[:offsets[2]] + frame(b"\x0a\x05\x0a\x03\x0a\x01"))  # framed, not an Example
    items = [(str(garbage), i, d) for i, d in reader.tfrecords(str(garbage))]
    with pytest.raises(reader.ShardError, match=r"part-garbage\.tfrecord: record 2: "):
        reader.decode_batch(items, reader.layout(manifest))


def test_parquet_instances_read_as_the_tfrecords(shards, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = reader.read_manifest(shards)
    files, _ = reader.shard_files(shards, manifest)
    names = [f.name for f in reader.layout(manifest)]
    copy = json.loads(json.dumps(manifest))
    for shard in copy["shards"]:
        if shard["instances"]:
            path = shards / shard["file"]
            items = [(str(path), i, d) for i, d in reader.tfrecords(str(path))]
            features = reader.decode_batch(items, reader.layout(manifest))
            columns = {n: pa.array([row.tolist() for row in features[n]]) if features[n].ndim == 2
                       else pa.array(features[n].tolist()) for n in names}
            shard["file"] = shard["file"].replace(".tfrecord", ".parquet")
            pq.write_table(pa.table(columns), tmp_path / shard["file"], row_group_size=50)
    (tmp_path / "manifest.json").write_text(json.dumps(copy))
    for a, b in zip(ShardBatches(str(shards), manifest, batch_size=32, seed=3, shuffle_buffer=64, as_numpy=True),
                    ShardBatches(str(tmp_path), copy, batch_size=32, seed=3, shuffle_buffer=64, as_numpy=True)):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        break
    np.testing.assert_array_equal(read_all(tmp_path)["input_ids"], read_all(shards)["input_ids"])


def test_streams_split_an_epoch_and_resume_at_any_item(shards):
    manifest = reader.read_manifest(shards)
    files, counts = reader.shard_files(shards, manifest)
    total = sum(counts)
    for streams in (1, 2, 5):          # 5 streams > 3 files: records are split, not files
        seen = []
        for s in range(streams):
            stream = reader.Stream(files, counts, [], seed=7, stream=s, streams=streams, shuffle_buffer=50)
            items = stream.items()
            epoch = [next(items) for _ in range(stream.epoch_size(0))]
            assert {item[0] for item in epoch} == {0} and next(items)[0] == 1
            seen += [(item[2], item[3]) for item in epoch]
        assert len(seen) == len(set(seen)) == total
    stream = reader.Stream(files, counts, [], seed=7, stream=1, streams=2, shuffle_buffer=50)
    size = stream.epoch_size(0)
    straight = stream.items()
    read = [next(straight)[:4] for _ in range(3 * size)]
    for skip in (0, 17, size - 1, size, size + 5, 2 * size + 3):
        resumed = stream.items(skip=skip)
        assert [next(resumed)[:4] for _ in range(10)] == read[skip:skip + 10]
    second = [item[2:4] for item in read[size:2 * size]]
    assert second != [item[2:4] for item in read[:size]]                    # each epoch in a new order


def test_batches_resume_with_several_workers(unmasked):
    manifest = reader.read_manifest(unmasked)

    def batches(start, workers, count):
        dataset = ShardBatches(str(unmasked), manifest, batch_size=8, seed=11, workers=workers, start_batch=start,
                               shuffle_buffer=40)
        it = iter(loader(dataset, workers, 11))
        return [next(it) for _ in range(count)]

    straight = batches(0, 2, 9)
    for start in (3, 4):
        for a, b in zip(straight[start:], batches(start, 2, 9 - start)):
            for name in a:
                assert torch.equal(a[name], b[name]), name
    assert not torch.equal(straight[0]["input_ids"], straight[1]["input_ids"])


# ---- dynamic masking
def test_dynamic_masking_is_the_shards_stage_masking(run_dir):
    """The shards stage's encoder writes the same instances masked and unmasked; masking the unmasked records
    on the fly with the same instance seeds gives exactly the masked records."""
    from pipeline.shards.builder import ShardBuilder
    from pipeline.shards.instances import bert_table, pool_tokens
    from pipeline.shards.seeds import copy_seeds, document_values
    from pipeline.shards.tfrecord import read_records

    settings = dict(vocab=str(run_dir / "vocab.txt"), max_seq_length=SEQ, max_predictions_per_seq=PREDICTIONS)
    for decision in ("word", "token"):
        masked_options = ShardOptions(**settings, mask_decision=decision)
        masked = ShardBuilder(masked_options, settings["vocab"])
        plain = ShardBuilder(ShardOptions(**settings, mask_decision=decision, unmasked=True), settings["vocab"])
        import pyarrow.parquet as pq

        segmented = sorted((run_dir / "segment" / "segmented").rglob("*.parquet"))
        assert segmented, "the segment stage wrote no Parquet"
        docs = [d for d in masked.tokenize_table(pq.read_table(segmented[0]).slice(0, 80)) if hasattr(d, "ids")]
        pool = pool_tokens(docs)
        table = bert_table(pool, copy_seeds(document_values(5, pool.doc_ids), np.zeros(len(docs), np.int64)),
                           SEQ, 0.1)
        seeds = np.arange(len(table), dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(99)

        def decode(builder, unmasked_features):
            data, offsets, _ = builder.encoder.encode(pool, table, seeds)
            path = run_dir / f"encoded-{unmasked_features}.tfrecord"
            path.write_bytes(data.tobytes())
            manifest = {"features": "unmasked" if unmasked_features else "masked", "max_seq_length": SEQ,
                        "max_predictions_per_seq": PREDICTIONS}
            items = [(str(path), i, r) for i, r in enumerate(read_records(str(path)))]
            return reader.decode_batch(items, reader.layout(manifest))

        want, features = decode(masked, False), decode(plain, True)
        vocab_size = sum(1 for _ in open(settings["vocab"], encoding="utf-8"))
        manifest = {"vocab": settings["vocab"], "vocab_size": vocab_size, "max_seq_length": SEQ,
                    "max_predictions_per_seq": PREDICTIONS, "settings": {**settings, "mask_decision": decision}}
        got = DynamicMasker(manifest)(features, seeds)
        assert len(table) > 100 and want["masked_lm_weights"].sum() > 500
        for name in reader.MASKED_OUTPUTS:
            np.testing.assert_array_equal(got[name], want[name].astype(got[name].dtype), err_msg=f"{decision} {name}")


# ---- training
def options(shards: Path, output: Path, **overrides):
    from pipeline.pretrain_torch.train import TorchTrainOptions

    values = dict(shards=str(shards), output_dir=str(output), preset="tiny", train_batch_size=16,
                  num_train_steps=50, num_warmup_steps=5, learning_rate=2e-3, steps_per_loop=10,
                  save_checkpoints_steps=25, shuffle_buffer=500, num_workers=0, export=False, device="cpu")
    values.update(overrides)
    return TorchTrainOptions(**values)


def metrics(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]


def test_tiny_model_loss_falls_over_50_steps(unmasked, tmp_path):
    from pipeline.pretrain_torch.train import train

    torch.set_num_threads(2)
    train(options(unmasked, tmp_path, num_workers=1, steps_per_loop=5), log=lambda *_: None)
    assert "tensorflow" not in sys.modules
    rows = metrics(tmp_path)
    assert [r["step"] for r in rows] == list(range(5, 55, 5))
    assert rows[-1]["mlm_loss"] < rows[0]["mlm_loss"] - 1.0, rows
    assert rows[-1]["nsp_loss"] < 0.8 and all(np.isfinite(r["loss"]) for r in rows)
    assert {"learning_rate", "examples_per_second", "mlm_accuracy", "nsp_accuracy"} <= rows[-1].keys()
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("ckpt-*.pt")) == ["ckpt-25.pt", "ckpt-50.pt"]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_stopped_and_resumed_run_ends_with_the_same_weights(unmasked, tmp_path):
    from pipeline.pretrain_torch.train import train

    torch.set_num_threads(2)
    common = dict(num_train_steps=14, save_checkpoints_steps=0, num_workers=2, steps_per_loop=5)
    train(options(unmasked, tmp_path / "straight", **common), log=lambda *_: None)
    train(options(unmasked, tmp_path / "stopped", stop_after_steps=7, **common), log=lambda *_: None)
    lines = []
    train(options(unmasked, tmp_path / "stopped", **common), log=lines.append)
    assert any("resumed" in line and "at step 7" in line for line in lines)
    a = torch.load(tmp_path / "straight" / "checkpoints" / "ckpt-14.pt", weights_only=False)
    b = torch.load(tmp_path / "stopped" / "checkpoints" / "ckpt-14.pt", weights_only=False)
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    for key, state in a["optimizer"]["state"].items():
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(state[name], b["optimizer"]["state"][key][name])
    assert a["scheduler"] == b["scheduler"]


@pytest.fixture(scope="module")
def exported(shards, tmp_path_factory):
    from pipeline.pretrain_torch.train import train

    out = tmp_path_factory.mktemp("torch-export")
    torch.set_num_threads(2)
    train(options(shards, out, num_train_steps=60, export=True, learning_rate=3e-3), log=lambda *_: None)
    return out


def test_export_loads_in_transformers_and_fills_a_mask(exported, shards):
    from transformers import BertForPreTraining, BertTokenizerFast, pipeline

    hf = exported / "export" / "hf"
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"} <= {p.name for p in hf.iterdir()}
    model = BertForPreTraining.from_pretrained(hf).eval()
    tokenizer = BertTokenizerFast.from_pretrained(hf)
    state = torch.load(exported / "checkpoints" / "ckpt-60.pt", weights_only=False)["model"]
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name
    from transformers import BertForMaskedLM

    fill = pipeline("fill-mask", model=BertForMaskedLM.from_pretrained(hf), tokenizer=tokenizer, top_k=3)
    text = "中国的首都是北京。"
    got = fill(text.replace("首", tokenizer.mask_token, 1))
    assert len(got) == 3 and all(r["token_str"] in tokenizer.get_vocab() for r in got)
    assert got[0]["sequence"].replace(" ", "") != text.replace("首", "[MASK]")
    # the pipeline's best token is the model's argmax at the mask
    ids = tokenizer(text.replace("首", tokenizer.mask_token, 1), return_tensors="pt")
    with torch.no_grad():
        logits = BertForMaskedLM.from_pretrained(hf)(**ids).logits
    at = int((ids["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0])
    assert got[0]["token"] == int(logits[0, at].argmax())


def test_google_checkpoint_and_tensorboard_read_back_with_tensorflow(exported):
    out = run_tensorflow("""
        import sys, glob, json, numpy as np, tensorflow as tf
        from pipeline.pretrain.export import read_checkpoint_weights, read_safetensors
        export = sys.argv[1]
        weights = read_checkpoint_weights(export + "/export")
        hf = read_safetensors(export + "/export/hf/model.safetensors")
        same = np.array_equal(weights["bert/encoder/layer_0/attention/self/query/kernel"],
                              hf["bert.encoder.layer.0.attention.self.query.weight"].T)
        tags = {}
        for path in glob.glob(export + "/tensorboard/events.out.tfevents.*"):
            for event in tf.compat.v1.train.summary_iterator(path):
                for v in event.summary.value:
                    tags.setdefault(v.tag, []).append((event.step, v.simple_value))
        print(json.dumps({"names": sorted(weights), "same": bool(same), "tags": tags}))
    """, exported)
    got = json.loads(out.strip().splitlines()[-1])
    assert got["same"]
    assert "bert/pooler/dense/kernel" in got["names"] and "cls/seq_relationship/output_weights" in got["names"]
    rows = metrics(exported)
    assert [step for step, _ in got["tags"]["mlm_loss"]] == [r["step"] for r in rows]
    assert np.allclose([v for _, v in got["tags"]["mlm_loss"]], [r["mlm_loss"] for r in rows], rtol=1e-6)


def test_roberta_mode_trains_a_masked_lm(run_dir, tmp_path):
    from pipeline.pretrain_torch.train import Trainer

    roberta = make_shards(run_dir, "shards-roberta", mode="roberta", unmasked=True)
    trainer = Trainer(options(roberta, tmp_path, num_train_steps=10, steps_per_loop=5))
    assert type(trainer.model).__name__ == "BertForMaskedLM"
    last = trainer.train()
    assert "nsp_loss" not in last and np.isfinite(last["mlm_loss"])


def test_cli_framework_torch(unmasked, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pipeline.cli", "pretrain", str(unmasked), "--framework", "torch",
           "--output_dir", str(tmp_path), "--preset", "tiny", "--train_batch_size", "8", "--num_train_steps", "4",
           "--num_warmup_steps", "1", "--steps_per_loop", "2", "--num_workers", "0", "--no_export",
           "--device", "cpu"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [r["step"] for r in metrics(tmp_path)] == [2, 4]
    check = ("import sys, runpy; sys.argv = " + json.dumps(["wwm"] + cmd[3:] + ["--num_train_steps", "6"])
             + "\nfrom pipeline.cli import main\nrc = main(sys.argv[1:])\n"
               "assert 'tensorflow' not in sys.modules, 'TensorFlow imported'\nsys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
