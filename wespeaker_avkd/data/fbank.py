"""Kaldi-compatible log-mel filterbank (torchaudio.compliance.kaldi) and per-utterance CMN; wav reading."""
from __future__ import annotations

import os
import stat

import numpy as np
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi

from wespeaker_avkd.data.validate import audio_problem, wav_truncation  # torch-free: the validator uses them too
from wespeaker_avkd.utils.errors import NamedError
from wespeaker_avkd.utils.fileio import PathLike


class AudioError(NamedError, RuntimeError):
    """Audio that cannot be used (unreadable, truncated, empty, NaN/Inf, shorter than one frame); the message
    names the file (the fbank of a bare wave says what is wrong, its caller adds the file)."""


def load_wav(path: PathLike) -> tuple[torch.Tensor, int]:
    """Read a mono wav with soundfile -> (float32 Tensor (S,) in [-1, 1], sample rate in Hz); a truncated,
    unreadable, empty or non-finite (NaN/Inf samples) file, or one that is not a regular file, raises
    AudioError naming it."""
    path = os.fspath(path)
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        raise AudioError(f"{path}: cannot read audio (not a regular file: a named pipe, device or directory is "
                         "never read)")
    problem = wav_truncation(path) if os.path.isfile(path) else None
    if problem:
        raise AudioError(f"{path}: cannot read audio ({problem})")
    try:
        data, sample_rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types; re-raise with the path
        raise AudioError(f"{path}: cannot read audio ({e})") from e
    problem = audio_problem(data)
    if problem:
        raise AudioError(f"{path}: {problem}")
    if data.shape[1] != 1:
        data = data.mean(axis=1, keepdims=True)  # down-mix: verification models are mono
    return torch.from_numpy(np.ascontiguousarray(data[:, 0])), int(sample_rate)


def compute_fbank(wave: torch.Tensor, sample_rate: int = 16000, num_mel_bins: int = 40,
                  frame_length: float = 25.0, frame_shift: float = 10.0, dither: float = 0.0) -> torch.Tensor:
    """Log-mel fbank of wave (S,) float in [-1, 1] -> (T, num_mel_bins), no CMN; WeSpeaker's settings. A wave
    shorter than one frame raises AudioError saying so (torchaudio's own check is a bare assertion)."""
    if wave.dim() != 1:
        raise ValueError(f"compute_fbank expects a 1-D wave (S,), got shape {tuple(wave.shape)}")
    window = int(sample_rate * frame_length * 0.001)  # torchaudio's window size in samples, same arithmetic
    if wave.shape[0] < window:
        raise AudioError(f"audio of {wave.shape[0]} samples is shorter than one fbank frame ({window} samples: "
                         f"{frame_length:g} ms at {sample_rate} Hz)")
    # Kaldi works on 16-bit integer scale; WeSpeaker multiplies by 1 << 15 before fbank.
    return kaldi.fbank(wave.float().unsqueeze(0) * (1 << 15), num_mel_bins=num_mel_bins,
                       frame_length=frame_length, frame_shift=frame_shift, dither=dither,
                       sample_frequency=sample_rate, window_type="hamming", use_energy=False)


def apply_cmn(feats: torch.Tensor) -> torch.Tensor:
    """Cepstral mean normalisation: subtract the mean over time of feats (T, F) -> (T, F)."""
    return feats - feats.mean(dim=0, keepdim=True)
