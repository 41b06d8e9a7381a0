"""The pieces every system kind's loaders share: input files, DataLoaders, epochs, the length filter.

What differs between the audio student, the visual student and the fusion teacher (their input tables,
datasets, crops, eval batching) is in each kind's object (kinds/); this module knows no kind.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader

from wespeaker_avkd.data.augment import AugmentError, samples_per_epoch
from wespeaker_avkd.data.dataset_args import DataLoaderArgs, ShuffleArgs
from wespeaker_avkd.data.datasets import AudioDataset, KeyedDataset, collate_batch
from wespeaker_avkd.data.kaldi_dir import read_multi_table, read_table
from wespeaker_avkd.data.shards import ShardTrainDataset, check_index_keys, read_shard_list
from wespeaker_avkd.utils.errors import InputKeyError
from wespeaker_avkd.utils.kaldi_tables import split_offset

__all__ = ["require_file", "select", "make_loader", "set_loader_epoch", "training_utterances", "check_index_keys",
           "shuffle_size", "epoch_samples", "length_filtered", "shard_files", "table_files", "embedding_files"]


def require_file(data_dir: str, name: str) -> str:
    """data_dir/name, which must exist (FileNotFoundError naming the data dir otherwise)."""
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found (data dir {data_dir} must contain {name})")
    return path


def select(table: Mapping[str, Any], utts: list[str], path: str) -> dict:
    """table restricted to utts; an utterance without an entry is an error naming it and the file."""
    missing = [u for u in utts if u not in table]
    if missing:
        raise InputKeyError(f"utterance '{missing[0]}' has no entry in {path} ({len(missing)} of {len(utts)} missing)")
    return {u: table[u] for u in utts}


def _worker_init(_: int) -> None:
    """Workers use one thread each: the cores are shared with the training process."""
    torch.set_num_threads(1)


def make_loader(dataset: KeyedDataset | ShardTrainDataset, batch_sampler: Any,
                dataloader_args: DataLoaderArgs) -> DataLoader:
    """A DataLoader of batches from `batch_sampler`, or of the batches an iterable dataset yields (None)."""
    workers = dataloader_args.num_workers
    extra = {"prefetch_factor": dataloader_args.prefetch_factor} if workers > 0 else {}
    batching = ({"batch_sampler": batch_sampler, "collate_fn": collate_batch} if batch_sampler is not None
                else {"batch_size": None})
    return DataLoader(dataset, num_workers=workers, pin_memory=dataloader_args.pin_memory,
                      worker_init_fn=_worker_init, **batching, **extra)


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Make the next pass over a training loader use the shuffling and crops of `epoch`."""
    (loader.batch_sampler if loader.batch_sampler is not None else loader.dataset).set_epoch(epoch)


def training_utterances(data_dir: str, spk2id: Mapping[str, int]) -> tuple[str, dict[str, str], list[str]]:
    """(utt2spk path, utt2spk, sorted utterances) of a training data dir; a speaker missing from spk2id is an
    InputKeyError naming it, its utterance and the file."""
    utt2spk_path = require_file(data_dir, "utt2spk")
    utt2spk = read_table(utt2spk_path)
    utts = sorted(utt2spk)
    unknown = [u for u in utts if utt2spk[u] not in spk2id]
    if unknown:
        raise InputKeyError(f"speaker '{utt2spk[unknown[0]]}' of utterance '{unknown[0]}' ({utt2spk_path}) is not in "
                            f"spk2id ({len(unknown)} utterances affected)")
    return utt2spk_path, utt2spk, utts


def shuffle_size(args: Any) -> int:
    """The shard reader's shuffle buffer: the section's shuffle_args.shuffle_size, ShuffleArgs' default for a
    section without one (visual)."""
    return getattr(args, "shuffle_args", ShuffleArgs()).shuffle_size


def epoch_samples(num_utts: int, args: Any) -> int:
    """Items per training epoch: sample_num_per_epoch of an audio section (0: every utterance once)."""
    return samples_per_epoch(num_utts, getattr(args, "sample_num_per_epoch", 0))


def length_filtered(dataset: AudioDataset, utt2spk_path: str) -> AudioDataset:
    """dataset without the utterances shorter than filter_args.min_num_frames (WeSpeaker's filter; lengths from
    file headers, or the decoded input where a header does not tell)."""
    shift = dataset.fbank_args["frame_shift"]
    keep = [i for i in range(len(dataset)) if dataset.augmenter.keep(
        dataset.input_length(i), shift, None if dataset.source_kind == "feats" else dataset.sample_rate)]
    if not keep:
        raise AugmentError(f"dataset_args.filter: every utterance of {utt2spk_path} is shorter than "
                           f"filter_args.min_num_frames {dataset.augmenter.filter_args.min_num_frames}")
    return dataset.subset(keep)


def _file_of(value: str) -> str:
    """The file of a table value: the ark of 'path:offset', else the value itself."""
    return split_offset(value)[0]


def shard_files(shard_list: str) -> list[str]:
    """The tar files of a shard list, sorted."""
    return sorted(read_shard_list(shard_list))


def table_files(kind: str, table: str) -> list[str]:
    """The files behind an input table: feature arks (feats), wavs (wav) or face images (faces), sorted."""
    if kind == "faces":
        return sorted({p for paths in read_multi_table(table).values() for p in paths})
    values = read_table(table).values()
    return sorted({_file_of(v) for v in values} if kind == "feats" else set(values))


def embedding_files(embedding_scps: Mapping[str, str] | None) -> list[str]:
    """The arks behind embedding scps (an .npz table counts as itself only when not an scp)."""
    files: set[str] = set()
    for scp in (embedding_scps or {}).values():
        if scp.endswith(".scp") and os.path.isfile(scp):
            files.update(_file_of(v) for v in read_table(scp).values())
    return sorted(files)
