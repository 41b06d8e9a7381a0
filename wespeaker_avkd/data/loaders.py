"""DataLoaders for training and evaluation of the audio, visual and fusion models (see CONTRACT "Data")."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader

from wespeaker_avkd.data.augment import Augmenter, AugmentError, samples_per_epoch
from wespeaker_avkd.data.datasets import (
    AudioDataset,
    FusionDataset,
    KeyedDataset,
    VisualDataset,
    collate_batch,
    load_embedding_table,
    stack_embeddings,
)
from wespeaker_avkd.data.kaldi_dir import read_multi_table, read_table
from wespeaker_avkd.data.samplers import LengthGroupedBatchSampler, SeededBatchSampler, SequentialBatchSampler
from wespeaker_avkd.utils.naming import MODALITIES

VISUAL_DEFAULTS = {"image_size": 112, "num_eval_frames": 5, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}


def _require(data_dir: str, name: str) -> str:
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found (data dir {data_dir} must contain {name})")
    return path


def _audio_source(data_dir: str, dataset_args: Mapping[str, Any]) -> tuple[str, str]:
    """(feats|wav, table path) for the audio input, from dataset_args["feat_source"] (feats|wav|auto)."""
    kind = dataset_args.get("feat_source", "auto")
    if kind == "auto":
        kind = "feats" if os.path.isfile(os.path.join(data_dir, "feats.scp")) else "wav"
    if kind not in ("feats", "wav"):
        raise ValueError(f"dataset_args.feat_source must be feats, wav or auto, got {kind!r}")
    return kind, _require(data_dir, "feats.scp" if kind == "feats" else "wav.scp")


def _select(table: Mapping[str, Any], utts: list[str], path: str) -> dict:
    """table restricted to utts; an utterance without an entry is an error naming it and the file."""
    missing = [u for u in utts if u not in table]
    if missing:
        raise KeyError(f"utterance '{missing[0]}' has no entry in {path} ({len(missing)} of {len(utts)} missing)")
    return {u: table[u] for u in utts}


def _build_dataset(modality: str, data_dir: str, utts: list[str], dataset_args: Mapping[str, Any], train: bool,
                   embedding_scps: Mapping[str, str] | None, num_speakers: int = 0, **kw: Any) -> KeyedDataset:
    """The dataset of one modality over `utts` of data_dir (training audio with dataset_args' augmentation)."""
    if modality == "audio":
        kind, path = _audio_source(data_dir, dataset_args)
        augmenter = Augmenter(dataset_args, num_speakers) if train else None
        if augmenter is not None and kind == "feats" and augmenter.wave_steps:
            raise AugmentError(f"dataset_args {', '.join(augmenter.wave_steps)} act on the waveform, but the audio "
                               f"input is {path} (precomputed fbank): set dataset_args.feat_source: wav")
        return AudioDataset(utts, _select(read_table(path), utts, path), kind, dataset_args.get("fbank_args"),
                            augmenter=augmenter, resample_rate=dataset_args.get("resample_rate"), **kw)
    if modality == "visual":
        path = _require(data_dir, "faces.scp")
        args = {**VISUAL_DEFAULTS, **{k: v for k, v in dataset_args.items() if k in VISUAL_DEFAULTS}}
        return VisualDataset(utts, _select(read_multi_table(path), utts, path), args["image_size"], args["mean"],
                             args["std"], train=train, num_eval_frames=args["num_eval_frames"], **kw)
    if modality == "fusion":
        if not embedding_scps or not {"audio", "visual"} <= set(embedding_scps):
            raise ValueError("fusion loaders need embedding_scps={'audio': xvector.scp, 'visual': xvector.scp}")
        emb = {m: stack_embeddings(load_embedding_table(embedding_scps[m]), utts, m, embedding_scps[m])
               for m in ("audio", "visual")}
        return FusionDataset(utts, emb["audio"], emb["visual"], **kw)
    raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")


def _worker_init(_: int) -> None:
    """Workers use one thread each: the cores are shared with the training process."""
    torch.set_num_threads(1)


def _loader(dataset: KeyedDataset, batch_sampler, dataloader_args: Mapping[str, Any]) -> DataLoader:
    workers = int(dataloader_args.get("num_workers", 0))
    extra = {"prefetch_factor": int(dataloader_args.get("prefetch_factor", 2))} if workers > 0 else {}
    return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=workers, collate_fn=collate_batch,
                      pin_memory=bool(dataloader_args.get("pin_memory", False)), worker_init_fn=_worker_init, **extra)


