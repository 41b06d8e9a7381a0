"""The typed sections of a training config: dataset and loader arguments, the margin schedule, the fusion
teacher's inputs, the KD block, and the WeSpeaker keys refused by name.

Each section is a frozen dataclass whose fields carry their default and parser (utils/schema.py): the one place
a default is written. The loaders, builders and the trainer read these objects; config.yaml records them with
every default filled in (config/serialize.py).
"""
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from wespeaker_avkd.utils.schema import (
    Section,
    Where,
    _init_params,  # the keyword parameters check_kwargs reads
    as_bool,
    as_float,
    as_mapping,
    as_str,
    check_kwargs,
    field,
    list_of,
    nonneg_int,
    one_of,
    opt_str,
    positive,
    positive_int,
)

# ====================================================================== the typed schema of a training config
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
_OLD_LMDB = "an older WeSpeaker name: write reverb_data / noise_data (a wav.scp, or an lmdb dir)"
# A WeSpeaker run's own keys. WeSpeaker's v2 run.sh always passes both on train.py's command line, which overrides
# the yaml; here bin.train's --exp_dir and torchrun (or --device) play that part. They are checked and set aside
# (config.yaml does not record them: they describe another run's place and devices, not the experiment).
WESPEAKER_RUN_KEYS = ("exp_dir", "gpus")  # exp_dir: bin.train's --exp_dir; gpus: torchrun --nproc_per_node N
WESPEAKER_UNSUPPORTED_TOP = {
    "data_type": "write dataset_args.data_type (shard|raw|feat): train_data is a Kaldi data dir, its shard "
                 "list <train_data>/shard.list",
    "train_label": "labels come from train_data/utt2spk",
    "reverb_lmdb": _OLD_LMDB, "noise_lmdb": _OLD_LMDB,
}
# Top-level in WeSpeaker, read into the audio dataset_args: the sets of train.py's --reverb_data / --noise_data,
# and do_lm (large-margin fine-tuning: its train.py then turns speed perturbation off in the data, keeping the
# head's 3 classes per speaker).
AUGMENT_SETS = ("reverb_data", "noise_data")
TOP_DATASET_KEYS = (*AUGMENT_SETS, "do_lm")


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


def _plain(value: Any) -> bool:
    """Whether a default can be written to yaml and read back equal (None, bool, numbers, str, lists, dicts)."""
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return value is None or isinstance(value, (bool, int, float, str))


