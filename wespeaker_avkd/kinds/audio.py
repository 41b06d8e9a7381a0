"""The audio student: a ResNet on 40-dim fbank, from feats.scp, wav.scp or tar shards."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wespeaker_avkd.data.dataset_args import AudioDatasetArgs
from wespeaker_avkd.kinds.base import SystemKind, register_kind
from wespeaker_avkd.registry import MODELS
from wespeaker_avkd.utils.schema import ConfigError

if TYPE_CHECKING:  # data and torch are imported on use: the kinds' facts import light
    import torch

    from wespeaker_avkd.data.datasets import KeyedDataset
    from wespeaker_avkd.data.shards import ShardItems


# Fewest frames an exported audio model is valid for: three stride-2 stages leave T/8 frames, and the std
# pooling's unbiased variance needs two of them (the PyTorch model falls back to the biased variance for one
# pooled frame, a Python branch that tracing and torch.export fix at export time).
EXPORT_MIN_FRAMES = 16
# Frames of the example input the audio model is traced with (2 s; any length >= EXPORT_MIN_FRAMES works).
EXAMPLE_FRAMES = 200
# WeSpeaker's data-pipeline keys, which the shard reader does not apply yet.
PIPELINE_KEYS = ("speed_perturb", "aug_prob", "spec_aug", "filter", "sample_num_per_epoch", "resample_rate")


class AudioStudent(SystemKind):
    """Speaker embeddings from fbank: the audio baseline and the audio KD students."""

    name = "audio"
    encoder_registry = MODELS
    role = "student"
    takes_fbank = True
    raw_source = "wav"

    dataset_section = AudioDatasetArgs
    # the dataset_args an evaluation pass reads (the others are training's); speed_perturb sets the head's size
    # (3 classes per speaker), resample_rate the rate the fbank is computed at
    eval_dataset_keys = ("data_type", "feat_source", "fbank_args", "resample_rate", "speed_perturb")

    def input_source(self, data_dir: str, args: Any) -> tuple[str, str]:
        """('shard', shard.list) with data_type shard; else feats.scp or wav.scp as data_type (feat|raw) or
        feat_source (feats|wav|auto: feats.scp when the data dir has one) says."""
        from wespeaker_avkd.data import loaders
        from wespeaker_avkd.data.shards import SHARD_LIST

        if args.data_type == "shard":
            return "shard", loaders.require_file(data_dir, SHARD_LIST)
        kind = {"feat": "feats", "raw": "wav"}.get(args.data_type or "", args.feat_source)
        if kind == "auto":
            kind = "feats" if os.path.isfile(os.path.join(data_dir, "feats.scp")) else "wav"
        if kind not in ("feats", "wav"):
            raise ConfigError(f"dataset_args.feat_source must be feats, wav or auto, got {kind!r}")
        return kind, loaders.require_file(data_dir, "feats.scp" if kind == "feats" else "wav.scp")

    def dataset(self, data_dir: str, utts: list[str], args: Any, train: bool,
                embedding_scps: Mapping[str, str] | None, num_speakers: int = 0, **kw: Any) -> KeyedDataset:
        """AudioDataset over utts (training: with the options' augmentation)."""
        from wespeaker_avkd.data import loaders
        from wespeaker_avkd.data.augment import Augmenter, AugmentError
        from wespeaker_avkd.data.datasets import AudioDataset
        from wespeaker_avkd.data.kaldi_dir import read_table

        kind, path = self.input_source(data_dir, args)
        augmenter = Augmenter(args, num_speakers) if train else None
        if augmenter is not None and kind == "feats" and augmenter.wave_steps:
            raise AugmentError(f"dataset_args {', '.join(augmenter.wave_steps)} act on the waveform, but the audio "
                               f"input is {path} (precomputed fbank): set dataset_args.feat_source: wav")
        return AudioDataset(utts, loaders.select(read_table(path), utts, path), kind, args.fbank_args,
                            augmenter=augmenter, resample_rate=args.resample_rate, **kw)

    def shard_items(self, index: Any, args: Any, train: bool, **kw: Any) -> ShardItems:
        """Shard items decoding the .npy fbank (feat_source feats, or auto when every item has one) or the wav."""
        from wespeaker_avkd.data.datasets import DEFAULT_FBANK_ARGS
        from wespeaker_avkd.data.shards import FEATS_POSTFIX, AudioCodec, ShardItems

        use_feats = args.feat_source == "feats" or (args.feat_source == "auto" and index.all_have(FEATS_POSTFIX))
        return ShardItems(index, AudioCodec(use_feats, {**DEFAULT_FBANK_ARGS, **args.fbank_args}), **kw)

    def eval_utts(self, data_dir: str, args: Any) -> list[str]:
        """Keys of the input table (feats.scp or wav.scp)."""
        from wespeaker_avkd.data.kaldi_dir import read_table

        return sorted(read_table(self.input_source(data_dir, args)[1]))

    def train_chunk(self, args: Any) -> list[int] | None:
        """dataset_args.num_frms."""
        return args.num_frms

    def check_shard_training(self, args: Any, data_dir: str) -> None:
        """WeSpeaker's pipeline keys are refused on shards (they run on raw files or stored fbank)."""
        from wespeaker_avkd.data.augment import AugmentError

        pipeline = [k for k in PIPELINE_KEYS if getattr(args, k)]
        if pipeline:
            raise AugmentError(f"dataset_args {', '.join(pipeline)}: WeSpeaker's data pipeline runs on raw files or "
                               f"stored fbank, not yet on tar shards ({data_dir}); use data_type raw for it")

    def filtered(self, dataset: KeyedDataset, args: Any, utt2spk_path: str) -> KeyedDataset:
        """Without the utterances WeSpeaker's filter drops (dataset_args.filter)."""
        from wespeaker_avkd.data import loaders

        return loaders.length_filtered(dataset, utt2spk_path) if args.filter else dataset

    def eval_batch_sampler(self, dataset: KeyedDataset, batch_size: int) -> Any:
        """Whole utterances: only utterances of exactly equal frame count share a batch (no padding, so each
        embedding equals its batch-of-one embedding); batches come in length order, not data-dir order."""
        from wespeaker_avkd.data.samplers import LengthGroupedBatchSampler

        return LengthGroupedBatchSampler([dataset.num_frames(i) for i in range(len(dataset))], batch_size)

    def export_spec(self, model_args: Mapping[str, Any], args: Any, encoder: torch.nn.Module) -> dict[str, Any]:
        """(batch, frames, feat_dim) fbank with the training fbank settings (dither off) and CMN."""
        from wespeaker_avkd.data.datasets import DEFAULT_FBANK_ARGS

        feat_dim = int(model_args.get("feat_dim", getattr(encoder, "feat_dim", 40)))
        fbank = {**DEFAULT_FBANK_ARGS, **args.fbank_args, "dither": 0.0}
        return {"input_shape": ["batch", "frames", feat_dim], "min_frames": EXPORT_MIN_FRAMES, "fbank_args": fbank,
                "sample_rate": 16000, "cmn": True,
                "preprocessing": "Kaldi log-mel fbank of 16 kHz audio scaled to 16-bit range, then the utterance "
                                 "mean subtracted per bin (CMN)"}

    def example_input(self, spec: Mapping[str, Any], batch: int, generator: torch.Generator) -> torch.Tensor:
        """(batch, EXAMPLE_FRAMES, feat_dim) noise."""
        import torch

        return torch.randn(batch, EXAMPLE_FRAMES, spec["input_shape"][2], generator=generator)


AUDIO = register_kind(AudioStudent())
