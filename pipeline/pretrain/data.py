"""The tf.data input: shards + manifest -> batches of int32 features with static shapes.

TPU-ready as google-research/bert's ``input_fn_builder`` and tf-models' input reader: files sharded across
input pipelines (records when there are fewer files than pipelines), shuffled file order, interleaved reads,
a record shuffle buffer, ``batch(drop_remainder=True)``, batched ``parse_example`` and int64 -> int32.

Unlike those readers this one is deterministic, so that a resumed run reads exactly what an uninterrupted
run would have read: epoch ``e`` shuffles files and records with seeds drawn from ``(seed, e)``, and the
data position saved with a checkpoint is simply the number of batches consumed (``skip_batches``: whole
epochs are skipped by arithmetic on the manifest's record counts, the rest of one epoch is skipped while the
records are still serialized, before any parsing or masking).

``--unmasked`` shards (``word_ids`` instead of masked positions) are masked here, on the fly
(:func:`dynamic_mask`): whole words, 80/10/10 per word, ``masked_lm_prob`` from the manifest, and a fresh
mask every epoch because the masking seed of a batch is drawn from ``(seed, epoch, index in epoch)``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from pipeline.shards import manifest as shard_manifest

MASKED_OUTPUTS = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
                  "masked_lm_weights", "next_sentence_labels")


@dataclass
class Masking:
    """What :func:`dynamic_mask` needs: the manifest's rate and the vocab's [MASK] and replacement ids."""

    masked_lm_prob: float
    max_predictions: int
    mask_id: int
    replacement_ids: list[int]
    units: list[float] | None = None      # ngram / span: probabilities of units of 1, 2, ... words (wwm: None)

    @classmethod
    def from_manifest(cls, manifest: dict, vocab_path: str | None = None) -> "Masking":
        from pipeline.shards.batch import replacement_ids
        from pipeline.vocab.wordpiece import read_vocab

        path = str(vocab_path or manifest["vocab"])
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"vocab {path} (named by the manifest) is not here: pass --vocab")
        entries = read_vocab(local_copy(path))
        if len(entries) != manifest["vocab_size"]:
            raise ValueError(f"vocab {path} has {len(entries)} entries, the shards were made with "
                             f"{manifest['vocab_size']}")
        from pipeline.shards import units

        settings = manifest.get("settings", {})
        distribution = units.unit_distribution(settings.get("masking", "wwm"),
                                               settings.get("ngram_probs", "0.4,0.3,0.2,0.1"),
                                               float(settings.get("span_p", 0.2)), int(settings.get("span_max", 10)))
        return cls(masked_lm_prob=float(settings.get("masked_lm_prob", 0.15)),
                   max_predictions=int(manifest["max_predictions_per_seq"]),
                   mask_id=entries.index("[MASK]"),
                   replacement_ids=replacement_ids(entries, settings.get("lowercase", True)),
                   units=None if distribution is None else distribution.tolist())


def read_manifest(directory: str | Path) -> dict:
    """``manifest.json`` of a shard directory: a local path or any ``tf.io.gfile`` URL (gs://)."""
    with tf.io.gfile.GFile(f"{str(directory).rstrip('/')}/{shard_manifest.MANIFEST}") as f:
        return json.loads(f.read())


def local_copy(path: str) -> str:
    """``path`` itself when local, else a copy of it (``tf.io.gfile``) in a temporary file."""
    if "://" not in path:
        return path
    fd, local = tempfile.mkstemp(suffix="-" + Path(path).name)
    with tf.io.gfile.GFile(path, "rb") as src, open(fd, "wb") as dst:
        dst.write(src.read())
    return local


def feature_spec(manifest: dict) -> dict[str, tf.io.FixedLenFeature]:
    unmasked = manifest["features"] == "unmasked"
    return {name: tf.io.FixedLenFeature([length], tf.int64 if dtype == "int64" else tf.float32)
            for name, dtype, length in shard_manifest.feature_lengths(
                unmasked, manifest["max_seq_length"], manifest["max_predictions_per_seq"])}


def shard_files(directory: str | Path, manifest: dict) -> list[str]:
    """The manifest's shards that hold instances, in order (``tf.io.gfile`` paths, so gs:// works)."""
    if manifest.get("format", "tfrecord") == "parquet":
        raise ValueError("these shards were written as Parquet only (--shards-format parquet); the runner reads "
                         "the TFRecords: make them with --shards-format tfrecord or both")
    directory = str(directory).rstrip("/")
    return [f"{directory}/{s['file']}" for s in manifest["shards"] if s["instances"] > 0]


def _seed(seed: int, *values) -> tf.Tensor:
    """An int64 seed from ``seed`` and tensors, for tf.data's shuffle (any int64; 0 is fine)."""
    out = tf.constant(seed, tf.int64)
    for v in values:
        out = out * 1_000_003 + tf.cast(v, tf.int64)
    return out


def records(files: list[str], *, batch_size: int, seed: int, num_pipelines: int = 1, pipeline_id: int = 0,
            shuffle_buffer: int = 10_000, cycle_length: int = 8, skip_batches: int = 0,
            instances: list[int] | None = None) -> tf.data.Dataset:
    """Endless batches of (epoch, index of the record in its epoch, serialized record), each [batch_size].

    ``skip_batches`` resumes after that many batches. With ``instances`` (records per file, from the
    manifest) whole epochs are skipped arithmetically and only the rest of one epoch is read and dropped;
    without, every skipped record is read.
    """
    if not files:
        raise ValueError("no shard holds any instance")
    shard_records = len(files) < num_pipelines
    if not shard_records:
        files = files[pipeline_id::num_pipelines]
        if instances is not None:
            instances = instances[pipeline_id::num_pipelines]
    cycle = max(1, min(cycle_length, len(files)))
    file_names = tf.constant(files)

    def epoch(e):
        ds = tf.data.Dataset.from_tensor_slices(file_names)
        if len(files) > 1:
            ds = ds.shuffle(len(files), seed=_seed(seed, e, 1))
        ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 20), cycle_length=cycle,
                           block_length=1, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if shard_records:
            ds = ds.shard(num_pipelines, pipeline_id)
        if shuffle_buffer > 1:
            ds = ds.shuffle(shuffle_buffer, seed=_seed(seed, e, 2))
        return ds.enumerate().map(lambda i, r: (e, i, r))

    first_epoch, skip_records = 0, skip_batches * batch_size
    if instances is not None and skip_records:
        total = sum(instances)
        per_epoch = (total - pipeline_id + num_pipelines - 1) // num_pipelines if shard_records else total
        if per_epoch <= 0:
            raise ValueError(f"input pipeline {pipeline_id} gets no record")
        first_epoch, skip_records = divmod(skip_records, per_epoch)
    ds = tf.data.Dataset.range(first_epoch, sys.maxsize).flat_map(epoch)
    if skip_records:
        ds = ds.skip(skip_records)
    return ds.batch(batch_size, drop_remainder=True)