def build_train_loader(modality: str, data_dir: str, spk2id: Mapping[str, int], dataset_args: Mapping[str, Any],
                       dataloader_args: Mapping[str, Any], seed: int, rank: int = 0, world_size: int = 1,
                       teacher_scp: str | None = None,
                       embedding_scps: Mapping[str, str] | None = None) -> DataLoader:
    """Training loader over every utterance of data_dir/utt2spk: batches {"keys", "inputs", "labels",
    "teacher_emb" (only with teacher_scp)}; call set_loader_epoch(loader, epoch) before each epoch."""
    utt2spk_path = _require(data_dir, "utt2spk")
    utt2spk = read_table(utt2spk_path)
    utts = sorted(utt2spk)
    unknown = [u for u in utts if utt2spk[u] not in spk2id]
    if unknown:
        raise KeyError(f"speaker '{utt2spk[unknown[0]]}' of utterance '{unknown[0]}' ({utt2spk_path}) is not in "
                       f"spk2id ({len(unknown)} utterances affected)")
    labels = [spk2id[utt2spk[u]] for u in utts]
    teacher = None
    if teacher_scp is not None:
        teacher = stack_embeddings(load_embedding_table(teacher_scp), utts, "teacher", teacher_scp)
    dataset = _build_dataset(modality, data_dir, utts, dataset_args, True, embedding_scps, len(spk2id),
                             labels=labels, teacher=teacher)
    if modality == "audio" and dataset_args.get("filter"):
        dataset = _length_filtered(dataset, utt2spk_path)
    sampler = SeededBatchSampler(
        len(dataset), int(dataloader_args.get("batch_size", 32)), seed, rank, world_size,
        drop_last=bool(dataloader_args.get("drop_last", True)), shuffle=bool(dataset_args.get("shuffle", True)),
        num_frms=dataset_args.get("num_frms", [200, 400]) if modality == "audio" else None,
        num_samples=samples_per_epoch(len(dataset), int(dataset_args.get("sample_num_per_epoch") or 0)))
    return _loader(dataset, sampler, dataloader_args)


def _length_filtered(dataset: AudioDataset, utt2spk_path: str) -> AudioDataset:
    """dataset without the utterances shorter than filter_args.min_num_frames (WeSpeaker's filter; lengths from
    file headers, or the decoded input where a header does not tell)."""
    shift = dataset.fbank_args["frame_shift"]
    keep = [i for i in range(len(dataset)) if dataset.augmenter.keep(
        dataset.input_length(i), shift, None if dataset.source_kind == "feats" else dataset.sample_rate)]
    if not keep:
        raise AugmentError(f"dataset_args.filter: every utterance of {utt2spk_path} is shorter than "
                           f"filter_args.min_num_frames {dataset.augmenter.filter_args['min_num_frames']}")
    return dataset.subset(keep)


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Make the next pass over a training loader use the shuffling and crops of `epoch`."""
    loader.batch_sampler.set_epoch(epoch)


def build_eval_loader(modality: str, data_dir: str, dataset_args: Mapping[str, Any],
                      dataloader_args: Mapping[str, Any],
                      embedding_scps: Mapping[str, str] | None = None) -> DataLoader:
    """Evaluation loader over data_dir's utterances (sorted keys): {"keys", "inputs"}; audio whole utterances
    (B, T, F) grouped by equal T (batches in length order; use the keys), visual (B, K, 3, H, W) and fusion
    ((B, Da), (B, Dv)) in sorted order."""
    if modality == "audio":
        utts = sorted(read_table(_audio_source(data_dir, dataset_args)[1]))
    elif modality == "visual":
        utts = sorted(read_multi_table(_require(data_dir, "faces.scp")))
    else:
        utts = sorted(read_table(_require(data_dir, "utt2spk")))
    dataset = _build_dataset(modality, data_dir, utts, dataset_args, False, embedding_scps)
    batch_size = int(dataloader_args.get("batch_size", 32))
    if modality == "audio":
        # Whole utterances: only utterances of exactly equal frame count share a batch (no padding, so each
        # embedding equals its batch-of-one embedding); batches come in length order, not data-dir order.
        lengths = [dataset.num_frames(i) for i in range(len(dataset))]
        return _loader(dataset, LengthGroupedBatchSampler(lengths, batch_size), dataloader_args)
    return _loader(dataset, SequentialBatchSampler(len(dataset), batch_size), dataloader_args)


def eval_input_files(modality: str, data_dir: str, dataset_args: Mapping[str, Any],
                     embedding_scps: Mapping[str, str] | None = None) -> list[str]:
    """The files an evaluation loader of data_dir reads besides its tables: wavs or feature arks, face images,
    the arks behind embedding scps (for content fingerprints of extraction inputs)."""
    def ark_of(spec: str) -> str:
        path, sep, offset = spec.rpartition(":")
        return path if sep and offset.isdigit() else spec

    if modality == "audio":
        kind, path = _audio_source(data_dir, dataset_args)
        values = read_table(path).values()
        return sorted({ark_of(v) for v in values} if kind == "feats" else set(values))
    if modality == "visual":
        return sorted({p for paths in read_multi_table(_require(data_dir, "faces.scp")).values() for p in paths})
    files: set[str] = set()
    for scp in (embedding_scps or {}).values():
        if scp.endswith(".scp") and os.path.isfile(scp):
            files.update(ark_of(v) for v in read_table(scp).values())
    return sorted(files)
