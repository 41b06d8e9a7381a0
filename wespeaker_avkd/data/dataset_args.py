"""The typed options of data loading: `dataset_args` of each system kind and `dataloader_args`.

They belong to the data layer (the loaders, datasets and augmentation read them by attribute); a training
config (config/) holds them, and each system kind (kinds/) names its dataset section. Every default lives here
once: a consumer never supplies its own.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from wespeaker_avkd.utils.schema import (
    Section,
    Where,
    as_bool,
    as_float,
    as_mapping,
    check_kwargs,
    field,
    list_of,
    nonneg_int,
    one_of,
    opt_str,
    positive,
    positive_int,
    with_defaults,
)

# WeSpeaker keys whose feature this toolkit does not implement: refused by name (accepting them would train
# another experiment than the config says). docs/wespeaker.md has the table of every WeSpeaker v2 key.
_FRONTEND = "the frontend is Kaldi fbank (fbank_args); learned/SSL frontends are not implemented"
WESPEAKER_UNSUPPORTED_DATASET = {
    "frontend": _FRONTEND, "frontend_args": _FRONTEND, "s3prl_args": _FRONTEND, "w2vbert_args": _FRONTEND,
    "tfmel_args": _FRONTEND,
    "speed_perturb_mode": "only WeSpeaker's default speed perturbation (one random speed per sample) is "
                          "implemented, not the 'expanded' mode",
    "cmvn": "the per-utterance mean normalisation is always on", "cmvn_args": "variance normalisation is not "
                                                                             "implemented (mean only, always on)",
}
# WeSpeaker's audio pipeline keys (data/augment.py): an audio system reads them, the others refuse them.
AUDIO_PIPELINE_KEYS = ("sample_num_per_epoch", "shuffle_args", "filter", "filter_args", "resample_rate",
                       "speed_perturb", "aug_prob", "spec_aug", "spec_aug_args", "noise_data", "reverb_data", "do_lm")
_AUDIO_ONLY = {k: "an audio-pipeline key (WeSpeaker's data processing of the waveform and fbank)"
               for k in AUDIO_PIPELINE_KEYS}
AUGMENT_SETS = ("reverb_data", "noise_data")



def num_frms(value: Any, where: Where) -> list[int]:
    """Training chunk length in frames: [min, max] (random per batch) or WeSpeaker's scalar n (= [n, n])."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    lo, hi = list_of(positive_int, 2)(value, where)
    if lo > hi:
        raise where.error(f"[min, max] needs min <= max, got {value!r}")
    return [lo, hi]


def image_size(value: Any, where: Where) -> Any:
    """Face size: one positive int (square) or [height, width]."""
    if isinstance(value, (list, tuple)):
        return list_of(positive_int, 2)(value, where)
    return positive_int(value, where)


def _fbank_args(value: Any, where: Where) -> dict[str, Any]:
    """data.fbank.compute_fbank's keyword arguments, its defaults filled in (the constructor's default is the
    schema's, recorded in config.yaml)."""
    from wespeaker_avkd.data.fbank import compute_fbank

    supplied = ("wave", "sample_rate")
    args = check_kwargs(compute_fbank, as_mapping(value, where), where, supplied=supplied, what="compute_fbank")
    return with_defaults(compute_fbank, args, supplied)


@dataclasses.dataclass(frozen=True)
class DataLoaderArgs(Section):
    """dataloader_args / eval_dataloader_args (data/loaders.py)."""

    batch_size: int = field(32, positive_int)
    num_workers: int = field(0, nonneg_int)
    pin_memory: bool = field(False, as_bool)
    prefetch_factor: int = field(2, positive_int)
    drop_last: bool = field(True, as_bool)


def _probability(value: Any, where: Where) -> float:
    """A probability in [0, 1]."""
    p = _number(value, where)
    if not 0 <= p <= 1:
        raise where.error(f"must be a probability in [0, 1], got {value}")
    return p


@dataclasses.dataclass(frozen=True)
class ShuffleArgs(Section):
    """shuffle_args: WeSpeaker's local-shuffle buffer (data/augment.py:buffer_shuffle)."""

    shuffle_size: int = field(2500, positive_int)


@dataclasses.dataclass(frozen=True)
class FilterArgs(Section):
    """filter_args: the utterance lengths WeSpeaker's filter keeps, in frames (data/augment.py:filter_bounds)."""

    min_num_frames: int = field(100, nonneg_int)
    max_num_frames: int = field(800, positive_int)

    def check(self, where: Where) -> None:
        """min_num_frames <= max_num_frames."""
        if self.min_num_frames > self.max_num_frames:
            raise where.key("min_num_frames").error(f"must be <= max_num_frames ({self.max_num_frames}), got "
                                                    f"{self.min_num_frames}")


