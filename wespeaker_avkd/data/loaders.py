"""DataLoaders for training and evaluation of the audio, visual and fusion models (see CONTRACT "Data")."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader

from wespeaker_avkd.data.augment import Augmenter, AugmentError, samples_per_epoch
from wespeaker_avkd.data.datasets import (
    DEFAULT_FBANK_ARGS,
    AudioDataset,
    FaceTransform,
    FusionDataset,
    KeyedDataset,
    VisualDataset,
    collate_batch,
    load_embedding_table,
    stack_embeddings,
)
from wespeaker_avkd.data.kaldi_dir import read_multi_table, read_table
from wespeaker_avkd.data.samplers import LengthGroupedBatchSampler, SeededBatchSampler, SequentialBatchSampler
from wespeaker_avkd.data.shards import (
    DEFAULT_SHUFFLE_SIZE,
    FEATS_POSTFIX,
    SHARD_LIST,
    AudioCodec,
    ShardEvalDataset,
    ShardIndex,
    ShardItems,
    ShardTrainDataset,
    VisualCodec,
    check_index_keys,
    load_shard_index,
    read_shard_list,
)
from wespeaker_avkd.utils.errors import InputKeyError
from wespeaker_avkd.utils.naming import MODALITIES
from wespeaker_avkd.utils.schema import ConfigError

VISUAL_DEFAULTS = {"image_size": 112, "num_eval_frames": 5, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}


def _require(data_dir: str, name: str) -> str:
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found (data dir {data_dir} must contain {name})")
    return path


def _audio_source(data_dir: str, dataset_args: Mapping[str, Any]) -> tuple[str, str]:
    """(feats|wav|shard, table or shard list path) of the audio input, from dataset_args["data_type"]
    (raw|feat|shard; absent: feat_source decides) and dataset_args["feat_source"] (feats|wav|auto)."""
    data_type = dataset_args.get("data_type")
    if data_type == "shard":
        return "shard", _require(data_dir, SHARD_LIST)
    kind = {"feat": "feats", "raw": "wav"}.get(data_type, dataset_args.get("feat_source", "auto"))
    if kind == "auto":
        kind = "feats" if os.path.isfile(os.path.join(data_dir, "feats.scp")) else "wav"
    if kind not in ("feats", "wav"):
        raise ConfigError(f"dataset_args.feat_source must be feats, wav or auto, got {kind!r}")
    return kind, _require(data_dir, "feats.scp" if kind == "feats" else "wav.scp")


def _visual_source(data_dir: str, dataset_args: Mapping[str, Any]) -> tuple[str, str]:
    """(faces|shard, faces.scp or shard list path) of the visual input, from dataset_args["data_type"]."""
    if dataset_args.get("data_type") == "shard":
        return "shard", _require(data_dir, SHARD_LIST)
    return "faces", _require(data_dir, "faces.scp")


def _input_source(modality: str, data_dir: str, dataset_args: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, path) of a modality's input: _audio_source, _visual_source, or ('embeddings', '') for fusion."""
    if modality == "audio":
        return _audio_source(data_dir, dataset_args)
    if modality == "visual":
        return _visual_source(data_dir, dataset_args)
    return "embeddings", ""


def _visual_args(dataset_args: Mapping[str, Any]) -> dict[str, Any]:
    return {**VISUAL_DEFAULTS, **{k: v for k, v in dataset_args.items() if k in VISUAL_DEFAULTS}}


def _shard_items(modality: str, index: ShardIndex, dataset_args: Mapping[str, Any], train: bool,
                 **kw: Any) -> ShardItems:
    """A shard index with the codec of `modality` (audio: the .npy fbank when feat_source says feats, or auto
    and every utterance has one; else the audio member)."""
    if modality not in ("audio", "visual"):
        raise ValueError(f"dataset_args.data_type: shard is for audio and visual systems, not {modality!r}")
    if modality == "audio":
        source = dataset_args.get("feat_source", "auto")
        use_feats = source == "feats" or (source == "auto" and index.all_have(FEATS_POSTFIX))
        codec: Any = AudioCodec(use_feats, {**DEFAULT_FBANK_ARGS, **(dataset_args.get("fbank_args") or {})})
    else:
        args = _visual_args(dataset_args)
        codec = VisualCodec(FaceTransform(args["image_size"], args["mean"], args["std"]), train,
                            args["num_eval_frames"])
    return ShardItems(index, codec, **kw)


def _select(table: Mapping[str, Any], utts: list[str], path: str) -> dict:
    """table restricted to utts; an utterance without an entry is an error naming it and the file."""
    missing = [u for u in utts if u not in table]
    if missing:
        raise InputKeyError(f"utterance '{missing[0]}' has no entry in {path} ({len(missing)} of {len(utts)} missing)")
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
        path = _visual_source(data_dir, dataset_args)[1]
        args = _visual_args(dataset_args)
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


