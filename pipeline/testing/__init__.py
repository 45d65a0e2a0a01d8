"""Tooling for the tests and the benchmarks, not used by the pipeline itself.

``dedup_evaluation``: the labelled near-duplicate set and its scoring (tests/test_near_dedup_quality.py,
bench/dedup.py) and ``shared_documents`` (documents from the shared corpora for the benchmarks).
``tiny_neural``: a small randomly initialised LTP model for the neural segmenter's tests and benchmark.
"""