def shard_instances(manifest: dict) -> list[int]:
    """Records per file of :func:`shard_files`."""
    return [s["instances"] for s in manifest["shards"] if s["instances"] > 0]


def parse(serialized: tf.Tensor, manifest: dict) -> dict[str, tf.Tensor]:
    """A batch of Examples -> int32 features (floats stay float32); next_sentence_labels as [B]."""
    features = tf.io.parse_example(serialized, feature_spec(manifest))
    out = {name: tf.cast(t, tf.int32) if t.dtype == tf.int64 else t for name, t in features.items()}
    out["next_sentence_labels"] = tf.reshape(out["next_sentence_labels"], [-1])
    return out


def dynamic_mask(features: dict[str, tf.Tensor], seed: tf.Tensor, masking: Masking) -> dict[str, tf.Tensor]:
    """Whole-word masking of an unmasked batch, drawn from the stateless ``seed`` (shape [2], int64).

    Per instance, as the shards stage: ``wanted = min(P, max(1, round(n * masked_lm_prob)))`` with ``n`` the
    real tokens ([CLS]/[SEP] included); words are tried in a random order and taken when their tokens still
    fit in ``wanted`` (a word that does not fit is skipped, as in google-research/bert's loop); each chosen
    word is [MASK] 80%, a random token 10%, kept 10%, all its tokens alike.
    """
    ids, word_ids, input_mask = features["input_ids"], features["word_ids"], features["input_mask"]
    batch, length = ids.shape
    predictions = masking.max_predictions
    groups = length + 1                                          # word ids run 1..L at most; 0 = special
    seeds = [tf.random.experimental.stateless_fold_in(seed, k) for k in range(4)]
    real = tf.reduce_sum(input_mask, axis=1)
    wanted = tf.minimum(predictions, tf.maximum(1, tf.cast(tf.round(tf.cast(real, tf.float32)
                                                                       * masking.masked_lm_prob), tf.int32)))
    rows = tf.range(batch)[:, None] * groups
    word_len = tf.reshape(tf.math.unsorted_segment_sum(tf.ones_like(word_ids), word_ids + rows,
                                                       batch * groups), [batch, groups])
    is_word = (word_len > 0) & (tf.range(groups)[None, :] > 0)
    keys = tf.where(is_word, tf.random.stateless_uniform([batch, groups], seeds[0]), 2.0)
    if masking.units is not None:
        chosen, unit_of = _choose_units(word_ids, word_len, is_word, keys, wanted, predictions, masking.units,
                                        tf.random.experimental.stateless_fold_in(seed, 4))
        decision = tf.gather(tf.gather(tf.random.stateless_uniform([batch, groups], seeds[1]), unit_of, batch_dims=1),
                             word_ids, batch_dims=1)
        return _finish(features, ids, input_mask, chosen, decision, seeds, masking)
    order = tf.argsort(keys, axis=1, stable=True)
    sorted_len = tf.gather(word_len, order, batch_dims=1)
    sorted_len = tf.where(tf.gather(is_word, order, batch_dims=1), sorted_len, length + 1)   # never fits

    def choose(covered, word_len):                               # google's loop: a word that does not fit
        fits = covered + word_len <= wanted                      # is skipped and shorter ones still tried
        return tf.where(fits, covered + word_len, covered)

    covered_after = tf.transpose(tf.scan(choose, tf.transpose(sorted_len), initializer=tf.zeros_like(wanted)))
    covered_before = tf.concat([tf.zeros_like(wanted)[:, None], covered_after[:, :-1]], axis=1)
    take_sorted = covered_after > covered_before
    take = tf.gather(take_sorted, tf.argsort(order, axis=1), batch_dims=1)        # back to word-id order
    chosen = tf.gather(take, word_ids, batch_dims=1) & (word_ids > 0)
    decision = tf.gather(tf.random.stateless_uniform([batch, groups], seeds[1]), word_ids, batch_dims=1)
    return _finish(features, ids, input_mask, chosen, decision, seeds, masking)


