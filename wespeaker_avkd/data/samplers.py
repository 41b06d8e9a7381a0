"""Deterministic, DDP-aware batch samplers: every draw comes from (seed, epoch, rank, batch index)."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from wespeaker_avkd.utils.errors import InputValueError

# An item of a batch: (dataset index, number of frames for this batch or 0, per-item seed for crops/frames).
BatchItem = tuple[int, int, int]


def seeded_rng(*path: int) -> np.random.Generator:
    """A numpy Generator determined only by the integer path (seed, epoch, rank, batch, ...)."""
    return np.random.default_rng(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in path]))


def batch_draws(seed: int, epoch: int, rank: int, batch: int, size: int,
                num_frms: Sequence[int] | None) -> tuple[int, list[int]]:
    """(frames, item seeds) of training batch `batch` of `rank` in `epoch`: one chunk length drawn from
    [min, max] of num_frms (0 without), one seed per item for its crops, frames and dither."""
    rng = seeded_rng(seed, epoch, rank, batch)
    frames = int(rng.integers(num_frms[0], num_frms[1] + 1)) if num_frms else 0
    return frames, [int(s) for s in rng.integers(0, 2 ** 31 - 1, size)]


class SeededBatchSampler(Sampler[list]):
    """Shuffled batches of (index, num_frames, item_seed), sharded over ranks; call set_epoch every epoch.

    All ranks shuffle with the same (seed, epoch) permutation, pad it (wrapping) to a multiple of world_size
    and take every world_size-th index from `rank`, so every rank gets the same number of batches (DDP).
    With num_frms = (min, max) each batch draws one length in [min, max] frames. num_samples (WeSpeaker's
    sample_num_per_epoch) makes an epoch that many items: the epoch's order cut short or repeated.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False, shuffle: bool = True, num_frms: Sequence[int] | None = None,
                 num_samples: int | None = None) -> None:
        if num_items <= 0:
            raise InputValueError("SeededBatchSampler: the dataset is empty")
        if not 0 <= rank < world_size:
            raise ValueError(f"SeededBatchSampler: rank {rank} not in [0, {world_size})")
        if num_frms is not None and not (0 < int(num_frms[0]) <= int(num_frms[1])):
            raise ValueError(f"SeededBatchSampler: num_frms must be [min, max] with 0 < min <= max, got {num_frms}")
        self.num_items, self.batch_size = num_items, int(batch_size)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.drop_last, self.shuffle = bool(drop_last), bool(shuffle)
        self.num_frms = None if num_frms is None else (int(num_frms[0]), int(num_frms[1]))
        self.num_samples = num_items if num_samples is None else int(num_samples)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shuffling and crops the next iteration produces."""
        self.epoch = int(epoch)

    def _shard(self) -> np.ndarray:
        """This rank's indices for the current epoch."""
        order = seeded_rng(self.seed, self.epoch).permutation(self.num_items) if self.shuffle \
            else np.arange(self.num_items)
        per_rank = -(-self.num_items // self.world_size)
        order = np.resize(order, per_rank * self.world_size)  # wrap around, like DistributedSampler's padding
        return np.resize(order[self.rank::self.world_size], self._per_rank())

    def _per_rank(self) -> int:
        """Items of one rank per epoch: the data once (padded to every rank), or num_samples / world_size."""
        if self.num_samples == self.num_items:
            return -(-self.num_items // self.world_size)
        return self.num_samples // self.world_size  # WeSpeaker: sample_num_per_epoch // world_size // batch

    def __len__(self) -> int:
        per_rank = self._per_rank()
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def __iter__(self) -> Iterator[list]:
        shard = self._shard()
        for b in range(len(self)):
            idx = shard[b * self.batch_size:(b + 1) * self.batch_size]
            frames, item_seeds = batch_draws(self.seed, self.epoch, self.rank, b, len(idx), self.num_frms)
            yield [(int(i), frames, s) for i, s in zip(idx, item_seeds)]


class SequentialBatchSampler(Sampler[list]):
    """Evaluation batches in dataset order, items as (index, 0, 0)."""

    def __init__(self, num_items: int, batch_size: int) -> None:
        self.num_items, self.batch_size = num_items, int(batch_size)

    def __len__(self) -> int:
        return -(-self.num_items // self.batch_size)

    def __iter__(self) -> Iterator[list]:
        for start in range(0, self.num_items, self.batch_size):
            yield [(i, 0, 0) for i in range(start, min(start + self.batch_size, self.num_items))]


class LengthGroupedBatchSampler(Sampler[list]):
    """Evaluation batches of items with equal `lengths` (e.g. frame counts), items as (index, 0, 0).

    Items are ordered by (length, index) and cut into batches of at most batch_size that never mix two
    lengths, so a batch stacks without padding and every item's result equals its batch-of-one result.
    A length of None (unknown) puts the item in a batch of its own.
    """

    def __init__(self, lengths: Sequence[int | None], batch_size: int) -> None:
        self.batch_size = max(1, int(batch_size))
        self.batches: list[list[int]] = []
        known = sorted((int(n), i) for i, n in enumerate(lengths) if n is not None)
        current: list[int] = []
        current_len = None
        for n, i in known:
            if current and (n != current_len or len(current) == self.batch_size):
                self.batches.append(current)
                current = []
            current.append(i)
            current_len = n
        if current:
            self.batches.append(current)
        self.batches.extend([i] for i, n in enumerate(lengths) if n is None)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list]:
        for batch in self.batches:
            yield [(i, 0, 0) for i in batch]
