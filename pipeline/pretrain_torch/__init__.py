"""The PyTorch pretraining runner (``wwm pretrain --framework torch``), for GPUs without TensorFlow.

Reads the same shards and ``manifest.json`` as the TensorFlow runner (which stays the default, and the TPU
path) and trains transformers' ``BertForPreTraining`` (MLM + NSP) or ``BertForMaskedLM`` (roberta mode)
from the same ``bert_config.json`` presets. Modules:

- ``reader``: TFRecord framing with CRC checks, ``tf.train.Example`` decoding, Parquet instances, and the
  seeded, sharded (rank x dataloader worker), resumable record stream; no TensorFlow, no torch.
- ``masking``: dynamic masking of unmasked shards with the shards stage's own ``BatchEncoder.mask_batch``.
- ``data``: the torch ``IterableDataset`` and DataLoader (workers decode and mask), resumable at any batch.
- ``train``: the loop (AdamW, warm-up + linear decay, clipping, bf16 autocast, torch.compile, DDP).
- ``events``: TensorBoard scalar event files written without TensorFlow.
- ``export``: the Hugging Face directory, and the google checkpoint through ``google_export`` in a child
  process (the only place TensorFlow is imported).
"""

import os

os.environ.setdefault("USE_TF", "0")          # transformers, when first imported after this: no TensorFlow
