"""What an engine adapter is: one method per stage, each taking a :class:`Job` and returning its counters.

An adapter (``pipeline.beam.runner.BeamEngine``, ``pipeline.spark.jobs.SparkEngine``)
reads the job's input, groups, shuffles and writes the stage's tables into
``job.out``; every decision is the core's (``pipeline/<stage>/``).  The driver
(:mod:`pipeline.stages`) finds the input, runs the method and finishes the
stage (accounting, stats, publication).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Protocol

from pipeline.config import Config, ConfigError
from pipeline.outputs import StageOutput

Counts = dict[str, int]


@dataclasses.dataclass(frozen=True)
class Job:
    """One stage's work for an engine: where to read, where to write.

    ``source`` is the input table (a URI or local path string); ingest reads
    ``files`` instead; the shards stage also gets the ``vocab`` file and its
    number of ``pools``.  ``work`` is a scratch directory inside the stage's
    temporary output (deleted before it is published).
    """

    config: Config
    out: StageOutput
    source: str = ""
    files: tuple = ()
    vocab: str = ""
    pools: int = 0

    @property
    def work(self) -> str:
        return self.out.path("_work")

    @property
    def progress_dir(self) -> str | None:
        return self.out.progress_dir


class Engine(Protocol):
    """An engine adapter.  Every stage method writes the stage's tables (``job.out.table(name)``) and returns
    the counters of what it did; ``vocab`` also writes its pre-token counts as ``token<TAB>count`` files under
    ``job.work`` (:func:`pipeline.vocab.stage.read_work_counts`)."""

    def start(self, config: Config) -> None: ...

    def ingest(self, job: Job) -> Counts: ...

    def clean(self, job: Job) -> Counts: ...

    def dedup(self, job: Job) -> Counts: ...

    def segment(self, job: Job) -> Counts: ...

    def vocab(self, job: Job) -> Counts: ...

    def shards(self, job: Job) -> Counts: ...

    def shared_ids(self, job: Job) -> list[str]:
        """The ids taken by more than one row of the documents table ``job.source``: a group by id on the
        engine, so that only these reach the driver (ingest's finish renames all but one holder of each)."""
        ...


ENGINES = {"beam": "pipeline.beam.runner", "spark": "pipeline.spark.jobs"}


def engine(name: str) -> Engine:
    """The engine adapter of ``name`` (its module's ``ENGINE``), imported only when asked for."""
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r} (beam or spark)")
    return importlib.import_module(ENGINES[name]).ENGINE


@dataclasses.dataclass
class Plan:
    """What the driver finds before a stage's engine runs: the job's input, the stats' ``input`` entry, the
    progress monitor's totals, and whatever the stage's finish needs (``info``).  ``engine`` is False for a
    stage with nothing for an engine to do (vocab with a given vocab file)."""

    source: str = ""
    files: tuple = ()
    vocab: str = ""
    pools: int = 0
    read: int = 0
    input: dict = dataclasses.field(default_factory=dict)
    monitor: dict = dataclasses.field(default_factory=dict)
    info: dict = dataclasses.field(default_factory=dict)
    engine: bool = True
    config: "Config | None" = None     # the configuration the engine runs with, where the plan completes it


@dataclasses.dataclass
class Ran:
    """A stage's engine step done: what its finish (``StageSpec.finish``) builds the stats from."""

    stage: str
    config: Config
    plan: Plan
    out: StageOutput
    counters: Counts
    tables: dict[str, int]
    seconds: float
    startup: float
    progress: dict
