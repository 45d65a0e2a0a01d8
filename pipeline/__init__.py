"""wwm: raw Chinese text to whole-word-masked BERT pretraining data.

The stage logic lives in plain Python (``pipeline.ingest``, ``pipeline.clean``,
``pipeline.dedup``, ...); ``pipeline.beam`` and ``pipeline.spark`` are the thin
engine adapters that read, shuffle and write around it.
"""

__version__ = "0.1.0"
