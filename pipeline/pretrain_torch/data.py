"""Batches for the PyTorch runner: ``reader.Stream`` per (rank, dataloader worker), decoded, masked and
collated in the workers, in an order that a resumed run reproduces.

The DataLoader takes batches from its workers in turn (batch ``b`` of a rank from worker ``b % W``). A
run resumed after ``k`` batches gives worker ``w`` the role of worker ``(w + k) % W`` and has it skip the
batches that role made before, so batch ``k`` comes next, as in the uninterrupted run.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pipeline.pretrain_torch import reader
from pipeline.pretrain_torch.masking import DynamicMasker, instance_seeds


class ShardBatches(IterableDataset):
    """Endless batches (dicts of tensors, ``reader.MASKED_OUTPUTS``) of one rank's share of the shards."""

    def __init__(self, directory: str, manifest: dict, *, batch_size: int, seed: int = 12345, rank: int = 0,
                 world: int = 1, workers: int = 0, start_batch: int = 0, shuffle_buffer: int = 10_000,
                 vocab: str | None = None, as_numpy: bool = False) -> None:
        self.directory, self.manifest = directory, manifest
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world
        self.workers, self.start_batch, self.shuffle_buffer = max(1, workers), start_batch, shuffle_buffer
        self.features = reader.layout(manifest)
        self.files, self.counts = reader.shard_files(directory, manifest)
        self.unmasked = manifest["features"] == "unmasked"
        self.vocab, self.as_numpy = vocab, as_numpy
        self.masker = DynamicMasker(manifest, vocab) if self.unmasked else None

    def stream(self, role: int) -> reader.Stream:
        return reader.Stream(self.files, self.counts, [f.name for f in self.features], seed=self.seed,
                             stream=self.rank * self.workers + role, streams=self.world * self.workers,
                             shuffle_buffer=self.shuffle_buffer)

    def __iter__(self):
        info = get_worker_info()
        worker = info.id if info is not None else 0
        if info is not None and info.num_workers != self.workers:
            raise ValueError(f"ShardBatches made for {self.workers} workers runs in {info.num_workers}")
        W, k = self.workers, self.start_batch
        role = (worker + k) % W
        skip_batches = (k - role + W - 1) // W           # batches of this role among the first k
        stream = self.stream(role)
        items = stream.items(skip=skip_batches * self.batch_size)
        # (a rank with one worker still interleaves nothing: W = 1 and role 0)
        while True:
            chunk = [next(items) for _ in range(self.batch_size)]
            yield self.batch(chunk, stream.stream)

    def batch(self, chunk: list, stream: int):
        features = reader.decode_batch([item[2:] for item in chunk], self.features)
        if self.unmasked:
            epochs = np.asarray([item[0] for item in chunk], np.uint64)
            index = np.asarray([item[1] for item in chunk], np.uint64)
            features = self.masker(features, instance_seeds(self.seed, epochs, stream, index))
        out = {name: features[name] for name in reader.MASKED_OUTPUTS}
        if self.as_numpy:
            return out
        return {name: torch.from_numpy(np.array(v, copy=True, order="C")) for name, v in out.items()}


def loader(dataset: ShardBatches, workers: int, seed: int, pin_memory: bool = False) -> DataLoader:
    """A DataLoader over ``dataset`` (already batched); its own generator, so the global torch RNG (dropout)
    is not drawn from when an iterator starts."""
    return DataLoader(dataset, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(seed), persistent_workers=False,
                      prefetch_factor=4 if workers else None)
