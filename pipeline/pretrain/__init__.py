"""The bundled TensorFlow 2 pretraining runner (``wwm pretrain``).

Reads the shards stage's TFRecords and ``manifest.json`` and trains a BERT (MLM + NSP) or RoBERTa-style
(MLM only) model on TPU, GPUs or CPU with one code path. Modules, one per concern:

- ``config``: ``bert_config.json`` (google-research/bert's format) and presets from tiny to large.
- ``data``: the tf.data input (static shapes, int32, files sharded per input pipeline, deterministic so a
  resumed run reads exactly what an uninterrupted one would) and dynamic whole-word masking.
- ``model``: the BERT encoder, the tied masked-LM head and the NSP head, written here on ``tf.Module``.
- ``losses``: masked-LM and NSP losses and the metric sums.
- ``optimization``: AdamW and LAMB (as in the LAMB paper) and the warm-up + linear-decay schedule.
- ``train``: strategy selection and the custom training loop, checkpoints and resume.
- ``export``: google-format ``bert_model.ckpt`` and a Hugging Face folder, and ``--init_checkpoint``.

TensorFlow is imported by the submodules, never by this package or by the pipeline's stages.
"""
