"""The KD training objective (paper Eq. 7): AAM loss plus named, weighted KD terms built from a yaml `kd:` block.

Two forms of the block (kd_term_specs validates it and refuses any other key; the caller names the keys another
layer reads: the recipe's keys teacher_dir, combo and weights_file are decided in config/train_config.py:KDConfig,
which keeps the validated terms for objective_from_specs):

    kd: {alpha: 1.0, beta: 0.0, gamma: 1.0, temperature: 0.03125, mmd: {kernel_num: 5}}
        Eq. 7 shorthand: alpha -> "kl", beta -> "cos", gamma -> "mmd"; zero weights are dropped;
        `temperature` goes to kl; an optional kl/cos/mmd sub-mapping holds that loss's constructor kwargs.
    kd: {losses: {kl: {weight: 1.0, temperature: 0.03125}, mmd_wide: {type: mmd, weight: 0.5, kernel_mul: 4}}}
        any registered LOSSES name; the key names the logged term, `type` (default: the key) the loss class,
        `weight` (default 1.0) its factor, the rest its constructor kwargs.

`adapter: true` adds a learned bias-free Linear(student_dim -> teacher_dim) applied to the student embedding
before the KD terms (its parameters must go to the optimizer); without it the dims must agree.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from wespeaker_avkd.registry import LOSSES
from wespeaker_avkd.utils.naming import EQ7_WEIGHT
from wespeaker_avkd.utils.schema import (
    ConfigError,
    Where,
    as_bool,
    as_mapping,
    check_keys,
    check_kwargs,
    nonneg,
    positive,
    suggest,
)

# Eq. 7 weight name -> registered loss name: {"alpha": "kl", "beta": "cos", "gamma": "mmd"}.
EQ7_TERMS = {weight: loss.lower() for loss, weight in EQ7_WEIGHT.items()}
# Keys of the Eq. 7 shorthand form of the kd block (besides `adapter`, which both forms read).
SHORTHAND_KEYS = ("alpha", "beta", "gamma", "temperature", "kl", "cos", "mmd")


class KDObjective(nn.Module):
    """total = aam + sum_i w_i * loss_i(adapter(student (B, Ds)), teacher (B, Dt)); logs every term unweighted."""

    def __init__(self, terms: Mapping[str, nn.Module], weights: Mapping[str, float],
                 adapter: nn.Module | None = None) -> None:
        """`terms` name -> loss module, `weights` name -> float, `adapter` optional (Ds -> Dt) module."""
        super().__init__()
        if set(terms) != set(weights):
            raise ValueError(f"KDObjective: terms {sorted(terms)} and weights {sorted(weights)} differ")
        if "aam" in terms:
            raise ValueError("KDObjective: 'aam' is reserved for the AAM term; rename that KD term")
        self.terms = nn.ModuleDict(dict(terms))
        self.weights = {name: float(w) for name, w in weights.items()}
        self.adapter = adapter

    def forward(self, aam_loss: torch.Tensor, student_emb: torch.Tensor,
                teacher_emb: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Scalar AAM loss, (B, Ds) student, (B, Dt) teacher -> (total scalar, {"aam": ..., name: unweighted})."""
        values: dict[str, torch.Tensor] = {"aam": aam_loss}
        total = aam_loss
        if len(self.terms):
            student = self.adapter(student_emb) if self.adapter is not None else student_emb
            for name, loss in self.terms.items():
                values[name] = loss(student, teacher_emb)
                total = total + self.weights[name] * values[name]
        return total, values

    def extra_repr(self) -> str:
        """Shown by print(module)."""
        return "weights=" + ", ".join(f"{k}: {v:g}" for k, v in self.weights.items())


def _loss_class(name: Any, where: Where) -> type:
    """LOSSES[name], or a ConfigError naming the key and the registered losses."""
    if not isinstance(name, str) or name not in LOSSES:
        raise where.error(f"unknown KD loss {name!r}{suggest(name, LOSSES.names())} (registered: "
                          f"{', '.join(LOSSES.names())}; a plugin loss is registered with @LOSSES.register)")
    return LOSSES.get(name)