def _loader(dataset: KeyedDataset | ShardTrainDataset, batch_sampler, dataloader_args: Mapping[str, Any]) -> DataLoader:
    """A DataLoader of batches from `batch_sampler`, or of the batches an iterable dataset yields (None)."""
    workers = int(dataloader_args.get("num_workers", 0))
    extra = {"prefetch_factor": int(dataloader_args.get("prefetch_factor", 2))} if workers > 0 else {}
    batching = ({"batch_sampler": batch_sampler, "collate_fn": collate_batch} if batch_sampler is not None
                else {"batch_size": None})
    return DataLoader(dataset, num_workers=workers, pin_memory=bool(dataloader_args.get("pin_memory", False)),
                      worker_init_fn=_worker_init, **batching, **extra)


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
        raise InputKeyError(f"speaker '{utt2spk[unknown[0]]}' of utterance '{unknown[0]}' ({utt2spk_path}) is not in "
                            f"spk2id ({len(unknown)} utterances affected)")
    if dataset_args.get("data_type") == "shard" and modality != "fusion":
        index = load_shard_index(_require(data_dir, SHARD_LIST))
        check_index_keys(index, utt2spk, utt2spk_path)
        utts = list(index.keys)  # index order: labels and teacher rows follow it
    labels = [spk2id[utt2spk[u]] for u in utts]
    teacher = None
    if teacher_scp is not None:
        teacher = stack_embeddings(load_embedding_table(teacher_scp), utts, "teacher", teacher_scp)
    batch_size = int(dataloader_args.get("batch_size", 32))
    drop_last, shuffle = bool(dataloader_args.get("drop_last", True)), bool(dataset_args.get("shuffle", True))
    num_frms = dataset_args.get("num_frms", [200, 400]) if modality == "audio" else None
    if dataset_args.get("data_type") == "shard" and modality != "fusion":
        pipeline = [k for k in ("speed_perturb", "aug_prob", "spec_aug", "filter", "sample_num_per_epoch",
                                "resample_rate") if dataset_args.get(k)]
        if modality == "audio" and pipeline:
            raise AugmentError(f"dataset_args {', '.join(pipeline)}: WeSpeaker's data pipeline runs on raw files or "
                               f"stored fbank, not yet on tar shards ({data_dir}); use data_type raw for it")
        items = _shard_items(modality, index, dataset_args, True, labels=labels, teacher=teacher)
        shuffle_size = int((dataset_args.get("shuffle_args") or {}).get("shuffle_size", DEFAULT_SHUFFLE_SIZE))
        dataset = ShardTrainDataset(items, batch_size, seed, rank, world_size, drop_last, shuffle, shuffle_size,
                                    num_frms)
        return _loader(dataset, None, dataloader_args)
    dataset = _build_dataset(modality, data_dir, utts, dataset_args, True, embedding_scps, len(spk2id),
                             labels=labels, teacher=teacher)
    if modality == "audio" and dataset_args.get("filter"):
        dataset = _length_filtered(dataset, utt2spk_path)
    sampler = SeededBatchSampler(
        len(dataset), batch_size, seed, rank, world_size, drop_last=drop_last, shuffle=shuffle, num_frms=num_frms,
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
    (loader.batch_sampler if loader.batch_sampler is not None else loader.dataset).set_epoch(epoch)


def build_eval_loader(modality: str, data_dir: str, dataset_args: Mapping[str, Any],
                      dataloader_args: Mapping[str, Any],
                      embedding_scps: Mapping[str, str] | None = None) -> DataLoader:
    """Evaluation loader over data_dir's utterances (sorted keys): {"keys", "inputs"}; audio whole utterances
    (B, T, F) grouped by equal T (batches in length order; use the keys), visual (B, K, 3, H, W) and fusion
    ((B, Da), (B, Dv)) in sorted order."""
    kind, path = _input_source(modality, data_dir, dataset_args)
    if kind == "shard":
        dataset: KeyedDataset = ShardEvalDataset(_shard_items(modality, load_shard_index(path), dataset_args, False))
    else:
        if modality == "audio":
            utts = sorted(read_table(path))
        elif modality == "visual":
            utts = sorted(read_multi_table(path))
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

    kind, path = _input_source(modality, data_dir, dataset_args)
    if kind == "shard":
        return sorted(read_shard_list(path))
    if kind in ("feats", "wav"):
        values = read_table(path).values()
        return sorted({ark_of(v) for v in values} if kind == "feats" else set(values))
    if kind == "faces":
        return sorted({p for paths in read_multi_table(path).values() for p in paths})
    files: set[str] = set()
    for scp in (embedding_scps or {}).values():
        if scp.endswith(".scp") and os.path.isfile(scp):
            files.update(ark_of(v) for v in read_table(scp).values())
    return sorted(files)