def _finish(features, ids, input_mask, chosen, decision, seeds, masking: Masking) -> dict[str, tf.Tensor]:
    """80/10/10 of the chosen positions (``decision`` per position), and the masked features."""
    batch, length = ids.shape
    predictions = masking.max_predictions
    pool = tf.constant(masking.replacement_ids, tf.int32)
    random_ids = tf.gather(pool, tf.random.stateless_uniform([batch, length], seeds[2], 0, len(masking.replacement_ids),
                                                             dtype=tf.int32))
    masked_ids = tf.where(chosen & (decision < 0.8), masking.mask_id,
                          tf.where(chosen & (decision >= 0.9), random_ids, ids))
    positions = tf.range(length)[None, :]
    order_key = tf.sort(tf.where(chosen, positions, length + positions), axis=1)[:, :predictions]
    valid = order_key < length
    masked_positions = tf.where(valid, order_key, 0)
    labels = tf.where(valid, tf.gather(ids, masked_positions, batch_dims=1), 0)
    return {"input_ids": masked_ids, "input_mask": input_mask, "segment_ids": features["segment_ids"],
            "masked_lm_positions": masked_positions, "masked_lm_ids": labels,
            "masked_lm_weights": tf.cast(valid, tf.float32),
            "next_sentence_labels": features["next_sentence_labels"]}


