"""Build the trainable pieces from a config through the registries: encoder, AAM head, KD objective, teacher."""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from wespeaker_avkd.config.model_config import ModelConfig
from wespeaker_avkd.config.train_config import ComponentArgs, KDConfig, MarginUpdate, TrainConfig
from wespeaker_avkd.data.augment import num_classes
from wespeaker_avkd.kinds import kind_of
from wespeaker_avkd.losses.kd_objective import objective_from_specs
from wespeaker_avkd.models.embedding_net import EmbeddingNet
from wespeaker_avkd.registry import PROJECTIONS, import_plugins
from wespeaker_avkd.utils.embedding_table import read_npy
from wespeaker_avkd.utils.errors import InputValueError

logger = logging.getLogger(__name__)


def make_encoder(modality: str, model: ComponentArgs, plugins: Sequence[str] = ()) -> nn.Module:
    """The embedding network: MODELS[model.name] for audio/visual, FUSIONS[model.name] for the fusion teacher,
    after importing the plugin modules that register it."""
    import_plugins(plugins)
    return kind_of(modality).encoder_registry.build(model.name, **dict(model.args))


def model_embed_dim(model_args: Mapping[str, Any], encoder: nn.Module) -> int:
    """Embedding size: model_args' embed_dim, else the encoder's `embed_dim` attribute, else 512."""
    return int(model_args.get("embed_dim", getattr(encoder, "embed_dim", 512)))


def make_projection(projection: ComponentArgs, margin_update: MarginUpdate | None, embed_dim: int,
                    num_class: int) -> nn.Module:
    """The AAM head PROJECTIONS[projection.name] with projection.args; its first margin is margin_update's
    initial_margin, else projection.args' margin (the head's default, filled in by the schema); the schedule
    sets it from then on."""
    args = dict(projection.args)
    margin = args.pop("margin") if margin_update is None else margin_update.initial_margin
    return PROJECTIONS.build(projection.name, embed_dim=embed_dim, num_class=num_class, margin=margin, **args)


def build_net(cfg: TrainConfig | ModelConfig, num_speakers: int) -> EmbeddingNet:
    """Encoder (make_encoder), then AAM head (make_projection) of a parsed config, as one EmbeddingNet; the head
    has a class per training speaker, x3 with dataset_args.speed_perturb (each speed a class, as WeSpeaker)."""
    encoder = make_encoder(cfg.modality, cfg.model, cfg.plugins)
    num_class = num_classes(num_speakers, bool(getattr(cfg.dataset_args, "speed_perturb", False)))
    head = make_projection(cfg.projection, cfg.margin_update, model_embed_dim(cfg.model.args, encoder), num_class)
    return EmbeddingNet(encoder, head)


def load_teacher_export(teacher_dir: str) -> tuple[str, np.ndarray, str | None]:
    """(xvector.scp, projection_weight (C, D) float32, spk2id path or None) of exp/teacher/kd_export."""
    scp = os.path.join(teacher_dir, "xvector.scp")
    weight_path = os.path.join(teacher_dir, "projection_weight.npy")
    for path in (scp, weight_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"kd.teacher_dir: {path} is missing; run the teacher's kd_export (stage 5) first")
    weight = read_npy(weight_path, "the teacher's projection weight").astype(np.float32)
    if weight.ndim != 2:
        raise InputValueError(f"{weight_path}: expected a (num_class, dim) matrix, got shape {weight.shape}")
    spk2id = os.path.join(teacher_dir, "spk2id")
    return scp, weight, (spk2id if os.path.isfile(spk2id) else None)


def build_kd(kd: KDConfig | None, student_dim: int) -> tuple[nn.Module | None, str | None]:
    """(KDObjective, teacher xvector.scp) from a student's validated kd section, or (None, None) without KD."""
    if kd is None:
        return None, None
    scp, weight, _ = load_teacher_export(kd.teacher_dir)
    objective = objective_from_specs(kd.terms, kd.adapter, torch.from_numpy(weight), student_dim,
                                     int(weight.shape[1]))
    return objective, scp


def kd_trainable_state(objective: nn.Module | None) -> dict[str, torch.Tensor]:
    """The KD objective's own learned state (adapter), without the teacher's frozen weight buffers."""
    if objective is None:
        return {}
    frozen = {name for name, p in objective.named_parameters() if not p.requires_grad}
    return {k: v for k, v in objective.state_dict().items()
            if k not in frozen and not k.split(".")[-1].startswith("teacher")}


def load_model_init(net: EmbeddingNet, path: str, modality: str | None = None,
                    model: ComponentArgs | None = None) -> None:
    """Initialise the encoder from `model_init` (a flat model file, ours or WeSpeaker's, or a model dir with
    avg_model.pt + config.yaml, whose config must build this `model`) with the checkpoint loader's 'trunk'
    policy: every encoder tensor must match, the AAM head (other speakers) is set aside."""
    from wespeaker_avkd.checkpoint import load_into_net
    from wespeaker_avkd.config.model_config import check_model_init_config, model_init_files

    path, config = model_init_files(path)
    if config is not None and model is not None:
        check_model_init_config(config, modality or "audio", model)
    load_into_net(net, path, policy="trunk")
    logger.info("model_init %s: encoder loaded", path)
