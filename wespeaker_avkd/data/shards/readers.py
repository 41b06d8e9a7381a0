"""The shard datasets: training batches over the shards (iterable, DDP rank x worker split, shuffle buffer)
and whole utterances for evaluation (map-style); the reading order is described in the package docstring."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from wespeaker_avkd.data.datasets import KeyedDataset, collate_batch, keyed_item
from wespeaker_avkd.data.samplers import batch_draws, seeded_rng
from wespeaker_avkd.data.shards.codecs import Codec
from wespeaker_avkd.data.shards.format import DEFAULT_SHUFFLE_SIZE, ShardEntry, ShardError
from wespeaker_avkd.data.shards.index import MemberReader, ShardIndex


def _read_item(reader: MemberReader, entry: ShardEntry, postfixes: Sequence[str]) -> list[bytes]:
    return [reader.read(entry, p) for p in postfixes]


# ====================================================================== training: iterable over shards
def epoch_batches(counts: Sequence[int], batch_size: int, seed: int, epoch: int, rank: int, world_size: int,
                  shuffle: bool, shuffle_size: int, drop_last: bool) -> list[np.ndarray]:
    """The item numbers (positions in the index's list order) of rank's batches in `epoch` (see the module
    docstring): shards in list order or a (seed, epoch) permutation, contiguous equal rank parts padded by
    wrapping, block shuffle of shuffle_size, cut into batches of batch_size."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} not in [0, {world_size})")
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    total = int(starts[-1])
    if total == 0:
        raise ValueError("the shards hold no utterance")
    order = seeded_rng(seed, epoch, 1).permutation(len(counts)) if shuffle else np.arange(len(counts))
    sequence = np.concatenate([np.arange(starts[s], starts[s + 1]) for s in order])
    per_rank = -(-total // world_size)
    part = np.resize(sequence, per_rank * world_size)[rank * per_rank:(rank + 1) * per_rank]
    if shuffle:
        for b, start in enumerate(range(0, per_rank, shuffle_size)):
            block = part[start:start + shuffle_size]
            part[start:start + shuffle_size] = block[seeded_rng(seed, epoch, rank, b, 2).permutation(len(block))]
    num = per_rank // batch_size if drop_last else -(-per_rank // batch_size)
    return [part[b * batch_size:(b + 1) * batch_size] for b in range(num)]


class ShardItems:
    """What every shard dataset holds: the index, a member reader, the codec, labels and teacher embeddings
    aligned with the index entries."""

    def __init__(self, index: ShardIndex, codec: Codec, labels: Sequence[int] | None = None,
                 teacher: np.ndarray | None = None) -> None:
        self.index, self.codec = index, codec
        self.reader = MemberReader(index.paths)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.teacher = teacher

    def name(self, entry: ShardEntry) -> str:
        """'<tar>:<key>' for messages."""
        return f"{self.index.paths[entry.shard]}:{entry.key}"

    def members(self, entry: ShardEntry, rng: np.random.Generator | None) -> list[str]:
        """The codec's members of `entry` for one item; a missing member is an error naming the tar."""
        try:
            return self.codec.members(entry, rng)
        except ShardError as e:
            raise ShardError(f"{self.index.paths[entry.shard]}: {e}") from None

    def item(self, i: int, data: Sequence[bytes], num_frames: int, rng: np.random.Generator | None) -> dict:
        """The item dict of entry i (KeyedDataset's form) from its members' bytes."""
        entry = self.index.entry(i)
        return keyed_item(entry.key, self.codec.decode(entry, data, self.name(entry), num_frames, rng), i,
                          self.labels, self.teacher)


class ShardTrainDataset(IterableDataset):
    """Training batches read from shards (see the module docstring); call set_epoch before each epoch."""

    def __init__(self, items: ShardItems, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 drop_last: bool = True, shuffle: bool = True, shuffle_size: int = DEFAULT_SHUFFLE_SIZE,
                 num_frms: Sequence[int] | None = None) -> None:
        if shuffle_size < 1:
            raise ShardError(f"dataset_args.shuffle_args.shuffle_size must be >= 1, got {shuffle_size}")
        self.items, self.batch_size, self.seed = items, int(batch_size), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.drop_last, self.shuffle, self.shuffle_size = bool(drop_last), bool(shuffle), int(shuffle_size)
        self.num_frms = None if num_frms is None else (int(num_frms[0]), int(num_frms[1]))
        self.counts = items.index.counts()
        self.epoch = 0
        if len(self) == 0:
            raise ShardError(f"{items.index.list_path}: {sum(self.counts)} utterances give no batch of "
                             f"{batch_size} on each of {world_size} rank(s)")

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and crops the next iteration produces."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        per_rank = -(-sum(self.counts) // self.world_size)
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def plan(self) -> list[np.ndarray]:
        """This rank's batches of item numbers for the current epoch."""
        return epoch_batches(self.counts, self.batch_size, self.seed, self.epoch, self.rank, self.world_size,
                             self.shuffle, self.shuffle_size, self.drop_last)

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        batches = self.plan()
        group = max(1, -(-self.shuffle_size // self.batch_size))  # batches of about one shuffle block
        for first in range(0, len(batches), group):
            mine = [b for b in range(first, min(first + group, len(batches))) if b % workers == worker]
            yield from self._group(batches, mine)

    def _group(self, batches: Sequence[np.ndarray], mine: Sequence[int]) -> Iterator[dict]:
        """Read the members of batches `mine` in file order, then yield them collated in batch order."""
        plans = []
        entries: dict[int, ShardEntry] = {}
        wanted: dict[tuple[int, str], None] = {}
        for b in mine:
            frames, seeds = batch_draws(self.seed, self.epoch, self.rank, b, len(batches[b]), self.num_frms)
            rows = []
            for i, item_seed in zip(batches[b].tolist(), seeds):
                rng = seeded_rng(item_seed)
                entries[i] = entries.get(i) or self.items.index.entry(i)
                postfixes = self.items.members(entries[i], rng)
                rows.append((i, postfixes, rng))
                wanted.update({(i, p): None for p in postfixes})
            plans.append((frames, rows))
        data = {(i, p): self.items.reader.read(entries[i], p)
                for i, p in sorted(wanted, key=lambda ip: (ip[0], entries[ip[0]].members[ip[1]][0]))}
        for frames, rows in plans:
            yield collate_batch([self.items.item(i, [data[(i, p)] for p in postfixes], frames, rng)
                                 for i, postfixes, rng in rows])


# ====================================================================== evaluation: map-style over shards
class ShardEvalDataset(KeyedDataset):
    """Whole utterances of a shard index in sorted key order (items as the map datasets': (index, 0, 0))."""

    def __init__(self, items: ShardItems) -> None:
        self.items = items
        self.order = sorted(range(len(items.index)), key=items.index.keys.__getitem__)
        super().__init__([items.index.keys[i] for i in self.order])

    def num_frames(self, index: int) -> int | None:
        """Frames of the whole-utterance input (audio, from the member header), else None."""
        return self.items.codec.num_frames(self.items.index.entry(self.order[index]), self.items.reader)

    def make_input(self, index: int, num_frames: int, rng: np.random.Generator | None) -> Any:
        i = self.order[index]
        entry = self.items.index.entry(i)
        postfixes = self.items.members(entry, rng)
        return self.items.item(i, _read_item(self.items.reader, entry, postfixes), num_frames, rng)["input"]
