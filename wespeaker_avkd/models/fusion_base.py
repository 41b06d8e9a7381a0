"""Shared parts of the audio-visual fusion teachers: input checks, L2 normalisation, embedding augmentation."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from wespeaker_avkd.utils.schema import ConfigError

AUG_MODES = ("drop", "noise", "perturb")


class EmbeddingAugment(nn.Module):
    """Training-only augmentation of (B, Da) audio and (B, Dv) visual embeddings; identity in eval mode.

    With probability `prob` per sample, one modality (each with chance 1/2) gets one of `modes` (uniform):
    "drop" sets it to zero, "noise" replaces it by Gaussian noise with `noise_std` times the row's standard
    deviation, "perturb" adds Gaussian noise of `perturb_std` times the row's standard deviation. The teacher
    thereby learns to cope with a missing, useless or degraded modality.
    """

    def __init__(self, prob: float = 0.0, modes: Sequence[str] = AUG_MODES, noise_std: float = 1.0,
                 perturb_std: float = 0.1) -> None:
        """`prob` in [0, 1] (0 = off), `modes` a non-empty subset of AUG_MODES, stds relative to each row's."""
        super().__init__()
        if not 0.0 <= prob <= 1.0:
            raise ConfigError(f"fusion aug_prob must be in [0, 1], got {prob}")
        bad = [m for m in modes if m not in AUG_MODES]
        if bad or not modes:
            raise ConfigError(f"fusion aug_modes must be a non-empty subset of {AUG_MODES}, got {list(modes)}")
        self.prob = float(prob)
        self.modes = tuple(modes)
        self.noise_std = float(noise_std)
        self.perturb_std = float(perturb_std)

    def _augment(self, x: torch.Tensor, rows: torch.Tensor, mode: torch.Tensor) -> torch.Tensor:
        """(B, D) embeddings, (B,) bool rows to touch, (B,) mode index -> augmented (B, D)."""
        scale = x.detach().std(dim=1, keepdim=True)
        out = x
        for index, name in enumerate(self.modes):
            if name == "drop":
                new = torch.zeros_like(x)
            elif name == "noise":
                new = torch.randn_like(x) * scale * self.noise_std
            else:
                new = x + torch.randn_like(x) * scale * self.perturb_std
            out = torch.where((rows & (mode == index)).unsqueeze(1), new, out)
        return out

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, Da), (B, Dv) -> the same shapes, augmented in training mode only."""
        if not self.training or self.prob == 0.0:
            return audio, visual
        batch = audio.shape[0]
        hit = torch.rand(batch, device=audio.device) < self.prob
        on_visual = torch.rand(batch, device=audio.device) < 0.5
        mode = torch.randint(len(self.modes), (batch,), device=audio.device)
        return self._augment(audio, hit & ~on_visual, mode), self._augment(visual, hit & on_visual, mode)

    def extra_repr(self) -> str:
        """Shown by print(module)."""
        return f"prob={self.prob}, modes={self.modes}, noise_std={self.noise_std}, perturb_std={self.perturb_std}"


GateOutput = torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]


class FusionBase(nn.Module):
    """Base of the fusion teachers: forward(audio (B, Da), visual (B, Dv)) -> (B, embed_dim).

    Subclasses implement `fuse(audio, visual) -> (embedding, gate)`; inputs arrive checked, augmented
    (training only) and, when `normalize_inputs`, L2-normalised. Augmentation kwargs: `aug_prob` (0 = off),
    `aug_modes` ("drop", "noise", "perturb"), `aug_noise_std`, `aug_perturb_std` (see EmbeddingAugment).
    """

    def __init__(self, audio_dim: int = 512, visual_dim: int = 512, embed_dim: int = 512,
                 normalize_inputs: bool = True, aug_prob: float = 0.0, aug_modes: Sequence[str] = AUG_MODES,
                 aug_noise_std: float = 1.0, aug_perturb_std: float = 0.1) -> None:
        """Sizes of the two input embeddings and of the fused embedding, plus the options above."""
        super().__init__()
        self.audio_dim = audio_dim
        self.visual_dim = visual_dim
        self.embed_dim = embed_dim
        self.normalize_inputs = normalize_inputs
        self.augment = EmbeddingAugment(aug_prob, aug_modes, aug_noise_std, aug_perturb_std)

    def _prepare(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Check (B, Da) / (B, Dv) shapes, augment (training), L2-normalise."""
        name = type(self).__name__
        if audio.dim() != 2 or audio.shape[1] != self.audio_dim:
            raise ValueError(f"{name}: audio embeddings must be (batch, {self.audio_dim}), got {tuple(audio.shape)}")
        if visual.dim() != 2 or visual.shape[1] != self.visual_dim:
            raise ValueError(f"{name}: visual embeddings must be (batch, {self.visual_dim}), got "
                             f"{tuple(visual.shape)}")
        if audio.shape[0] != visual.shape[0]:
            raise ValueError(f"{name}: {audio.shape[0]} audio but {visual.shape[0]} visual embeddings")
        audio, visual = self.augment(audio, visual)
        if self.normalize_inputs:
            audio, visual = F.normalize(audio, dim=1), F.normalize(visual, dim=1)
        return audio, visual

    def fuse(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, Da), (B, Dv) prepared inputs -> ((B, embed_dim) fused, gate values or None)."""
        raise NotImplementedError

    def forward(self, audio_emb: torch.Tensor, visual_emb: torch.Tensor, return_gate: bool = False) -> GateOutput:
        """(B, Da) audio, (B, Dv) visual -> (B, embed_dim); with return_gate also the gate values (or None)."""
        fused, gate = self.fuse(*self._prepare(audio_emb, visual_emb))
        return (fused, gate) if return_gate else fused

    def gate_values(self, audio_emb: torch.Tensor, visual_emb: torch.Tensor) -> torch.Tensor | None:
        """The fusion weights for analysis (shape per subclass; None if the fusion has none), no gradient."""
        with torch.no_grad():
            return self.forward(audio_emb, visual_emb, return_gate=True)[1]