@dataclasses.dataclass(frozen=True)
class SpecAugArgs(Section):
    """spec_aug_args (data/augment.py:spec_aug), WeSpeaker's defaults."""

    num_t_mask: int = field(1, nonneg_int)
    num_f_mask: int = field(1, nonneg_int)
    max_t: int = field(10, positive_int)
    max_f: int = field(8, positive_int)
    prob: float = field(0.6, _probability)


@dataclasses.dataclass(frozen=True)
class AudioDatasetArgs(Section):
    """dataset_args of an audio system (data/loaders.py, data/datasets.py:AudioDataset, data/augment.py).

    WeSpeaker's pipeline keys default to off here (WeSpeaker turns speed_perturb, filter and a 0.6 aug_prob on
    when absent), so a config without them trains as before; WeSpeaker's configs write them all."""

    REFUSED = WESPEAKER_UNSUPPORTED_DATASET
    feat_source: str = field("auto", one_of("feats", "wav", "auto"))
    # raw: wav.scp, feat: feats.scp, shard: <data dir>/shard.list (data/shards/); None: feat_source decides
    data_type: str | None = field(None, lambda v, w: None if v is None else one_of("raw", "feat", "shard")(v, w))
    num_frms: list[int] = field(factory=lambda: [200, 400], parse=num_frms)
    fbank_args: dict[str, Any] = field(factory=lambda: _fbank_args(None, Where("dataset_args.fbank_args")),
                                       parse=_fbank_args)
    shuffle: bool = field(True, as_bool)
    shuffle_args: ShuffleArgs = field(factory=ShuffleArgs, parse=ShuffleArgs.from_dict)
    sample_num_per_epoch: int = field(0, nonneg_int)
    filter: bool = field(False, as_bool)
    filter_args: FilterArgs = field(factory=FilterArgs, parse=FilterArgs.from_dict)
    resample_rate: int | None = field(None, lambda v, w: None if v is None else positive_int(v, w))
    speed_perturb: bool = field(False, as_bool)
    aug_prob: float = field(0.0, _probability)
    reverb_data: str | None = field(None, opt_str)
    noise_data: str | None = field(None, opt_str)
    spec_aug: bool = field(False, as_bool)
    spec_aug_args: SpecAugArgs = field(factory=SpecAugArgs, parse=SpecAugArgs.from_dict)
    do_lm: bool = field(False, as_bool)

    def check(self, where: Where) -> None:
        """data_type agrees with feat_source; waveform steps need the waveform; aug_prob needs both sets."""
        clash = {"raw": "feats", "feat": "wav"}.get(self.data_type or "")
        if clash is not None and self.feat_source == clash:
            raise where.key("data_type").error(f"{self.data_type!r} contradicts feat_source {clash!r} (data_type "
                                               "raw reads wav.scp, feat reads feats.scp): keep one of them")
        wave_steps = [k for k, on in (("speed_perturb", self.speed_perturb), ("aug_prob", self.aug_prob > 0)) if on]
        if wave_steps and (self.feat_source == "feats" or self.data_type == "feat"):
            raise where.key(wave_steps[0]).error(
                "acts on the waveform, but feat_source is feats (precomputed fbank, no waveform to perturb): set "
                "dataset_args.feat_source: wav (only spec_aug and filter apply to precomputed features)")
        missing = [k for k in AUGMENT_SETS if self.aug_prob > 0 and not getattr(self, k)]
        if missing:
            raise where.key("aug_prob").error(
                f"is {self.aug_prob} but {' and '.join(missing)} is not given (the RIR and noise sets, top-level "
                "keys as WeSpeaker's train.py --reverb_data/--noise_data, a wav.scp or lmdb each); give them or "
                "set aug_prob: 0")


@dataclasses.dataclass(frozen=True)
class VisualDatasetArgs(Section):
    """dataset_args of a visual system (kinds/visual.py, data/datasets.py:VisualDataset); its defaults are the only
    ones: the loaders read every field from here."""

    REFUSED = {**WESPEAKER_UNSUPPORTED_DATASET, **_AUDIO_ONLY}
    data_type: str | None = field(None, lambda v, w: None if v is None else one_of("raw", "shard")(v, w))
    image_size: Any = field(112, image_size)
    num_eval_frames: int = field(5, positive_int)
    mean: list[float] = field(factory=lambda: [0.5, 0.5, 0.5], parse=list_of(lambda v, w: _number(v, w), 3))
    std: list[float] = field(factory=lambda: [0.5, 0.5, 0.5], parse=list_of(positive, 3))
    shuffle: bool = field(True, as_bool)


def _number(value: Any, where: Where) -> float:
    """Any finite real number."""
    return as_float(value, where)


@dataclasses.dataclass(frozen=True)
class FusionDatasetArgs(Section):
    """dataset_args of the fusion teacher (its inputs are pre-extracted embeddings)."""

    REFUSED = {**WESPEAKER_UNSUPPORTED_DATASET, **_AUDIO_ONLY}
    shuffle: bool = field(True, as_bool)