def _choose_units(word_ids, word_len, is_word, keys, wanted, predictions: int, distribution: list[float], seed):
    """n-gram / span units of a batch, as ``pipeline.shards.units.choose_units`` (in TensorFlow): in rounds, each
    instance short of its stop draws a unit length (words) and takes the first start in its word order where that
    many consecutive free words of one run fit under ``predictions``; it stops when none fits.  Returns the
    chosen positions ([B, L] bool) and, per word id, the word id its unit starts at ([B, L + 1])."""
    batch, length = word_ids.shape
    groups = length + 1
    column = tf.range(groups)[None, :]
    rows = tf.range(batch)[:, None] * groups
    position = tf.broadcast_to(tf.range(length)[None, :], [batch, length])
    first = tf.reshape(tf.math.unsorted_segment_min(position, word_ids + rows, batch * groups), [batch, groups])
    last = tf.reshape(tf.math.unsorted_segment_max(position, word_ids + rows, batch * groups), [batch, groups])
    next_first = tf.concat([first[:, 1:], tf.fill([batch, 1], -5)], axis=1)
    next_word = tf.concat([is_word[:, 1:], tf.zeros([batch, 1], tf.bool)], axis=1)
    adjacent = is_word & next_word & (next_first == last + 1)      # word w + 1 follows w, nothing between
    ends_run = is_word & ~adjacent
    end_at = tf.where(ends_run, column, groups)
    # the last word of each word's run: the first run end at or after it
    later = column[:, None, :] >= column[:, :, None]                            # [1, w, j]: j >= w
    run_end = tf.reduce_min(tf.where(later, end_at[:, None, :], groups), axis=2)
    tokens_before = tf.concat([tf.zeros([batch, 1], tf.int32), tf.cumsum(word_len, axis=1)], axis=1)
    words = tf.reduce_sum(tf.cast(is_word, tf.int32), axis=1)
    tokens = tf.reduce_sum(word_len * tf.cast(is_word, tf.int32), axis=1)
    probs = tf.constant(distribution, tf.float64)
    lengths = tf.range(1, len(distribution) + 1, dtype=tf.float64)
    ratio = tf.reduce_sum(lengths ** 2 * probs) / tf.reduce_sum(lengths * probs) / 2
    per_word = tf.cast(tokens, tf.float64) / tf.cast(tf.maximum(words, 1), tf.float64)
    stop = tf.maximum(1, tf.cast(tf.round(tf.cast(wanted, tf.float64) - (per_word * ratio - 0.5)), tf.int32))
    stop = tf.minimum(stop, wanted)
    cdf = tf.cast(tf.math.cumsum(probs) / tf.reduce_sum(probs), tf.float32)
    cdf = tf.concat([cdf[:-1], [1.0]], axis=0)

    def body(k, covered, unit_of, need, room, retry, active):
        u = tf.random.stateless_uniform([batch], tf.random.experimental.stateless_fold_in(seed, k))
        below = tf.reduce_sum(tf.cast(cdf[None, :] <= u[:, None], tf.int32), axis=1)    # searchsorted, right
        m = tf.where(retry, 1, tf.minimum(below, len(distribution) - 1) + 1)[:, None]
        end = tf.minimum(column + m, groups)
        covered_before = tf.concat([tf.zeros([batch, 1], tf.int32), tf.cumsum(tf.cast(covered, tf.int32), axis=1)],
                                   axis=1)
        free = tf.gather(covered_before, end, batch_dims=1) - covered_before[:, :groups] == 0
        unit_tokens = tf.gather(tokens_before, end, batch_dims=1) - tokens_before[:, :groups]
        valid = (is_word & free & (column + m - 1 <= run_end) & (unit_tokens <= room[:, None])
                 & active[:, None])
        start = tf.argmin(tf.where(valid, keys, 3.0), axis=1, output_type=tf.int32)
        found = tf.reduce_any(valid, axis=1)
        inside = found[:, None] & (column >= start[:, None]) & (column < start[:, None] + m)
        taken = tf.where(found, tf.gather(unit_tokens, start[:, None], batch_dims=1)[:, 0], 0)
        # a first unit that fits nowhere: one word instead, once (as the shards stage)
        again = active & ~found & (room == predictions) & ~retry
        need, room = need - taken, room - taken
        return (k + 1, covered | inside, tf.where(inside, start[:, None], unit_of), need, room, again,
                (found & (need > 0)) | again)

    state = (tf.constant(0), tf.zeros([batch, groups], tf.bool), tf.zeros([batch, groups], tf.int32), stop,
             tf.fill([batch], predictions), tf.zeros([batch], tf.bool), stop > 0)
    _, covered, unit_of, _, _, _, _ = tf.while_loop(lambda k, *rest: (k < predictions + 1) & tf.reduce_any(rest[-1]),
                                                    body, state)
    chosen = tf.gather(covered, word_ids, batch_dims=1) & (word_ids > 0)
    return chosen, unit_of


