"""Visual (face) embedding extractor: torchvision's ResNet34 trunk with a 512-d embedding layer."""
from __future__ import annotations

import torch
import torch.nn as nn
import torchvision

from wespeaker_avkd.registry import MODELS
from wespeaker_avkd.utils.errors import InputValueError

# Five stride-2 stages: below 32 pixels the last stage has no spatial cell left.
MIN_SIZE = 32


@MODELS.register("VisualResNet34")
class VisualResNet34(nn.Module):
    """Face ResNet34: (B, 3, H, W) normalised images, H, W >= 32 -> (B, embed_dim) embeddings.

    `trunk` is torchvision.models.resnet34 (random init; its state_dict names stay torchvision's) whose
    `fc` is replaced by Sequential(Linear(512, embed_dim), BatchNorm1d(embed_dim)).
    """

    def __init__(self, embed_dim: int = 512) -> None:
        """`embed_dim`: size of the embedding layer after global average pooling."""
        super().__init__()
        self.embed_dim = embed_dim
        self.trunk = torchvision.models.resnet34(weights=None)
        self.trunk.fc = nn.Sequential(nn.Linear(self.trunk.fc.in_features, embed_dim), nn.BatchNorm1d(embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, embed_dim)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputValueError(f"VisualResNet34 expects (batch, 3, height, width) images, got {tuple(x.shape)}")
        if min(x.shape[2:]) < MIN_SIZE:
            raise InputValueError(f"VisualResNet34 needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels, got "
                                  f"{x.shape[2]}x{x.shape[3]} (dataset_args.image_size)")
        return self.trunk(x)


def segment_embedding(model: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """(B, K, 3, H, W) K face frames per segment -> (B, D) mean of the K frame embeddings."""
    if frames.dim() != 5:
        raise ValueError(f"segment_embedding expects (batch, frames, 3, height, width), got {tuple(frames.shape)}")
    batch, num_frames = frames.shape[:2]
    emb = model(frames.reshape(batch * num_frames, *frames.shape[2:]))
    return emb.view(batch, num_frames, -1).mean(dim=1)
