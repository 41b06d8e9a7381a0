"""Build the trainable pieces from a config through the registries: encoder, AAM head, KD objective, teacher."""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from wespeaker_avkd.registry import FUSIONS, MODELS, PROJECTIONS, import_plugins
from wespeaker_avkd.train.config import ConfigError, require

logger = logging.getLogger(__name__)

MODALITIES = ("audio", "visual", "fusion")
# kd-block keys that configure the recipe, not a loss; they are not passed to build_kd_objective.
KD_RECIPE_KEYS = ("teacher_dir", "combo", "weights_file")


def check_modality(cfg: Mapping[str, Any]) -> str:
    """The config's `modality` (audio, visual or fusion)."""
    modality = cfg.get("modality")
    if modality not in MODALITIES:
        raise ConfigError(f"config key 'modality' must be one of {MODALITIES}, got {modality!r}")
    return modality


def build_encoder(cfg: Mapping[str, Any]) -> nn.Module:
    """The embedding network: MODELS[cfg.model] for audio/visual, FUSIONS[cfg.model] for the fusion teacher."""
    import_plugins(cfg.get("plugins") or ())
    registry = FUSIONS if check_modality(cfg) == "fusion" else MODELS
    return registry.build(require(cfg, "model"), **dict(cfg.get("model_args") or {}))


def embed_dim_of(cfg: Mapping[str, Any], encoder: nn.Module) -> int:
    """Embedding size: model_args.embed_dim, else the encoder's `embed_dim` attribute, else 512."""
    dim = (cfg.get("model_args") or {}).get("embed_dim", getattr(encoder, "embed_dim", 512))
    return int(dim)


def build_projection(cfg: Mapping[str, Any], embed_dim: int, num_class: int) -> nn.Module:
    """The AAM head from projection_args (project_type names a PROJECTIONS entry; margin set by the schedule)."""
    args = dict(cfg.get("projection_args") or {})
    project_type = args.pop("project_type", "arc_margin")
    margin = (cfg.get("margin_update") or {}).get("initial_margin", args.pop("margin", 0.2))
    return PROJECTIONS.build(project_type, embed_dim=embed_dim, num_class=num_class, margin=margin, **args)


class EmbeddingNet(nn.Module):
    """Encoder + AAM head as one module (what DDP wraps and what a checkpoint's model/projection hold)."""

    def __init__(self, encoder: nn.Module, projection: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection = projection
        # CPU training with amp: the encoder's convolutions run under bfloat16 autocast (about 1.8x faster on
        # CPUs with AVX512-BF16), while the AAM head and every loss stay float32: bf16 keeps ~3 significant
        # digits, too coarse for cosine logits scaled by s = 32 or the KL temperature 1/32.
        self.trunk_autocast: Optional[torch.dtype] = None

    def embed(self, inputs: Any) -> torch.Tensor:
        """Inputs -> (B, D) embeddings; a tuple (the fusion teacher's audio and visual embeddings) is unpacked.
        An encoder that returns a tuple (WeSpeaker's convention, e.g. (embed_a, embed_b)) gives its last element,
        as WeSpeaker's executor takes."""
        out = self.encoder(*inputs) if isinstance(inputs, (tuple, list)) else self.encoder(inputs)
        return out[-1] if isinstance(out, (tuple, list)) else out

    def forward(self, inputs: Any, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(inputs, (B,) labels) -> ((B, D) embeddings, (B, C) AAM logits)."""
        first = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
        with self.trunk_precision(first.device.type):
            emb = self.embed(inputs)
        emb = emb.float()
        return emb, self.projection(emb, labels)

    def trunk_precision(self, device_type: str) -> contextlib.AbstractContextManager:
        """The autocast context the encoder runs under (training and extraction alike), or a no-op."""
        if self.trunk_autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=self.trunk_autocast)


def trunk_autocast_dtype(cfg: Mapping[str, Any], device_type: str) -> Optional[torch.dtype]:
    """bfloat16 for a CPU run of a config with `amp: true`, else None (CUDA amp autocasts the whole step)."""
    if bool(cfg.get("amp", False)) and device_type == "cpu":
        return torch.bfloat16
    return None


def load_teacher_export(teacher_dir: str) -> Tuple[str, np.ndarray, Optional[str]]:
    """(xvector.scp, projection_weight (C, D) float32, spk2id path or None) of exp/teacher/kd_export."""
    scp = os.path.join(teacher_dir, "xvector.scp")
    weight_path = os.path.join(teacher_dir, "projection_weight.npy")
    for path in (scp, weight_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"kd.teacher_dir: {path} is missing; run the teacher's kd_export (stage 5) first")
    weight = np.load(weight_path).astype(np.float32)
    if weight.ndim != 2:
        raise ValueError(f"{weight_path}: expected a (num_class, dim) matrix, got shape {weight.shape}")
    spk2id = os.path.join(teacher_dir, "spk2id")
    return scp, weight, (spk2id if os.path.isfile(spk2id) else None)


def build_kd(kd_cfg: Optional[Mapping[str, Any]], student_dim: int) -> Tuple[Optional[nn.Module], Optional[str]]:
    """(KDObjective, teacher xvector.scp) from a resolved kd block, or (None, None) when there is no KD."""
    if not kd_cfg:
        return None, None
    from wespeaker_avkd.losses.kd_objective import build_kd_objective

    teacher_dir = kd_cfg.get("teacher_dir")
    if not teacher_dir:
        raise ConfigError("config key 'kd.teacher_dir' is required for a KD student (exp/teacher/kd_export)")
    scp, weight, _ = load_teacher_export(teacher_dir)
    loss_cfg = {k: v for k, v in kd_cfg.items() if k not in KD_RECIPE_KEYS}
    objective = build_kd_objective(loss_cfg, torch.from_numpy(weight), student_dim, int(weight.shape[1]))
    return objective, scp


def kd_trainable_state(objective: Optional[nn.Module]) -> Dict[str, torch.Tensor]:
    """The KD objective's own learned state (adapter), without the teacher's frozen weight buffers."""
    if objective is None:
        return {}
    frozen = {name for name, p in objective.named_parameters() if not p.requires_grad}
    return {k: v for k, v in objective.state_dict().items()
            if k not in frozen and not k.split(".")[-1].startswith("teacher")}


def load_model_init(net: EmbeddingNet, path: str) -> None:
    """Initialise the encoder from `model_init` (a flat model file: ours or WeSpeaker's) with the checkpoint
    loader's 'trunk' policy: every encoder tensor must match, the AAM head (other speakers) is set aside."""
    from wespeaker_avkd.train.checkpoint import load_into_net

    load_into_net(net, path, policy="trunk")
    logger.info("model_init %s: encoder loaded", path)
