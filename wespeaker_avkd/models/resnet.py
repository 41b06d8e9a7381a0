"""Audio ResNet speaker-embedding extractors in WeSpeaker's layout (parameter names match its checkpoints;
its files load through checkpoint.load_into_net, policy 'wespeaker').

Differences from an image ResNet (as in WeSpeaker): 3x3 input convolution with stride 1 and no max-pool,
m_channels (32) instead of 64 base channels, statistics pooling over time, then a linear embedding layer.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from wespeaker_avkd.models.pooling import build_pooling
from wespeaker_avkd.registry import MODELS
from wespeaker_avkd.utils.errors import InputValueError
from wespeaker_avkd.utils.schema import ConfigError

# Three stride-2 stages shrink time and frequency by 8; shorter inputs have no frame left to pool.
MIN_FRAMES = 8


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    """Identity, or Conv1x1 + BN (keys shortcut.0 / shortcut.1) when the block changes shape."""
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_planes))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection: (B, in_planes, F, T) -> (B, planes, F/s, T/s)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        """`stride` applies to the first convolution and the shortcut."""
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_planes, F, T) -> (B, planes, F', T')."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 residual block with 4x expansion: (B, in_planes, F, T) -> (B, 4*planes, F/s, T/s)."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        """`stride` applies to the 3x3 convolution and the shortcut."""
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_planes, F, T) -> (B, 4*planes, F', T')."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Speaker ResNet: (B, T, F) mean-normalised fbank -> (B, embed_dim) embedding (WeSpeaker layout)."""

    block: type[nn.Module] = BasicBlock
    num_blocks: Sequence[int] = (3, 4, 6, 3)

    def __init__(self, feat_dim: int = 40, embed_dim: int = 512, m_channels: int = 32,
                 pooling_func: str = "TSTP", two_emb_layer: bool = False,
                 block: type[nn.Module] | None = None, num_blocks: Sequence[int] | None = None) -> None:
        """`feat_dim` fbank bins (multiple of 8), `m_channels` base width; block/num_blocks default per depth."""
        super().__init__()
        if feat_dim <= 0 or feat_dim % 8 != 0:
            raise ConfigError(f"model_args.feat_dim must be a positive multiple of 8 (three stride-2 stages "
                              f"halve the frequency axis), got {feat_dim}")
        block = block or self.block
        num_blocks = tuple(num_blocks or self.num_blocks)
        if len(num_blocks) != 4:
            raise ConfigError(f"num_blocks must list 4 stage depths, got {num_blocks}")
        self.feat_dim = feat_dim
        self.embed_dim = embed_dim
        self.m_channels = m_channels
        self.two_emb_layer = two_emb_layer
        self.in_planes = m_channels
        # Channels of layer4 times the frequency bins left after /8, as WeSpeaker's stats_dim.
        self.stats_dim = (feat_dim // 8) * m_channels * 8

        self.conv1 = nn.Conv2d(1, m_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        self.layer1 = self._make_layer(block, m_channels, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, m_channels * 2, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, m_channels * 4, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, m_channels * 8, num_blocks[3], stride=2)

        self.pool = build_pooling(pooling_func, self.stats_dim * block.expansion)
        self.pool_out_dim = self.pool.get_out_dim()
        self.seg_1 = nn.Linear(self.pool_out_dim, embed_dim)
        if two_emb_layer:
            self.seg_bn_1: nn.Module = nn.BatchNorm1d(embed_dim, affine=False)
            self.seg_2: nn.Module = nn.Linear(embed_dim, embed_dim)
        else:
            self.seg_bn_1 = nn.Identity()
            self.seg_2 = nn.Identity()

    def _make_layer(self, block: type[nn.Module], planes: int, num_blocks: int, stride: int) -> nn.Sequential:
        """One stage: `num_blocks` blocks, the first with `stride`."""
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def _check_input(self, x: torch.Tensor) -> None:
        """Raise a clear error for a wrongly shaped or too short (B, T, F) input."""
        if x.dim() != 3 or x.shape[2] != self.feat_dim:
            raise InputValueError(f"{type(self).__name__} expects (batch, frames, {self.feat_dim}) fbank, "
                                  f"got shape {tuple(x.shape)}")
        if x.shape[1] < MIN_FRAMES:
            raise InputValueError(f"{type(self).__name__} needs at least {MIN_FRAMES} frames (the network "
                                  f"downsamples time by 8), got {x.shape[1]} frames")

    def frame_level_feat(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) fbank -> (B, C, F/8, T/8) feature map of layer4."""
        self._check_input(x)
        out = x.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T)
        out = F.relu(self.bn1(self.conv1(out)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        return self.layer4(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) mean-normalised fbank -> (B, embed_dim) embedding (embed_b when two_emb_layer)."""
        embed = self.seg_1(self.pool(self.frame_level_feat(x)))
        if self.two_emb_layer:
            embed = self.seg_2(self.seg_bn_1(F.relu(embed)))
        return embed


def _depth(name: str, block: type[nn.Module], num_blocks: tuple[int, int, int, int]) -> type[ResNet]:
    """A registered ResNet subclass `name` with fixed `block` and stage depths; (B, T, F) -> (B, embed_dim)."""
    doc = f"ResNet with {block.__name__}s {list(num_blocks)}; (B, T, F) fbank -> (B, embed_dim)."
    cls = type(name, (ResNet,), {"block": block, "num_blocks": num_blocks, "__doc__": doc, "__module__": __name__})
    return MODELS.register(name)(cls)


# WeSpeaker's depths. ResNet34 (m_channels 32, feat 80, emb 256) has 6,634,336 parameters.
ResNet18 = _depth("ResNet18", BasicBlock, (2, 2, 2, 2))
ResNet34 = _depth("ResNet34", BasicBlock, (3, 4, 6, 3))
ResNet50 = _depth("ResNet50", Bottleneck, (3, 4, 6, 3))
ResNet101 = _depth("ResNet101", Bottleneck, (3, 4, 23, 3))
ResNet152 = _depth("ResNet152", Bottleneck, (3, 8, 36, 3))
ResNet221 = _depth("ResNet221", Bottleneck, (6, 16, 48, 3))
ResNet293 = _depth("ResNet293", Bottleneck, (10, 20, 64, 3))
