"""The typed sections of a training config besides the data-loading ones (data/dataset_args.py: dataset_args of
each system kind, dataloader_args): the margin schedule, the fusion teacher's inputs, the KD block, and the
WeSpeaker keys refused by name.

Each section is a frozen dataclass whose fields carry their default and parser (utils/schema.py): the one place
a default is written. The loaders, builders and the trainer read these objects; config.yaml records them with
every default filled in (config/serialize.py).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from wespeaker_avkd.data.dataset_args import AUGMENT_SETS
from wespeaker_avkd.utils.schema import (
    Section,
    Where,
    as_bool,
    as_float,
    as_mapping,
    as_str,
    field,
    list_of,
    nonneg_int,
    one_of,
    opt_str,
    positive_int,
    with_defaults,
)

# ====================================================================== the typed schema of a training config
# WeSpeaker keys whose feature this toolkit does not implement: refused by name (accepting them would train
# another experiment than the config says). docs/wespeaker.md has the table of every WeSpeaker v2 key.
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
TOP_DATASET_KEYS = (*AUGMENT_SETS, "do_lm")


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
    v = as_float(value, where)
    if v < 0:
        raise where.error(f"must be >= 0, got {value}")
    return v


@dataclasses.dataclass(frozen=True)
class DevEval(Section):
    """dev_eval: the learning curve on dev. After every `every`-th epoch (and the last) the trainer embeds the data
    dir `data` with the epoch's model and writes the EER of each trial list `trials` (names under <data>/trials/)
    into exp_dir/learning_curve.tsv beside the epoch's training means (train/dev_curve.py). It reads no random
    number and changes no training result."""

    data: str = field(parse=as_str)
    trials: list[str] = field(factory=lambda: ["O", "E", "H"], parse=list_of(as_str))
    every: int = field(1, positive_int)


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
