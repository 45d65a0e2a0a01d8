"""Shared fixtures: the bundled sample corpus, the shared real corpora, configs for both engines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.config import Config, InputSpec
from pipeline.sample import write_sample

SHARED_DATA = Path(os.environ.get("WWM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_file(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data {path} not present")
    return path


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    write_sample(out)
    return out


@pytest.fixture(scope="session")
def sample_inputs(sample_dir) -> list[InputSpec]:
    return [InputSpec(str(d), "auto", d.name) for d in sorted(sample_dir.iterdir())
            if d.is_dir() and not d.name.startswith("_")]


@pytest.fixture(scope="session")
def sample_ltp_model(sample_dir, tmp_path_factory) -> Path:
    """A real LTP legacy model, trained here on the sample's own text (segmented by jieba)."""
    from pipeline.cli import write_sample_segmentation
    from pipeline.segment.gold import read_gold, split_dev, train_legacy

    train, dev = split_dev(read_gold(write_sample_segmentation(str(sample_dir))), 0.1)
    model = tmp_path_factory.mktemp("ltp-sample")
    train_legacy(train, dev, model, epochs=5)
    SAMPLE_MODEL[0] = str(model)
    return model


SAMPLE_MODEL = [""]


def make_config(output: Path, inputs, engine: str = "beam", **sections) -> Config:
    config = Config(engine=engine, output=str(output), inputs=list(inputs), progress=False)
    config.segment.model = SAMPLE_MODEL[0]
    config.spark.master = "local[2]"
    config.spark.driver_memory = "2g"
    config.spark.conf = {"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"}
    for section, values in sections.items():
        for key, value in values.items():
            setattr(getattr(config, section), key, value)
    return config


# torch and TensorFlow never share a process (importing both aborts): these modules import torch, so a pytest
# run that collects anything else leaves them out and `make test` runs them in a pytest of their own
TORCH_MODULES = {"test_pretrain_torch.py"}


def _torch_only(config) -> bool:
    names = {Path(str(arg).split("::")[0]).name for arg in config.args}
    return bool(names) and names <= TORCH_MODULES


def pytest_ignore_collect(collection_path, config):
    if collection_path.name in TORCH_MODULES and not _torch_only(config):
        return True
    return None


def pytest_report_header(config):
    if not _torch_only(config):
        return [f"left out (they import torch; run them in their own pytest, as `make test` does): "
                f"{', '.join(sorted(TORCH_MODULES))}"]
    return []


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: starts a Spark standalone cluster on loopback (minutes); skipped "
                                       "unless WWM_CLUSTER_TESTS=1, as 'make test-cluster' sets")
