"""WeSpeaker's training-data pipeline steps, with its key names and semantics, as pure seeded functions.

The steps of WeSpeaker's `wespeaker/dataset/processor.py`, in its order: `filter` (drop utterances shorter than
`filter_args.min_num_frames`, cut a random `max_num_frames` piece from longer ones), `resample_rate`,
`speed_perturb` (speeds 1.0 / 0.9 / 1.1 drawn uniformly; each speed is a class of its own, label + k x speakers),
the random chunk (datasets.py), `aug_prob` (reverberation or additive noise, one of the two with equal chance),
fbank, mean normalisation, `spec_aug` (`spec_aug_args`). Every random choice comes from the numpy Generator
passed in (the item's, samplers.py), so a run is reproducible whatever the worker timing.

Noise and room impulse responses come from a Kaldi `wav.scp` (or WeSpeaker's lmdb when the `lmdb` package is
installed). WeSpeaker picks the SNR range from the key's first path component, as MUSAN's folders name them
(`noise/...` 0-15 dB, `speech/...` 10-30 dB: babble, `music/...` 5-15 dB); any other key gets 0-15 dB.
"""
from __future__ import annotations

import io
import math
import os
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np
import soundfile as sf
import torch

from wespeaker_avkd.data.dataset_args import AudioDatasetArgs
from wespeaker_avkd.utils.errors import NamedError

SPEEDS = (1.0, 0.9, 1.1)                 # WeSpeaker's order: index k adds k x num_speakers to the label
SNR_RANGES = {"noise": (0.0, 15.0), "speech": (10.0, 30.0), "music": (5.0, 15.0)}
DEFAULT_SNR_RANGE = (0.0, 15.0)
POWER_FLOOR = 1e-4                       # WeSpeaker adds it to the mean power before taking dB
PEAK_FLOOR = 1e-4                        # and to the peak before normalising the augmented wave to [-1, 1]
SET_CACHE_BYTES = 256 << 20              # decoded noise / RIR waves kept per set and worker
SPEED_MARGIN = 64                        # input samples kept beyond a chunk's span around a speed change


class AugmentError(NamedError, ValueError):
    """A noise or RIR set that cannot be used; the message names the file or key."""


# ---------------------------------------------------------------- additive noise and reverberation
def snr_range(key: str) -> tuple[float, float]:
    """WeSpeaker's SNR range (dB) for a noise of key `key`, from its first path component (MUSAN's category)."""
    return SNR_RANGES.get(key.split("/", 1)[0], DEFAULT_SNR_RANGE)


def mean_power_db(x: np.ndarray) -> float:
    """10 log10(mean(x^2) + 1e-4): WeSpeaker's level of a wave (S,) in [-1, 1]."""
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + POWER_FLOOR))


def add_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """audio (S,) + noise (S,) scaled so that mean_power_db(audio) - mean_power_db(scaled noise) is snr_db
    (before the 1e-4 power floor, exactly as WeSpeaker scales it) -> (S,) float32, not peak-normalised."""
    if audio.shape != noise.shape:
        raise ValueError(f"add_noise: audio {audio.shape} and noise {noise.shape} differ in length")
    gain = np.sqrt(10 ** ((mean_power_db(audio) - mean_power_db(noise) - snr_db) / 10))
    return (audio + gain * noise).astype(np.float32)


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """audio (S,) convolved with the unit-energy rir (R,), cut to the first S samples (WeSpeaker) -> (S,)."""
    from scipy.signal import fftconvolve

    energy = float(np.sqrt(np.sum(np.square(rir, dtype=np.float64))))
    if energy == 0:
        raise ValueError("reverberate: the impulse response is all zeros")
    return fftconvolve(audio.astype(np.float64), rir / energy, mode="full")[:len(audio)].astype(np.float32)


def peak_normalize(audio: np.ndarray) -> np.ndarray:
    """audio / (max |audio| + 1e-4): WeSpeaker's rescaling of an augmented wave into [-1, 1]."""
    return (audio / (np.max(np.abs(audio)) + PEAK_FLOOR)).astype(np.float32)


def random_chunk(data: np.ndarray, chunk_len: int, rng: np.random.Generator) -> np.ndarray:
    """A chunk of chunk_len along axis 0: random start when long enough, else the data repeated (WeSpeaker); the
    one chunk rule for utterances (data/datasets.py) and noises."""
    n = data.shape[0]
    if n >= chunk_len:
        start = int(rng.integers(0, n - chunk_len + 1))
        return data[start:start + chunk_len]
    reps = chunk_len // n + 1
    return np.concatenate([data] * reps, axis=0)[:chunk_len]