def kd_term_specs(kd_cfg: Mapping[str, Any], where: Where | None = None,
                  extra_keys: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Validate a kd block -> {term name: {"type": loss name, "weight": w, **ctor kwargs}} (zero weights kept).

    Every key is read or refused (ConfigError with a suggestion): `extra_keys` are keys another layer reads
    (the recipe's teacher_dir, combo, weights_file); weights must be >= 0, temperature > 0, and each loss's
    kwargs must be parameters of its class (the frozen teacher weight is supplied here, not by the config).
    """
    where = where or Where("kd")
    kd_cfg = as_mapping(kd_cfg, where)
    if "losses" in kd_cfg:
        check_keys(kd_cfg, ("losses", "adapter", *extra_keys), where, {k: "Eq. 7 shorthand" for k in SHORTHAND_KEYS},
                   refused_intro="kd keys not read when kd.losses is given (give each term's weight and kwargs "
                                 "under kd.losses)")
        specs = {}
        for name, spec in as_mapping(kd_cfg["losses"], where.key("losses")).items():
            at = where.key("losses").key(str(name))
            spec = as_mapping(spec, at)
            loss_name = spec.get("type", name)
            cls = _loss_class(loss_name, at.key("type") if "type" in spec else at)
            weight = nonneg(spec.get("weight", 1.0), at.key("weight"))
            kwargs = check_kwargs(cls, {k: v for k, v in spec.items() if k not in ("type", "weight")}, at,
                                  supplied=("teacher_weight",))
            specs[str(name)] = {"type": loss_name, "weight": weight, **kwargs}
    else:
        check_keys(kd_cfg, (*SHORTHAND_KEYS, "adapter", *extra_keys), where)
        specs = {}
        for weight_key, loss_name in EQ7_TERMS.items():
            weight = nonneg(kd_cfg.get(weight_key, 0.0), where.key(weight_key))
            kwargs = check_kwargs(_loss_class(loss_name, where.key(loss_name)),
                                  as_mapping(kd_cfg.get(loss_name), where.key(loss_name)), where.key(loss_name),
                                  supplied=("teacher_weight",))
            if loss_name == "kl" and "temperature" in kd_cfg:
                kwargs.setdefault("temperature", positive(kd_cfg["temperature"], where.key("temperature")))
            specs[loss_name] = {"type": loss_name, "weight": weight, **kwargs}
    if "adapter" in kd_cfg:
        as_bool(kd_cfg["adapter"], where.key("adapter"))
    return specs


def build_kd_objective(kd_cfg: Mapping[str, Any] | None, teacher_weight: torch.Tensor | None,
                       student_dim: int, teacher_dim: int) -> KDObjective:
    """KDObjective from a loss-only yaml `kd:` block (validated by kd_term_specs: a recipe key such as teacher_dir
    is refused here); `teacher_weight` (C, teacher_dim) is the frozen teacher AAM weight."""
    kd_cfg = kd_cfg or {}
    adapter = bool(kd_cfg.get("adapter", False))  # kd_term_specs has checked it is a bool
    return objective_from_specs(kd_term_specs(kd_cfg), adapter, teacher_weight, student_dim, teacher_dim)


def objective_from_specs(specs: Mapping[str, Mapping[str, Any]], use_adapter: bool,
                         teacher_weight: torch.Tensor | None, student_dim: int, teacher_dim: int) -> KDObjective:
    """KDObjective from validated term specs ({name: {"type", "weight", **kwargs}}, kd_term_specs' output, e.g.
    config/train_config.py:KDConfig.terms); zero-weight terms are dropped; `use_adapter` adds Linear(student ->
    teacher)."""
    terms: dict[str, nn.Module] = {}
    weights: dict[str, float] = {}
    for name, term in specs.items():
        spec = dict(term)  # the caller's (possibly frozen, shared) spec stays as it is
        weight = float(spec.pop("weight"))
        loss_name = spec.pop("type")
        if weight == 0.0:
            continue
        cls = LOSSES.get(loss_name)
        if getattr(cls, "needs_teacher_weight", False):
            if teacher_weight is None:
                raise ConfigError(f"kd term {name!r} ({loss_name}) needs the teacher's AAM weight "
                                  f"(kd_export/projection_weight.npy), but none was given")
            teacher_weight = torch.as_tensor(teacher_weight, dtype=torch.float32)
            if teacher_weight.dim() != 2 or teacher_weight.shape[1] != teacher_dim:
                raise ConfigError(f"kd term {name!r}: teacher weight shape {tuple(teacher_weight.shape)} "
                                  f"does not match teacher embedding dim {teacher_dim}")
            spec["teacher_weight"] = teacher_weight
        try:
            terms[name] = cls(**spec)
        except TypeError as err:
            raise TypeError(f"kd term {name!r} ({loss_name}) with arguments {sorted(spec)}: {err}") from err
        weights[name] = weight
    if terms and student_dim != teacher_dim and not use_adapter:
        raise ConfigError(f"student embedding dim {student_dim} != teacher embedding dim {teacher_dim}: the "
                          f"KD losses compare them directly (KL uses the teacher's {teacher_dim}-d AAM weight); "
                          f"set embed_dim to {teacher_dim} or kd.adapter: true for a learned linear adapter")
    adapter = nn.Linear(student_dim, teacher_dim, bias=False) if use_adapter else None
    return KDObjective(terms, weights, adapter)
