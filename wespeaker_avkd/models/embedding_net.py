"""EmbeddingNet: an encoder and its AAM head as one module, and the CPU autocast choice for its trunk."""
from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn as nn


class EmbeddingNet(nn.Module):
    """Encoder + AAM head as one module (what DDP wraps and what a checkpoint's model/projection hold)."""

    def __init__(self, encoder: nn.Module, projection: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection = projection
        # CPU training with amp: the encoder's convolutions run under bfloat16 autocast (about 1.8x faster on
        # CPUs with AVX512-BF16), while the AAM head and every loss stay float32: bf16 keeps ~3 significant
        # digits, too coarse for cosine logits scaled by s = 32 or the KL temperature 1/32.
        self.trunk_autocast: torch.dtype | None = None

    def embed(self, inputs: Any) -> torch.Tensor:
        """Inputs -> (B, D) embeddings; a tuple (the fusion teacher's audio and visual embeddings) is unpacked.
        An encoder that returns a tuple (WeSpeaker's convention, e.g. (embed_a, embed_b)) gives its last element,
        as WeSpeaker's executor takes."""
        out = self.encoder(*inputs) if isinstance(inputs, (tuple, list)) else self.encoder(inputs)
        return out[-1] if isinstance(out, (tuple, list)) else out

    def forward(self, inputs: Any, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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


def trunk_autocast_dtype(amp: bool, device_type: str) -> torch.dtype | None:
    """bfloat16 for a CPU run of a config with `amp: true`, else None (CUDA amp autocasts the whole step)."""
    if amp and device_type == "cpu":
        return torch.bfloat16
    return None
