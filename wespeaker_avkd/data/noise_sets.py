"""Noise and room-impulse-response sets for augmentation (data/augment.py) as Kaldi wav.scp dirs.

Generated (no download; for the tests and the toy corpus): coloured noises (white, pink, brown), babble (a few
training voices summed) and tone "music", keyed `noise/<colour>/...`, `speech/babble/...`, `music/tones/...` so
that WeSpeaker's SNR ranges by MUSAN category apply; and synthetic RIRs: a direct path followed by exponentially
decaying Gaussian noise whose level falls 60 dB in a drawn RT60. Or scanned from real MUSAN and RIRS_NOISES
folders, with the keys WeSpeaker's voxceleb/v2 data preparation gives (the last three path components).
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import soundfile as sf

from wespeaker_avkd.data.augment import AugmentError, random_chunk
from wespeaker_avkd.data.kaldi_dir import read_table
from wespeaker_avkd.utils.fileio import atomic_write

NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}   # power spectrum ~ 1 / f^exponent
RT60_RANGE = (0.2, 0.9)                                       # seconds
RIR_SECONDS = 0.5
PEAK = 0.5                                                    # generated waves are scaled to this peak


def coloured_noise(num_samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise (num_samples,) whose power spectrum falls as 1 / f^exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0  # keep the DC bin finite
    return np.fft.irfft(spectrum / freqs ** (exponent / 2), n=num_samples)


def babble(voices: Sequence[np.ndarray], num_samples: int, rng: np.random.Generator,
           talkers: tuple[int, int] = (3, 6)) -> np.ndarray:
    """The sum of a drawn number of talkers in [talkers[0], talkers[1]): random pieces of `voices`, each at unit
    power -> (num_samples,)."""
    out = np.zeros(num_samples)
    for i in rng.choice(len(voices), size=int(rng.integers(*talkers)), replace=len(voices) < talkers[1]):
        piece = random_chunk(np.asarray(voices[i], dtype=np.float64), num_samples, rng)
        out += piece / (np.sqrt(np.mean(piece ** 2)) + 1e-9)
    return out


def tones(num_samples: int, sample_rate: int, rng: np.random.Generator, note_seconds: float = 0.25) -> np.ndarray:
    """Tone "music": notes of a drawn equal-tempered pitch (A2-A5) with three decaying harmonics -> (num_samples,)."""
    note = int(note_seconds * sample_rate)
    t = np.arange(note) / sample_rate
    pieces = []
    for _ in range(-(-num_samples // note)):
        f0 = 110.0 * 2 ** (int(rng.integers(0, 37)) / 12)
        pieces.append(sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3)) * np.exp(-3 * t))
    return np.concatenate(pieces)[:num_samples]


def synthetic_rir(sample_rate: int, rt60: float, rng: np.random.Generator,
                  seconds: float = RIR_SECONDS) -> np.ndarray:
    """A room impulse response (seconds x rate,): a unit direct path, then Gaussian reflections from 2.5 ms on
    under an envelope falling 60 dB in rt60 seconds."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    rir = rng.standard_normal(n) * 10 ** (-3 * t / rt60) * 0.3
    rir[: int(0.0025 * sample_rate)] = 0.0
    rir[0] = 1.0
    return rir


def _write_wav(path: str, wave: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM wav of wave scaled to peak PEAK, written atomically."""
    scaled = wave * (PEAK / (np.max(np.abs(wave)) + 1e-12))
    with atomic_write(path, "wb", encoding=None) as f:
        sf.write(f, scaled.astype(np.float32), sample_rate, format="WAV", subtype="PCM_16")


def _write_scp(path: str, entries: dict[str, str]) -> None:
    """A Kaldi wav.scp of {key: absolute wav path}, sorted by key, written atomically."""
    with atomic_write(path) as f:
        f.writelines(f"{key} {os.path.abspath(p)}\n" for key, p in sorted(entries.items()))


def write_noise_set(out_dir: str, speech_scp: str, seed: int = 0, per_kind: int = 4, seconds: float = 6.0,
                    sample_rate: int = 16000) -> str:
    """Generate per_kind noises of each colour, babble (from speech_scp's voices) and tones into out_dir
    (wav files + wav.scp); returns the wav.scp path."""
    from wespeaker_avkd.data.fbank import load_wav

    rng = np.random.default_rng(seed)
    speech = sorted(read_table(speech_scp).items())
    if not speech:
        raise AugmentError(f"{speech_scp}: no utterances to make babble from")
    picks = rng.choice(len(speech), size=min(len(speech), 24), replace=False)
    voices = [load_wav(speech[i][1])[0].numpy() for i in sorted(picks)]
    n = int(seconds * sample_rate)
    makers = {f"noise/{c}": (lambda e=e: coloured_noise(n, e, rng)) for c, e in NOISE_COLOURS.items()}
    makers["speech/babble"] = lambda: babble(voices, n, rng)
    makers["music/tones"] = lambda: tones(n, sample_rate, rng)
    return _write_set(out_dir, {f"{prefix}/{prefix.replace('/', '-')}-{i:04d}.wav": make
                                for prefix, make in makers.items() for i in range(per_kind)}, sample_rate)


def write_rir_set(out_dir: str, seed: int = 0, count: int = 16, sample_rate: int = 16000) -> str:
    """Generate `count` synthetic RIRs with RT60 uniform in RT60_RANGE into out_dir; returns the wav.scp path."""
    rng = np.random.default_rng(seed)
    return _write_set(out_dir, {f"rirs/simulated/rir-{i:04d}.wav":
                                (lambda: synthetic_rir(sample_rate, float(rng.uniform(*RT60_RANGE)), rng))
                                for i in range(count)}, sample_rate)


def _write_set(out_dir: str, makers: dict, sample_rate: int) -> str:
    """Write makers' waves (key -> no-argument function, called in key order) under out_dir + its wav.scp."""
    wav_dir = os.path.join(out_dir, "wavs")
    os.makedirs(wav_dir, exist_ok=True)
    entries = {}
    for key in sorted(makers):
        path = os.path.join(wav_dir, key.replace("/", "_"))
        _write_wav(path, makers[key](), sample_rate)
        entries[key] = path
    scp = os.path.join(out_dir, "wav.scp")
    _write_scp(scp, entries)
    return scp


def scan_set(folder: str, out_dir: str, subdir: str | None = None) -> str:
    """wav.scp in out_dir of every .wav under folder (or folder/subdir when it exists), keyed by its last three
    path components as WeSpeaker's data preparation keys MUSAN and RIRS_NOISES; returns the wav.scp path."""
    root = os.path.join(folder, subdir) if subdir and os.path.isdir(os.path.join(folder, subdir)) else folder
    if not os.path.isdir(root):
        raise AugmentError(f"{folder}: no such directory")
    entries = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.lower().endswith(".wav"):
                path = os.path.join(dirpath, name)
                key = "/".join(os.path.normpath(path).split(os.sep)[-3:])
                if key in entries:
                    raise AugmentError(f"{folder}: two files give the key '{key}' ({entries[key]}, {path})")
                entries[key] = path
    if not entries:
        raise AugmentError(f"{root}: no .wav files found")
    os.makedirs(out_dir, exist_ok=True)
    scp = os.path.join(out_dir, "wav.scp")
    _write_scp(scp, entries)
    return scp
