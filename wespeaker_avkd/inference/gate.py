"""The GATE teacher's gate values on given embeddings (for the report's per-modality gate table).

The fusion teacher (models/gate_fusion.py) fuses e = z h_visual + (1 - z) h_audio with a per-dimension gate z;
these functions load a trained teacher exp dir through extraction's loader (load_trained: the one model-file
loader, policy 'strict') and run its gate on the baselines' embeddings.
"""
from __future__ import annotations

import numpy as np
import torch

from wespeaker_avkd.inference.extract import load_trained
from wespeaker_avkd.utils.errors import InputValueError


def _gate_batches(teacher_dir: str, audio: np.ndarray, visual: np.ndarray, batch: int):
    """Yield the (b, D) gate z of the teacher of teacher_dir per batch of `batch` rows of audio/visual."""
    if audio.ndim != 2 or visual.ndim != 2 or audio.shape[0] != visual.shape[0]:
        raise InputValueError(f"{teacher_dir}: gate inputs must be (N, D) audio and visual embeddings of the same "
                              f"utterances, got shapes {audio.shape} and {visual.shape}")
    _, net, _ = load_trained(teacher_dir)
    fusion = net.encoder
    if not hasattr(fusion, "gate_values"):
        raise ValueError(f"the teacher's encoder {type(fusion).__name__} has no gate")
    for lo in range(0, audio.shape[0], batch):
        z = fusion.gate_values(torch.from_numpy(audio[lo:lo + batch]), torch.from_numpy(visual[lo:lo + batch]))
        if z is None:
            raise ValueError(f"the teacher's fusion {type(fusion).__name__} exposes no gate values")
        yield z


def gate_values(teacher_dir: str, audio: np.ndarray, visual: np.ndarray, batch: int = 4096) -> np.ndarray:
    """(N, D) float32 gate z (the visual branch's weight per dimension) of the teacher exp dir `teacher_dir` on
    the row-aligned (N, D_a) audio and (N, D_v) visual embeddings of N utterances."""
    parts = [z.float().numpy() for z in _gate_batches(teacher_dir, audio, visual, batch)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def mean_gate(teacher_dir: str, audio: np.ndarray, visual: np.ndarray, batch: int = 4096) -> dict[str, float]:
    """{visual: mean z, audio: 1 - mean z, num_utts: N}: the gate averaged over dimensions, then utterances
    (float64), of the teacher exp dir `teacher_dir` on row-aligned audio/visual embeddings (see gate_values)."""
    total, count = 0.0, 0
    for z in _gate_batches(teacher_dir, audio, visual, batch):  # the fusion's gate_values runs without gradient
        total += float(z.double().mean(dim=1).sum())
        count += z.shape[0]
    if not count:
        raise InputValueError(f"{teacher_dir}: no utterance to compute the gate on")
    mean_z = total / count
    return {"visual": mean_z, "audio": 1.0 - mean_z, "num_utts": count}
