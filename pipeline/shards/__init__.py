"""The shards stage: segmented documents -> whole-word-masked TFRecord shards in the google-research/bert format.

One module per step: ``tokens`` (sentences and segmenter words -> WordPiece ids with word groups),
``instances`` (bert A/B pairs or roberta packing), ``batch`` (whole-word masking, the replacement ids
and the Example encoding of a pool's instances at once, with NumPy), ``tfrecord``
(tf.train.Example bytes and TFRecord framing, without TensorFlow), ``seeds`` (every random choice seeded
from the global seed and the document), ``builder`` (a pool of documents -> keyed instances, the shard
balancing plan, the shard writer), ``spill`` (keyed records column-wise and their binary spill format),
``encoding`` and ``batch`` (the fast paths of tokenizing and of masking/encoding), ``units`` (n-gram and span
masking units), ``mixing`` (per-source weights), ``parquet`` (Parquet shards) and ``manifest``.
"""
