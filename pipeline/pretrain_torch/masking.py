"""Dynamic masking of unmasked shards with the shards stage's own masking code (no TensorFlow, no torch).

An unmasked record carries ``word_ids`` (the whole-word group of each position, 0 for specials and
padding); they give back the group flags the shards stage masks from (``START`` where a group begins,
``CONT`` inside it, ``SPECIAL`` elsewhere), and ``BatchEncoder.mask_batch`` (``pipeline/shards/batch.py``)
masks the batch exactly as the shards stage would for the same instance seeds: same positions, same
80/10/10, same labels, with the masking settings of the manifest (rate, decision per word or token, and any
scheme the stage adds). Each instance's seed here is drawn from (run seed, epoch, stream, index in the
stream's epoch), so every epoch masks afresh and a resumed run masks as the uninterrupted one.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.shards.seeds import mix
from pipeline.shards.tokens import CONT, SPECIAL, START


def flags_from_word_ids(word_ids: np.ndarray) -> np.ndarray:
    """Group flags (n x L uint8) from word ids: a group starts where the id changes to a non-zero one."""
    flags = np.full(word_ids.shape, SPECIAL, np.uint8)
    real = word_ids > 0
    previous = np.zeros_like(word_ids)
    previous[:, 1:] = word_ids[:, :-1]
    flags[real & (word_ids != previous)] = START
    flags[real & (word_ids == previous)] = CONT
    return flags


def instance_seeds(seed: int, epoch: np.ndarray, stream: int, index: np.ndarray) -> np.ndarray:
    """A uint64 mask seed per (run seed, epoch, stream, index in the epoch)."""
    base = mix(np.uint64(seed & 0xFFFFFFFFFFFFFFFF), np.asarray(epoch, np.uint64) * np.uint64(1 << 20)
               + np.uint64(stream))
    return mix(base, np.asarray(index, np.uint64))


class DynamicMasker:
    """Masks batches of unmasked features with ``BatchEncoder.mask_batch`` for the manifest's settings."""

    def __init__(self, manifest: dict, vocab_path: str | None = None) -> None:
        from pipeline.config import ShardOptions
        from pipeline.shards.batch import BatchEncoder
        from pipeline.shards.batch import replacement_ids
        from pipeline.vocab.wordpiece import read_vocab

        path = str(vocab_path or manifest["vocab"])
        try:
            entries = read_vocab(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"vocab {path} (named by the manifest) is not here: pass --vocab") from None
        if len(entries) != manifest["vocab_size"]:
            raise ValueError(f"vocab {path} has {len(entries)} entries, the shards were made with "
                             f"{manifest['vocab_size']}")
        known = {f.name for f in dataclasses.fields(ShardOptions)}
        settings = {k: v for k, v in manifest.get("settings", {}).items() if k in known}
        settings.update(unmasked=False, max_seq_length=manifest["max_seq_length"],
                        max_predictions_per_seq=manifest["max_predictions_per_seq"])
        self.options = ShardOptions(**settings)
        index = {entry: i for i, entry in enumerate(entries)}
        self.encoder = BatchEncoder(self.options, len(entries), cls=index["[CLS]"], sep=index["[SEP]"],
                                    mask=index["[MASK]"],
                                    replacements=replacement_ids(entries, self.options.lowercase))

    def __call__(self, features: dict[str, np.ndarray], seeds: np.ndarray) -> dict[str, np.ndarray]:
        """Unmasked features (``input_ids``, ``input_mask``, ``segment_ids``, ``word_ids``,
        ``next_sentence_labels``) -> the masked layout (``reader.MASKED_OUTPUTS``)."""
        ids = features["input_ids"]
        lengths = features["input_mask"].sum(axis=1).astype(np.int64)
        flags = flags_from_word_ids(features["word_ids"])
        masked, positions, labels, counts, _ = self.encoder.mask_batch(
            ids.astype(np.int32), flags, lengths, np.asarray(seeds, np.uint64))
        weights = (np.arange(positions.shape[1])[None, :] < counts[:, None]).astype(np.float32)
        return {"input_ids": masked.astype(np.int64), "input_mask": features["input_mask"],
                "segment_ids": features["segment_ids"], "masked_lm_positions": positions,
                "masked_lm_ids": labels, "masked_lm_weights": weights,
                "next_sentence_labels": features["next_sentence_labels"]}
