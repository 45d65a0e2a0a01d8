"""Build and run the Beam pipeline of one stage; collect its counters.

The local default is the in-process ``FnApiRunner`` (multi-process with
``direct_num_workers`` and ``direct_running_mode=multi_processing``), chosen
explicitly because Beam's ``DirectRunner`` first tries to download Prism.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipeline.beam.transforms import NAMESPACE, CleanDocuments, ExactDedup, ReadInputs, ReadTable, WriteTable
from pipeline.config import Config
from pipeline.runtime import export_worker_environment


def pipeline_options(config: Config) -> PipelineOptions:
    options = PipelineOptions(list(config.beam.pipeline_args))
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = config.beam.direct_num_workers
    direct.direct_running_mode = config.beam.direct_running_mode
    return options


def _runner(config: Config):
    return FnApiRunner() if config.beam.runner == "FnApiRunner" else config.beam.runner


def _run(config: Config, build) -> dict[str, int]:
    export_worker_environment()
    pipeline = beam.Pipeline(runner=_runner(config), options=pipeline_options(config))
    build(pipeline)
    result = pipeline.run()
    result.wait_until_finish()
    counters: dict[str, int] = {}
    for metric in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = metric.committed if metric.committed is not None else metric.attempted
        counters[metric.key.metric.name] = counters.get(metric.key.metric.name, 0) + int(value or 0)
    return dict(sorted(counters.items()))


def start(config: Config) -> None:
    """Nothing to start ahead: the in-process runner starts with each pipeline."""


def ingest(config: Config, files, out) -> dict[str, int]:
    def build(p):
        read = p | "Ingest" >> ReadInputs(files, config.ingest.max_record_bytes, config.progress)
        read.documents | "WriteDocuments" >> WriteTable(out.table("documents"), "documents")
        read.quarantined | "WriteQuarantined" >> WriteTable(out.table("quarantined"), "quarantined")
    return _run(config, build)


def clean(config: Config, documents_dir: str, out) -> dict[str, int]:
    def build(p):
        docs = p | "ReadDocuments" >> ReadTable(documents_dir)
        cleaned = docs | "Clean" >> CleanDocuments(config.clean, config.progress)
        cleaned.documents | "WriteDocuments" >> WriteTable(out.table("documents"), "documents")
        cleaned.rejected | "WriteRejected" >> WriteTable(out.table("rejected"), "rejected")
        cleaned.quarantined | "WriteQuarantined" >> WriteTable(out.table("quarantined"), "quarantined")
    return _run(config, build)


def dedup(config: Config, documents_dir: str, out) -> dict[str, int]:
    def build(p):
        if config.dedup.exact:
            result = p | "ExactDedup" >> ExactDedup(documents_dir, config.dedup.key_convert)
            kept, duplicates, quarantined = result["documents"], result["duplicates"], result["quarantined"]
        else:
            kept = p | "ReadDocuments" >> ReadTable(documents_dir)
            duplicates = p | "NoDuplicates" >> beam.Create([])
            quarantined = p | "NoQuarantined" >> beam.Create([])
        kept | "WriteDocuments" >> WriteTable(out.table("documents"), "documents")
        duplicates | "WriteDuplicates" >> WriteTable(out.table("duplicates"), "duplicates")
        quarantined | "WriteQuarantined" >> WriteTable(out.table("quarantined"), "quarantined")
    return _run(config, build)
