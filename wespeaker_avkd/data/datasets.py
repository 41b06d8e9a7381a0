"""Map-style datasets of one data dir: audio (fbank from feats.scp or wav.scp), faces, fusion embeddings.

Items are addressed by (index, num_frames, item_seed) tuples from samplers.py, so every random choice
(crop start, face frame, dither) depends on the sampler's seed path only, never on worker timing.
"""
from __future__ import annotations

import copy
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import soundfile as sf
import torch
from PIL import Image
from torch.utils.data import Dataset

from wespeaker_avkd.data.augment import Augmenter, random_chunk, resample, resampled_length
from wespeaker_avkd.data.fbank import AudioError, apply_cmn, compute_fbank, load_wav
from wespeaker_avkd.data.features import read_feats
from wespeaker_avkd.data.samplers import BatchItem, seeded_rng
from wespeaker_avkd.utils.embedding_table import load_embeddings
from wespeaker_avkd.utils.errors import InputKeyError, InputValueError, UnreadableInputError

DEFAULT_FBANK_ARGS = {"num_mel_bins": 40, "frame_length": 25.0, "frame_shift": 10.0, "dither": 0.0}


def load_embedding_table(path: str) -> dict[str, np.ndarray]:
    """Read a Kaldi vector scp/ark (xvector.scp) or .npz into {utt: float32 (D,)}; errors name the file."""
    # One reader for every embedding table (the scorer uses it too): it refuses NaN/Inf, duplicate keys and
    # mixed dimensions with the file and key named.
    keys, emb = load_embeddings(path)
    return dict(zip(keys, emb))


def stack_embeddings(table: Mapping[str, np.ndarray], utts: Sequence[str], what: str, path: str) -> np.ndarray:
    """Rows of `table` for `utts` as (N, D) float32; a missing utterance is an error naming it and the file."""
    missing = [u for u in utts if u not in table]
    if missing:
        raise InputKeyError(f"{what} embedding missing for utterance '{missing[0]}' in {path} "
                            f"({len(missing)} of {len(utts)} utterances missing)")
    return np.stack([table[u] for u in utts]).astype(np.float32) if utts else np.zeros((0, 0), np.float32)


def kaldi_matrix_rows(spec: str) -> int | None:
    """Rows of the uncompressed binary Kaldi matrix at 'ark_path:offset' from its header, or None."""
    path, sep, offset = spec.rpartition(":")
    if not sep or not offset.isdigit():
        return None
    try:
        with open(path, "rb") as f:
            f.seek(int(offset))
            head = f.read(2 + 3 + 1 + 4)
    except OSError:
        return None
    if len(head) < 10 or head[:2] != b"\0B" or head[2:5] not in (b"FM ", b"DM ") or head[5] != 4:
        return None
    return int(np.frombuffer(head[6:10], dtype="<i4")[0])