# ---------------------------------------------------------------- speed, resampling, length
def resample(wave: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """wave (S,) from orig_rate to new_rate Hz -> (ceil(S new/orig),): a polyphase low-pass FIR (scipy's
    resample_poly, Kaiser window; about 10x faster here than torchaudio's windowed sinc, which WeSpeaker uses)."""
    if orig_rate == new_rate:
        return wave
    from scipy.signal import resample_poly

    g = math.gcd(int(orig_rate), int(new_rate))
    out = resample_poly(wave.numpy(), int(new_rate) // g, int(orig_rate) // g)
    return torch.from_numpy(out.astype(np.float32))


def resampled_length(num_samples: int, orig_rate: int, new_rate: int) -> int:
    """Samples of `resample` output for num_samples input samples."""
    return num_samples if orig_rate == new_rate else -(-num_samples * int(new_rate) // int(orig_rate))


def speed_perturb(wave: torch.Tensor, sample_rate: int, speed: float) -> torch.Tensor:
    """wave (S,) played `speed` times faster at the same rate (sox `speed` + `rate`: tempo and pitch change
    together) -> (about S / speed,)."""
    if speed == 1.0:
        return wave
    return resample(wave, int(round(sample_rate * speed)), int(sample_rate))


def speed_label(label: int, speed_index: int, num_speakers: int) -> int:
    """WeSpeaker's class of an utterance of class `label` at SPEEDS[speed_index]: label + index x speakers."""
    return int(label) + int(speed_index) * int(num_speakers)


def num_classes(num_speakers: int, speed_perturbed: bool) -> int:
    """AAM classes for num_speakers training speakers: 3x with speed perturbation (each speed its own class)."""
    return num_speakers * (len(SPEEDS) if speed_perturbed else 1)


def filter_bounds(min_num_frames: int, max_num_frames: int, frame_shift_ms: float,
                  sample_rate: int) -> tuple[int, int]:
    """WeSpeaker's filter bounds in samples: (int(shift x min_frames x rate), int(shift x max_frames x rate))."""
    per_frame = frame_shift_ms / 1000 * sample_rate
    return int(per_frame * min_num_frames), int(per_frame * max_num_frames)


def cap_length(data: np.ndarray, max_len: int, rng: np.random.Generator) -> np.ndarray:
    """data (N, ...) unchanged when N <= max_len, else a random piece of max_len along axis 0 (WeSpeaker's filter)."""
    return data if len(data) <= max_len else random_chunk(data, max_len, rng)


# ---------------------------------------------------------------- features, order
def spec_aug(feats: torch.Tensor, rng: np.random.Generator, num_t_mask: int = 1, num_f_mask: int = 1,
             max_t: int = 10, max_f: int = 8, prob: float = 0.6) -> torch.Tensor:
    """SpecAugment as WeSpeaker's processor: with probability prob, zero num_t_mask time bands (start uniform
    in [0, T-1], width uniform in [1, max_t], cut at T) and num_f_mask frequency bands of feats (T, F) -> copy."""
    if not rng.random() < prob:
        return feats
    out = feats.clone()
    frames, bins = out.shape
    for _ in range(num_t_mask):
        start = int(rng.integers(0, frames))
        out[start:start + int(rng.integers(1, max_t + 1)), :] = 0
    for _ in range(num_f_mask):
        start = int(rng.integers(0, bins))
        out[:, start:start + int(rng.integers(1, max_f + 1))] = 0
    return out


def buffer_shuffle(items: Sequence[Any], shuffle_size: int, rng: np.random.Generator) -> list[Any]:
    """WeSpeaker's local shuffle: items cut into consecutive buffers of shuffle_size, each permuted."""
    out: list[Any] = []
    for start in range(0, len(items), shuffle_size):
        buf = list(items[start:start + shuffle_size])
        out.extend(buf[i] for i in rng.permutation(len(buf)))
    return out


def samples_per_epoch(num_utts: int, sample_num_per_epoch: int) -> int:
    """Training samples of one epoch: sample_num_per_epoch, or every utterance once when it is 0 (WeSpeaker)."""
    return int(sample_num_per_epoch) if sample_num_per_epoch > 0 else int(num_utts)


# ---------------------------------------------------------------- noise and RIR sets
class _KeysOnly(pickle.Unpickler):
    """Unpickles WeSpeaker's lmdb key list (a list of str) and nothing that needs a class or function."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: the lmdb key list holds strings only")


class AudioSet:
    """A noise or RIR set: keys and a way to read each as (float32 wave (S,) in [-1, 1], rate in Hz)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db = None
        self._cache: dict[str, tuple[np.ndarray, int]] = {}
        self._cached_bytes = 0
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, "data.mdb")):
            self.keys = self._lmdb_keys(path)
            self._paths: dict[str, str] = {}
        else:
            from wespeaker_avkd.data.kaldi_dir import read_table

            scp = os.path.join(path, "wav.scp") if os.path.isdir(path) else path
            if not os.path.isfile(scp):
                raise AugmentError(f"{path}: not a wav.scp, a dir with a wav.scp or an lmdb dir (data.mdb)")
            self._paths = read_table(scp)
            self.keys = sorted(self._paths)
        if not self.keys:
            raise AugmentError(f"{path}: the set is empty")

    @staticmethod
    def _lmdb_keys(path: str) -> list[str]:
        """The key list WeSpeaker's tools/make_lmdb.py stores under b'__keys__'."""
        try:
            import lmdb
        except ImportError:
            raise AugmentError(f"{path} is an lmdb set: install the python package 'lmdb' to read it, or give "
                               "the set as a Kaldi wav.scp") from None
        with lmdb.open(path, readonly=True, lock=False, readahead=False) as db, db.begin() as txn:
            raw = txn.get(b"__keys__")
        if raw is None:
            raise AugmentError(f"{path}: lmdb without the '__keys__' entry of WeSpeaker's make_lmdb.py")
        keys = _KeysOnly(io.BytesIO(raw)).load()
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise AugmentError(f"{path}: '__keys__' is not a list of strings")
        return keys

    def _bytes(self, key: str) -> bytes:
        import lmdb

        if self._db is None:  # opened lazily: every DataLoader worker gets its own handle
            self._db = lmdb.open(self.path, readonly=True, lock=False, readahead=False)
        with self._db.begin() as txn:
            value = txn.get(key.encode())
        if value is None:
            raise AugmentError(f"{self.path}: key '{key}' listed in '__keys__' has no value")
        return value

    def read(self, key: str) -> tuple[np.ndarray, int]:
        """The wave of `key` as float32 (S,) in [-1, 1] (multi-channel files: the first channel) and its rate;
        decoded waves are kept up to SET_CACHE_BYTES (the oldest dropped first)."""
        if key not in self._cache:
            wave = self._decode(key)
            while self._cache and self._cached_bytes + wave[0].nbytes > SET_CACHE_BYTES:
                self._cached_bytes -= self._cache.pop(next(iter(self._cache)))[0].nbytes
            self._cache[key] = wave
            self._cached_bytes += wave[0].nbytes
        return self._cache[key]

    def _decode(self, key: str) -> tuple[np.ndarray, int]:
        """read() without the cache."""
        source = self._paths[key] if self._paths else io.BytesIO(self._bytes(key))
        try:
            data, rate = sf.read(source, dtype="float32", always_2d=True)
        except Exception as e:
            raise AugmentError(f"{self.path}: cannot read '{key}' ({e})") from e
        if data.shape[0] == 0:
            raise AugmentError(f"{self.path}: '{key}' has no samples")
        return np.ascontiguousarray(data[:, 0]), int(rate)

    def draw(self, rng: np.random.Generator) -> tuple[str, np.ndarray, int]:
        """(key, wave, rate) of a uniformly drawn entry."""
        key = self.keys[int(rng.integers(len(self.keys)))]
        return (key, *self.read(key))


def reverb_or_noise(audio: np.ndarray, rng: np.random.Generator, aug_prob: float, rirs: AudioSet,
                    noises: AudioSet, sample_rate: int) -> np.ndarray:
    """WeSpeaker's add_reverb_noise on one chunk (S,): with probability aug_prob, reverberation or additive noise
    (equal chance; noise SNR uniform in snr_range(key)), then peak-normalised; else audio unchanged."""
    if not rng.random() < aug_prob:
        return audio
    if int(rng.integers(1, 3)) == 1:
        _, rir, rate = rirs.draw(rng)
        if rate != sample_rate:
            rir = resample(torch.from_numpy(rir), rate, sample_rate).numpy()
        out = reverberate(audio, rir)
    else:
        key, noise, rate = noises.draw(rng)
        if rate != sample_rate:  # a piece of the same duration first: noise files can be long
            piece = random_chunk(noise, resampled_length(len(audio), sample_rate, rate), rng)
            noise = resample(torch.from_numpy(piece), rate, sample_rate).numpy()
        noise = random_chunk(noise, len(audio), rng)
        lo, hi = snr_range(key)
        out = add_noise(audio, noise, float(rng.uniform(lo, hi)))
    return peak_normalize(out)


# ---------------------------------------------------------------- the dataset's augmenter
class Augmenter:
    """The training-time steps of one audio dataset, built from its typed dataset_args
    (data/dataset_args.py:AudioDatasetArgs; the default section turns every step off); every method is the
    identity when its key is off."""

    def __init__(self, args: AudioDatasetArgs | None = None, num_speakers: int = 0) -> None:
        args = AudioDatasetArgs() if args is None else args
        # do_lm (large-margin fine-tuning): no speed perturbation in the data, the head keeps its 3 x speakers
        self.speed_perturb = args.speed_perturb and not args.do_lm
        self.num_speakers = int(num_speakers)
        self.aug_prob = args.aug_prob
        self.filter = args.filter
        self.filter_args = args.filter_args
        self.spec_aug = args.spec_aug
        self.spec_aug_args = args.spec_aug_args
        self.rirs = self.noises = None
        if self.aug_prob > 0:
            missing = [k for k in ("reverb_data", "noise_data") if not getattr(args, k)]
            if missing:
                raise AugmentError(f"aug_prob {self.aug_prob} needs both reverb_data and noise_data (missing: "
                                   f"{', '.join(missing)}): give the RIR and noise sets, or set aug_prob: 0")
            self.rirs, self.noises = AudioSet(args.reverb_data), AudioSet(args.noise_data)

    @property
    def wave_steps(self) -> list[str]:
        """The keys that act on the waveform (they need feat_source: wav)."""
        return [k for k, on in (("speed_perturb", self.speed_perturb), ("aug_prob", self.aug_prob > 0)) if on]

    def speed_index(self, rng: np.random.Generator) -> int:
        """The item's speed (index into SPEEDS): the first draw of its generator, 0 when speed_perturb is off."""
        return int(rng.integers(len(SPEEDS))) if self.speed_perturb else 0

    def label(self, label: int, item_rng: np.random.Generator) -> int:
        """The training class of an item of speaker class `label` (item_rng: a fresh generator of the item)."""
        return speed_label(label, self.speed_index(item_rng), self.num_speakers)

    def filter_bounds(self, frame_shift_ms: float, sample_rate: int) -> tuple[int, int]:
        """(min, max) samples of filter_args at sample_rate."""
        return filter_bounds(self.filter_args.min_num_frames, self.filter_args.max_num_frames,
                             frame_shift_ms, sample_rate)

    def keep(self, length: int, frame_shift_ms: float, sample_rate: int | None) -> bool:
        """Whether an utterance of `length` samples (frames when sample_rate is None) passes the filter."""
        if not self.filter:
            return True
        if sample_rate is None:
            return length >= self.filter_args.min_num_frames
        return length >= self.filter_bounds(frame_shift_ms, sample_rate)[0]

    def before_chunk(self, data: np.ndarray, rng: np.random.Generator, frame_shift_ms: float,
                     sample_rate: int | None, chunk_len: int) -> np.ndarray:
        """Speed draw, filter's cap of long utterances, speed perturbation: a wave (S,) at sample_rate, or a
        feature matrix (T, F) when sample_rate is None (speed perturbation needs a wave). Only the random piece
        a chunk of chunk_len samples can come from is speed-perturbed (the same distribution of chunks as
        perturbing the whole utterance, WeSpeaker's order, at a fraction of the cost)."""
        speed = SPEEDS[self.speed_index(rng)]
        if self.filter:
            max_len = (self.filter_args.max_num_frames if sample_rate is None
                       else self.filter_bounds(frame_shift_ms, sample_rate)[1])
            data = cap_length(data, max_len, rng)
        if speed != 1.0 and sample_rate is not None:
            data = cap_length(data, math.ceil(chunk_len * speed) + 2 * SPEED_MARGIN, rng)
            data = speed_perturb(torch.from_numpy(np.ascontiguousarray(data)), sample_rate, speed).numpy()
        return data

    def after_chunk(self, wave: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
        """Reverberation or additive noise on the chunk (S,) with probability aug_prob."""
        if self.aug_prob <= 0:
            return wave
        return reverb_or_noise(wave, rng, self.aug_prob, self.rirs, self.noises, sample_rate)

    def on_feats(self, feats: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """SpecAugment of the mean-normalised features (T, F) when spec_aug is on."""
        if not self.spec_aug:
            return feats
        a = self.spec_aug_args
        return spec_aug(feats, rng, a.num_t_mask, a.num_f_mask, a.max_t, a.max_f, a.prob)
