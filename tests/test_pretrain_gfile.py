"""``wwm pretrain`` reads its shards, manifest and vocab through ``tf.io.gfile``, so a TPU VM reads them from
gs:// directly. TensorFlow's in-memory ``ram://`` file system (registered like ``gs://``, no network)
stands in for the bucket: the same training from ram:// and from the local directory gives the same losses.
"""

from __future__ import annotations

import pytest

tf = pytest.importorskip("tensorflow")

# the fixtures (run_dir, shards, unmasked) and helpers of the runner's own tests
from test_pretrain import metrics, options, run_dir, shards, unmasked  # noqa: F401

from pipeline.pretrain import data as pdata
from pipeline.pretrain.train import train


def to_ram(directory, name: str) -> str:
    url = f"ram://{name}"
    tf.io.gfile.makedirs(url)
    for path in sorted(directory.iterdir()):
        if path.is_file():                       # the shards, manifest.json, stats.json
            tf.io.gfile.copy(str(path), f"{url}/{path.name}", overwrite=True)
    return url


def test_shards_read_from_a_gfile_url_train_like_local_ones(shards, tmp_path):  # noqa: F811
    url = to_ram(shards, "bucket/shards")
    assert "://" in url and pdata.read_manifest(url) == pdata.read_manifest(shards)
    local = tmp_path / "local"
    remote = tmp_path / "remote"
    train(options(shards, local, num_train_steps=10, steps_per_loop=5), log=lambda *_: None)
    train(options(url, remote, num_train_steps=10, steps_per_loop=5), log=lambda *_: None)
    losses = [m["loss"] for m in metrics(local)]
    assert len(losses) == 2 and [m["loss"] for m in metrics(remote)] == losses


def test_unmasked_shards_take_their_vocab_from_a_gfile_url(unmasked, run_dir, tmp_path):  # noqa: F811
    url = to_ram(unmasked, "bucket/unmasked")
    vocab = to_ram_file(run_dir / "vocab.txt", "bucket/vocab.txt")
    masking = pdata.Masking.from_manifest(pdata.read_manifest(url), vocab)
    assert masking == pdata.Masking.from_manifest(pdata.read_manifest(unmasked), str(run_dir / "vocab.txt"))


def to_ram_file(path, name: str) -> str:
    url = f"ram://{name}"
    tf.io.gfile.copy(str(path), url, overwrite=True)
    return url