def load_face(source: str | bytes, image_size: int | Sequence[int], name: str | None = None) -> torch.Tensor:
    """Read an image (a path, or its encoded bytes named `name`) as RGB, resize (bilinear) to image_size ->
    float Tensor (3, H, W) in [0, 1]."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img = img.convert("RGB")
            h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
            if img.size != (w, h):
                img = img.resize((w, h), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except Exception as e:
        raise UnreadableInputError(f"{name or source}: cannot read face image ({e})") from e
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def even_indices(n: int, k: int) -> list[int]:
    """k evenly spaced indices over range(n) (first and last included; repeats when n < k)."""
    if k == 1:
        return [n // 2]
    return [int(round(x)) for x in np.linspace(0, n - 1, k)]


def chunk_samples(num_frames: int, sample_rate: int, fbank_args: Mapping[str, Any]) -> int:
    """Samples of a wave that give exactly num_frames fbank frames (snip_edges): (T - 1) * shift + window."""
    shift = int(sample_rate * fbank_args["frame_shift"] / 1000)
    win = int(sample_rate * fbank_args["frame_length"] / 1000)
    return (num_frames - 1) * shift + win


def fbank_frames(samples: int, sample_rate: int, fbank_args: Mapping[str, Any]) -> int:
    """Fbank frames (snip_edges) of a wave of `samples` samples."""
    shift = int(sample_rate * fbank_args["frame_shift"] / 1000)
    win = int(sample_rate * fbank_args["frame_length"] / 1000)
    return 0 if samples < win else 1 + (samples - win) // shift


def wave_input(wave: torch.Tensor, sample_rate: int, fbank_args: Mapping[str, Any], num_frames: int,
               rng: np.random.Generator | None, augmenter: Augmenter | None = None) -> torch.Tensor:
    """The audio model input of one wave (S,): CMN'd fbank (T, F) of a random num_frames chunk (training,
    num_frames > 0, dithered when fbank_args say so, augmented by `augmenter`: speed perturbation before the
    chunk is cut, reverb/noise after it, SpecAugment on the fbank) or of the whole wave (num_frames 0, never
    dithered or augmented)."""
    args = dict(fbank_args)
    if num_frames:
        chunk_len = chunk_samples(num_frames, sample_rate, args)
        chunk = wave.numpy()
        if augmenter is not None:
            chunk = augmenter.before_chunk(chunk, rng, args["frame_shift"], sample_rate, chunk_len)
        chunk = random_chunk(chunk, chunk_len, rng)
        if augmenter is not None:
            chunk = augmenter.after_chunk(chunk, rng, sample_rate)
        wave = torch.from_numpy(chunk)
        if args["dither"]:
            torch.manual_seed(int(rng.integers(0, 2 ** 31 - 1)))  # kaldi.fbank dithers from torch's global RNG
    else:
        args["dither"] = 0.0  # evaluation is deterministic
    feats = apply_cmn(compute_fbank(wave, sample_rate=sample_rate, **args))
    return augmenter.on_feats(feats, rng) if num_frames and augmenter is not None else feats


def feats_input(feats: np.ndarray, num_frames: int, rng: np.random.Generator | None,
                augmenter: Augmenter | None = None) -> torch.Tensor:
    """The audio model input of one stored fbank matrix (T, F): CMN'd, a random num_frames chunk in training
    (augmented by `augmenter`: its frame-level steps before the chunk is cut, SpecAugment after CMN)."""
    if num_frames and augmenter is not None:
        feats = augmenter.before_chunk(feats, rng, DEFAULT_FBANK_ARGS["frame_shift"], None, num_frames)
    if num_frames:
        feats = random_chunk(feats, num_frames, rng)
    out = apply_cmn(torch.from_numpy(np.ascontiguousarray(feats)))
    return augmenter.on_feats(out, rng) if num_frames and augmenter is not None else out


def face_indices(num_frames: int, train: bool, num_eval_frames: int, rng: np.random.Generator | None) -> list[int]:
    """Which of an utterance's num_frames face frames make its input: one random (training) or
    num_eval_frames evenly spaced (evaluation)."""
    if train:
        return [int(rng.integers(num_frames))]
    return even_indices(num_frames, num_eval_frames)


def faces_input(images: Sequence[torch.Tensor], train: bool) -> torch.Tensor:
    """The visual model input from the chosen normalised frames (3, H, W): the frame (training) or the stack
    (K, 3, H, W) (evaluation)."""
    return images[0] if train else torch.stack(list(images))


class FaceTransform:
    """Decode a face image (path or bytes), resize to image_size, normalise by mean/std per channel."""

    def __init__(self, image_size: int | Sequence[int], mean: Sequence[float], std: Sequence[float]) -> None:
        self.image_size = image_size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, source: str | bytes, name: str | None = None) -> torch.Tensor:
        """(3, H, W) normalised frame."""
        return (load_face(source, self.image_size, name) - self.mean) / self.std


def keyed_item(key: str, inputs: Any, index: int, labels: np.ndarray | None, teacher: np.ndarray | None
               ) -> dict:
    """A dataset item {key, input[, label][, teacher_emb]}: row `index` of the labels (N,) and of the teacher
    embeddings (N, D) when the dataset has them."""
    out = {"key": key, "input": inputs}
    if labels is not None:
        out["label"] = int(labels[index])
    if teacher is not None:
        out["teacher_emb"] = torch.from_numpy(teacher[index])
    return out


class KeyedDataset(Dataset):
    """Base: utterance keys with optional labels (N,) and teacher embeddings (N, Dt); subclasses make inputs."""

    def __init__(self, utts: Sequence[str], labels: Sequence[int] | None = None,
                 teacher: np.ndarray | None = None) -> None:
        self.utts = list(utts)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.teacher = teacher

    def __len__(self) -> int:
        return len(self.utts)

    def make_input(self, index: int, num_frames: int, rng: np.random.Generator | None) -> Any:
        """The model input of one item (subclass)."""
        raise NotImplementedError

    def __getitem__(self, item: int | BatchItem) -> dict:
        index, num_frames, item_seed = (item, 0, 0) if isinstance(item, (int, np.integer)) else item
        rng = seeded_rng(item_seed) if num_frames or item_seed else None
        return keyed_item(self.utts[index], self.make_input(index, num_frames, rng), index, self.labels,
                          self.teacher)


class AudioDataset(KeyedDataset):
    """Fbank of each utterance, CMN'd: a random num_frames chunk in training, the whole utterance otherwise."""

    def __init__(self, utts: Sequence[str], sources: Mapping[str, str], source_kind: str,
                 fbank_args: Mapping[str, Any] | None = None, sample_rate: int = 16000,
                 augmenter: Augmenter | None = None, resample_rate: int | None = None, **kw: Any) -> None:
        super().__init__(utts, **kw)
        if source_kind not in ("feats", "wav"):
            raise ValueError(f"feat_source must be 'feats' or 'wav', got {source_kind!r}")
        self.sources = [sources[u] for u in self.utts]
        self.source_kind = source_kind
        self.fbank_args = {**DEFAULT_FBANK_ARGS, **(fbank_args or {})}
        # resample_rate (WeSpeaker's key): any input rate is resampled to it; unset, the input must be sample_rate
        self.resample = resample_rate is not None
        self.sample_rate = int(resample_rate) if self.resample else sample_rate
        self.augmenter = augmenter or Augmenter()

    def __getitem__(self, item: int | BatchItem) -> dict:
        out = super().__getitem__(item)
        if self.augmenter.speed_perturb and "label" in out and not isinstance(item, (int, np.integer)) and item[1]:
            # the item's speed is the first draw of its generator (make_input draws it first): its class too
            out["label"] = self.augmenter.label(out["label"], seeded_rng(item[2]))
        return out

    def num_frames(self, index: int) -> int | None:
        """Frames the whole-utterance input of item `index` will have, read from file headers only (the
        feature ark's matrix header, the wav header); None when that cannot be told without decoding."""
        if self.source_kind == "feats":
            return kaldi_matrix_rows(self.sources[index])
        samples = self._wav_samples(index)
        if samples is None:
            return None
        return fbank_frames(samples, self.sample_rate, self.fbank_args)

    def _wav_samples(self, index: int) -> int | None:
        """Samples of item `index`'s wave at self.sample_rate, from its header; None when unreadable here."""
        try:
            info = sf.info(self.sources[index])
        except Exception:  # unreadable here: the loader reports it with the file named
            return None
        return resampled_length(info.frames, info.samplerate, self.sample_rate) if self.resample else info.frames

    def input_length(self, index: int) -> int:
        """Samples of item `index`'s wave (feat_source wav) or rows of its features (feats), from file headers
        where they tell, else from the decoded input (whose errors name the file)."""
        if self.source_kind == "feats":
            rows = kaldi_matrix_rows(self.sources[index])
            return rows if rows is not None else len(read_feats(self.sources[index], self.utts[index], "feats.scp"))
        samples = self._wav_samples(index)
        return samples if samples is not None else len(self._wave(index))

    def subset(self, indices: Sequence[int]) -> AudioDataset:
        """A shallow copy over the items `indices` only (utterances, sources, labels, teacher rows)."""
        out = copy.copy(self)
        out.utts = [self.utts[i] for i in indices]
        out.sources = [self.sources[i] for i in indices]
        out.labels = None if self.labels is None else self.labels[list(indices)]
        out.teacher = None if self.teacher is None else self.teacher[list(indices)]
        return out

    def _wave(self, index: int) -> torch.Tensor:
        wave, sr = load_wav(self.sources[index])
        if self.resample:
            return resample(wave, sr, self.sample_rate)
        if sr != self.sample_rate:
            raise InputValueError(f"{self.sources[index]}: sample rate {sr} Hz, expected {self.sample_rate} Hz")
        return wave

    def make_input(self, index: int, num_frames: int, rng: np.random.Generator | None) -> torch.Tensor:
        if self.source_kind == "feats":
            feats = read_feats(self.sources[index], self.utts[index], "feats.scp")  # named error when corrupt
            return feats_input(feats, num_frames, rng, self.augmenter)
        wave = self._wave(index)  # a file it cannot use is named by load_wav
        try:
            return wave_input(wave, self.sample_rate, self.fbank_args, num_frames, rng, self.augmenter)
        except AudioError as e:  # a wave shorter than one frame: name its file
            raise AudioError(f"{self.sources[index]}: {e}") from None