def make_dataset(directory: str | Path, manifest: dict, *, batch_size: int, seed: int = 12345,
                 num_pipelines: int = 1, pipeline_id: int = 0, skip_batches: int = 0,
                 shuffle_buffer: int = 10_000, cycle_length: int = 8, masking: Masking | None = None,
                 prefetch: bool = True) -> tf.data.Dataset:
    """Endless batches of ``MASKED_OUTPUTS`` features ([batch, ...] static shapes, int32 / float32)."""
    unmasked = manifest["features"] == "unmasked"
    if unmasked and masking is None:
        masking = Masking.from_manifest(manifest)
    ds = records(shard_files(directory, manifest), batch_size=batch_size, seed=seed, num_pipelines=num_pipelines,
                 pipeline_id=pipeline_id, shuffle_buffer=shuffle_buffer, cycle_length=cycle_length,
                 skip_batches=skip_batches, instances=shard_instances(manifest))

    def finish(epoch, index, serialized):
        features = parse(serialized, manifest)
        if unmasked:
            batch_seed = tf.random.experimental.stateless_fold_in(
                tf.random.experimental.stateless_fold_in(tf.constant([seed, 7919], tf.int64), epoch[0]), index[0])
            features = dynamic_mask(features, batch_seed, masking)
        return {name: features[name] for name in MASKED_OUTPUTS}

    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE) if prefetch else ds


def distributed_dataset(strategy: tf.distribute.Strategy, directory: str | Path, manifest: dict, *,
                        global_batch_size: int, start_step: int = 0, **options):
    """``make_dataset`` per input pipeline through ``distribute_datasets_from_function``.

    Each pipeline reads its share of the files, batches ``global_batch_size / replicas`` and, when resuming
    at ``start_step``, skips the batches its replicas consumed before (exact for the same replica count).
    """
    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        per_replica = context.get_per_replica_batch_size(global_batch_size)
        per_pipeline = context.num_replicas_in_sync // context.num_input_pipelines
        return make_dataset(directory, manifest, batch_size=per_replica, num_pipelines=context.num_input_pipelines,
                            pipeline_id=context.input_pipeline_id, skip_batches=start_step * per_pipeline,
                            **options)

    return strategy.distribute_datasets_from_function(dataset_fn)