def _as_yaml(value: Any) -> Any:
    """A plain default as yaml reads it back: tuples become lists."""
    if isinstance(value, (list, tuple)):
        return [_as_yaml(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_yaml(v) for k, v in value.items()}
    return value


def with_defaults(target: Callable[..., Any], args: dict[str, Any], supplied: Sequence[str] = (),
                  skip: Sequence[str] = ()) -> dict[str, Any]:
    """`args` (already checked against `target`) with the defaults of target's other keyword parameters filled in,
    in signature order: the constructor's default is the schema's default, recorded in config.yaml. Parameters
    the caller supplies, those in `skip` and defaults yaml cannot hold (a class, a tensor) are left out."""
    params, _ = _init_params(target)
    filled = {}
    for name, param in params.items():
        if name in args:
            filled[name] = args[name]
        elif (name not in supplied and name not in skip and param.default is not inspect.Parameter.empty
              and _plain(param.default)):
            filled[name] = _as_yaml(param.default)
    filled.update({k: v for k, v in args.items() if k not in filled})
    return filled


def _fbank_args(value: Any, where: Where) -> dict[str, Any]:
    """data.fbank.compute_fbank's keyword arguments, its defaults filled in."""
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


def _section_dict(cls: type[Section]) -> Any:
    """Parser of a nested section written as a dict (defaults filled in), for asdict-friendly configs."""
    return lambda v, w: dataclasses.asdict(cls.from_dict(v, w))


@dataclasses.dataclass(frozen=True)
class AudioDatasetArgs(Section):
    """dataset_args of an audio system (data/loaders.py, data/datasets.py:AudioDataset, data/augment.py).

    WeSpeaker's pipeline keys default to off here (WeSpeaker turns speed_perturb, filter and a 0.6 aug_prob on
    when absent), so a config without them trains as before; WeSpeaker's configs write them all."""

    REFUSED = WESPEAKER_UNSUPPORTED_DATASET
    feat_source: str = field("auto", one_of("feats", "wav", "auto"))
    # raw: wav.scp, feat: feats.scp, shard: <data dir>/shard.list (data/shards.py); None: feat_source decides
    data_type: str | None = field(None, lambda v, w: None if v is None else one_of("raw", "feat", "shard")(v, w))
    num_frms: list[int] = field(factory=lambda: [200, 400], parse=num_frms)
    fbank_args: dict[str, Any] = field(factory=lambda: _fbank_args(None, Where("dataset_args.fbank_args")),
                                       parse=_fbank_args)
    shuffle: bool = field(True, as_bool)
    shuffle_args: dict[str, Any] = field(factory=lambda: dataclasses.asdict(ShuffleArgs()),
                                         parse=_section_dict(ShuffleArgs))
    sample_num_per_epoch: int = field(0, nonneg_int)
    filter: bool = field(False, as_bool)
    filter_args: dict[str, Any] = field(factory=lambda: dataclasses.asdict(FilterArgs()),
                                        parse=_section_dict(FilterArgs))
    resample_rate: int | None = field(None, lambda v, w: None if v is None else positive_int(v, w))
    speed_perturb: bool = field(False, as_bool)
    aug_prob: float = field(0.0, _probability)
    reverb_data: str | None = field(None, opt_str)
    noise_data: str | None = field(None, opt_str)
    spec_aug: bool = field(False, as_bool)
    spec_aug_args: dict[str, Any] = field(factory=lambda: dataclasses.asdict(SpecAugArgs()),
                                          parse=_section_dict(SpecAugArgs))
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
    """dataset_args of a visual system (data/loaders.py, data/datasets.py:VisualDataset); its defaults are the only
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


DATASET_ARGS = {"audio": AudioDatasetArgs, "visual": VisualDatasetArgs, "fusion": FusionDatasetArgs}


@dataclasses.dataclass(frozen=True)
class MarginUpdate(Section):
    """margin_update (models/margin_scheduler.py:MarginScheduler)."""

    initial_margin: float = field(parse=lambda v, w: _nonneg(v, w))
    final_margin: float = field(parse=lambda v, w: _nonneg(v, w))
    increase_start_epoch: int = field(parse=nonneg_int)
    fix_start_epoch: int = field(parse=nonneg_int)
    increase_type: str = field("exp", one_of("exp", "linear"))
    update_margin: bool = field(True, as_bool)

    def check(self, where: Where) -> None:
        """fix_start_epoch >= increase_start_epoch."""
        if self.fix_start_epoch < self.increase_start_epoch:
            raise where.key("fix_start_epoch").error(
                f"must be >= increase_start_epoch ({self.increase_start_epoch}), got {self.fix_start_epoch}")


def _nonneg(value: Any, where: Where) -> float:
    v = _number(value, where)
    if v < 0:
        raise where.error(f"must be >= 0, got {value}")
    return v


@dataclasses.dataclass(frozen=True)
class EmbeddingDirs(Section):
    """embedding_dirs of the fusion teacher: <dir>/<subset>/xvector.scp per input modality."""

    audio: str = field(parse=as_str)
    visual: str = field(parse=as_str)


@dataclasses.dataclass(frozen=True)
class KDConfig(Section):
    """The kd block of a student after the preset is resolved: the recipe's keys plus the loss spec
    (losses/kd_objective.py:kd_term_specs validates the loss keys; each loss's constructor defaults filled in)."""

    teacher_dir: str
    combo: str | None
    weights_file: str | None
    terms: dict[str, dict[str, Any]]
    adapter: bool

    RECIPE_KEYS = ("teacher_dir", "combo", "weights_file")

    @classmethod
    def from_dict(cls, data: Any, where: Where) -> KDConfig:
        """Validate a resolved kd block."""
        from wespeaker_avkd.losses.kd_objective import kd_term_specs
        from wespeaker_avkd.registry import LOSSES

        data = as_mapping(data, where)
        terms = {name: {"type": spec["type"], "weight": spec["weight"],
                        **with_defaults(LOSSES.get(spec["type"]), {k: v for k, v in spec.items()
                                                                     if k not in ("type", "weight")},
                                        supplied=("teacher_weight",))}
                 for name, spec in kd_term_specs(data, where, extra_keys=cls.RECIPE_KEYS).items()}
        if "teacher_dir" not in data:
            raise where.error("missing required key 'kd.teacher_dir' (the teacher's kd_export dir)")
        return cls(as_str(data["teacher_dir"], where.key("teacher_dir")),
                   opt_str(data.get("combo"), where.key("combo")),
                   opt_str(data.get("weights_file"), where.key("weights_file")), terms,
                   as_bool(data.get("adapter", False), where.key("adapter")))

    def to_dict(self) -> dict[str, Any]:
        """The block as config.yaml records it: the recipe's keys and the terms in the `losses:` form, which
        kd_term_specs reads back to the same terms."""
        return {"teacher_dir": self.teacher_dir, "combo": self.combo, "weights_file": self.weights_file,
                "adapter": self.adapter, "losses": {name: dict(spec) for name, spec in self.terms.items()}}


@dataclasses.dataclass(frozen=True)
class ComponentArgs:
    """A registry component's name and its constructor kwargs (checked against the class signature)."""

    name: str
    args: dict[str, Any]