class VisualDataset(KeyedDataset):
    """Face frames of each segment: one random frame (3, H, W) in training, K evenly spaced (K, 3, H, W) otherwise."""

    def __init__(self, utts: Sequence[str], frames: Mapping[str, Sequence[str]], image_size: int | Sequence[int],
                 mean: Sequence[float], std: Sequence[float], train: bool, num_eval_frames: int = 5,
                 **kw: Any) -> None:
        super().__init__(utts, **kw)
        self.frames = [list(frames[u]) for u in self.utts]
        self.transform = FaceTransform(image_size, mean, std)
        self.train, self.num_eval_frames = train, int(num_eval_frames)

    def make_input(self, index: int, num_frames: int, rng: np.random.Generator | None) -> torch.Tensor:
        paths = self.frames[index]
        chosen = face_indices(len(paths), self.train, self.num_eval_frames, rng)
        return faces_input([self.transform(paths[i]) for i in chosen], self.train)


class FusionDataset(KeyedDataset):
    """Pairs of pre-extracted (audio (Da,), visual (Dv,)) embeddings of each utterance."""

    def __init__(self, utts: Sequence[str], audio: np.ndarray, visual: np.ndarray, **kw: Any) -> None:
        super().__init__(utts, **kw)
        self.audio, self.visual = audio, visual

    def make_input(self, index: int, num_frames: int, rng: np.random.Generator | None) -> tuple:
        return torch.from_numpy(self.audio[index]), torch.from_numpy(self.visual[index])


def collate_batch(items: Sequence[dict]) -> dict:
    """Stack items into {"keys", "inputs", "labels"?, "teacher_emb"?}; fusion inputs stay a (audio, visual) tuple,
    items of different shapes stay a list of tensors."""
    first = items[0]["input"]
    if isinstance(first, tuple):
        inputs: Any = tuple(torch.stack([it["input"][m] for it in items]) for m in range(len(first)))
    elif any(it["input"].shape != first.shape for it in items):
        inputs = [it["input"] for it in items]  # ragged (an evaluation batch whose lengths were mispredicted)
    else:
        inputs = torch.stack([it["input"] for it in items])
    batch = {"keys": [it["key"] for it in items], "inputs": inputs}
    if "label" in items[0]:
        batch["labels"] = torch.tensor([it["label"] for it in items], dtype=torch.long)
    if "teacher_emb" in items[0]:
        batch["teacher_emb"] = torch.stack([it["teacher_emb"] for it in items]).float()
    return batch
