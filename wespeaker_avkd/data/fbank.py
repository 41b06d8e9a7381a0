"""Kaldi-compatible log-mel filterbank (torchaudio.compliance.kaldi) and per-utterance CMN; wav reading."""
from __future__ import annotations

import os

import numpy as np
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi

from wespeaker_avkd.data.validate import wav_truncation  # torch-free: the validator uses it too
from wespeaker_avkd.utils.errors import UnreadableInputError
from wespeaker_avkd.utils.fileio import PathLike


def load_wav(path: PathLike) -> tuple[torch.Tensor, int]:
    """Read a mono wav with soundfile -> (float32 Tensor (S,) in [-1, 1], sample rate in Hz); a truncated or
    unreadable file raises RuntimeError naming it."""
    problem = wav_truncation(path) if os.path.isfile(path) else None
    if problem:
        raise UnreadableInputError(f"{os.fspath(path)}: cannot read audio ({problem})")
    try:
        data, sample_rate = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types; re-raise with the path
        raise UnreadableInputError(f"{os.fspath(path)}: cannot read audio ({e})") from e
    if data.shape[1] != 1:
        data = data.mean(axis=1, keepdims=True)  # down-mix: verification models are mono
    return torch.from_numpy(np.ascontiguousarray(data[:, 0])), int(sample_rate)


def compute_fbank(wave: torch.Tensor, sample_rate: int = 16000, num_mel_bins: int = 40,
                  frame_length: float = 25.0, frame_shift: float = 10.0, dither: float = 0.0) -> torch.Tensor:
    """Log-mel fbank of wave (S,) float in [-1, 1] -> (T, num_mel_bins), no CMN; WeSpeaker's settings."""
    if wave.dim() != 1:
        raise ValueError(f"compute_fbank expects a 1-D wave (S,), got shape {tuple(wave.shape)}")
    # Kaldi works on 16-bit integer scale; WeSpeaker multiplies by 1 << 15 before fbank.
    return kaldi.fbank(wave.float().unsqueeze(0) * (1 << 15), num_mel_bins=num_mel_bins,
                       frame_length=frame_length, frame_shift=frame_shift, dither=dither,
                       sample_frequency=sample_rate, window_type="hamming", use_energy=False)


def apply_cmn(feats: torch.Tensor) -> torch.Tensor:
    """Cepstral mean normalisation: subtract the mean over time of feats (T, F) -> (T, F)."""
    return feats - feats.mean(dim=0, keepdim=True)
