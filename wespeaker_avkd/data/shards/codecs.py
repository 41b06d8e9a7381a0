"""Per-utterance decoding of shard members: audio bytes, .npy fbank, face frames, as the raw-file datasets
make the same inputs (AudioCodec, VisualCodec)."""
from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import soundfile as sf
import torch

from wespeaker_avkd.data.datasets import FaceTransform, face_indices, faces_input, fbank_frames, feats_input, wave_input
from wespeaker_avkd.data.shards.format import FEATS_POSTFIX, ShardEntry, ShardError, face_postfix
from wespeaker_avkd.data.shards.index import MemberReader
from wespeaker_avkd.data.validate import audio_problem


def decode_audio(data: bytes, name: str) -> tuple[torch.Tensor, int]:
    """Audio file bytes -> (float32 mono wave (S,) in [-1, 1], sample rate); errors name the member."""
    try:
        wave, sample_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as e:
        raise ShardError(f"{name}: cannot read audio ({e})") from e
    problem = audio_problem(wave)  # the rule load_wav applies to files: no empty or non-finite audio
    if problem:
        raise ShardError(f"{name}: {problem}")
    if wave.shape[1] != 1:
        wave = wave.mean(axis=1, keepdims=True)  # down-mix, as data.fbank.load_wav does
    return torch.from_numpy(np.ascontiguousarray(wave[:, 0])), int(sample_rate)


def wav_header_frames(head: bytes, member_size: int) -> int | None:
    """Sample frames of a RIFF/WAVE file from its first bytes (fmt block align and data chunk size), or None."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, align = 12, None
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if chunk == b"fmt " and pos + 22 <= len(head):
            align = int.from_bytes(head[pos + 20:pos + 22], "little")
        if chunk == b"data":
            return min(size, member_size - pos - 8) // align if align else None
        pos += 8 + size + (size & 1)
    return None


_NPY_V1 = b"\x93NUMPY\x01\x00"
_NPY_F32_2D = re.compile(r"\{'descr': '<f4', 'fortran_order': False, 'shape': \((\d+), (\d+)\), \}")


def decode_npy(data: bytes, name: str) -> np.ndarray:
    """A float32 matrix from .npy bytes; the header numpy writes for a C-order float32 matrix is read directly
    (numpy's reader evaluates the header as a Python literal, a large part of a small matrix's cost)."""
    if data[:8] == _NPY_V1:
        header_len = int.from_bytes(data[8:10], "little")
        match = _NPY_F32_2D.match(data[10:10 + header_len].decode("latin1"))
        if match:
            rows, cols = int(match.group(1)), int(match.group(2))
            if len(data) - 10 - header_len == rows * cols * 4:
                return np.frombuffer(data, "<f4", rows * cols, 10 + header_len).reshape(rows, cols).copy()
    try:
        return np.load(io.BytesIO(data), allow_pickle=False).astype(np.float32, copy=False)
    except Exception as e:
        raise ShardError(f"{name}: cannot read the .npy fbank ({e})") from e


class AudioCodec:
    """An utterance's audio input from its members: the stored fbank (.npy) when `use_feats`, else its audio."""

    def __init__(self, use_feats: bool, fbank_args: Mapping[str, Any], sample_rate: int = 16000) -> None:
        self.use_feats, self.fbank_args, self.sample_rate = use_feats, dict(fbank_args), sample_rate

    def postfix(self, entry: ShardEntry) -> str:
        """The member holding the input of `entry`."""
        postfix = FEATS_POSTFIX if self.use_feats else entry.audio_postfix()
        if postfix is None or postfix not in entry.members:
            raise ShardError(f"utterance '{entry.key}' has no {'.npy fbank' if self.use_feats else 'audio'} member")
        return postfix

    def members(self, entry: ShardEntry, rng: np.random.Generator | None) -> list[str]:
        """The postfixes to read for `entry`."""
        return [self.postfix(entry)]

    def decode(self, entry: ShardEntry, data: Sequence[bytes], name: str, num_frames: int,
               rng: np.random.Generator | None) -> torch.Tensor:
        """CMN'd fbank (T, F), as AudioDataset makes it from the same file."""
        if self.use_feats:
            return feats_input(decode_npy(data[0], name), num_frames, rng)
        wave, sample_rate = decode_audio(data[0], name)
        if sample_rate != self.sample_rate:
            raise ShardError(f"{name}: sample rate {sample_rate} Hz, expected {self.sample_rate} Hz")
        return wave_input(wave, sample_rate, self.fbank_args, num_frames, rng)

    def num_frames(self, entry: ShardEntry, reader: MemberReader) -> int | None:
        """Frames of the whole-utterance input, from the member's header only (None when unknown)."""
        postfix = self.postfix(entry)
        size = entry.members[postfix][1]
        head = reader.read(entry, postfix, limit=4096)
        if self.use_feats:
            try:
                buf = io.BytesIO(head)
                version = np.lib.format.read_magic(buf)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape = read_header(buf)[0]
            except Exception:
                return None
            return int(shape[0]) if len(shape) == 2 else None
        samples = wav_header_frames(head, size)
        return None if samples is None else fbank_frames(samples, self.sample_rate, self.fbank_args)


class VisualCodec:
    """An utterance's visual input from its face members: one random frame (training) or K evenly spaced."""

    def __init__(self, transform: FaceTransform, train: bool, num_eval_frames: int) -> None:
        self.transform, self.train, self.num_eval_frames = transform, train, int(num_eval_frames)

    def members(self, entry: ShardEntry, rng: np.random.Generator | None) -> list[str]:
        """The face postfixes the input uses (draws the training frame from rng, like VisualDataset)."""
        faces = entry.face_postfixes()
        if not faces:
            raise ShardError(f"utterance '{entry.key}' has no face frame member (.{face_postfix(0)}, ...)")
        return [faces[i] for i in face_indices(len(faces), self.train, self.num_eval_frames, rng)]

    def decode(self, entry: ShardEntry, data: Sequence[bytes], name: str, num_frames: int,
               rng: np.random.Generator | None) -> torch.Tensor:
        """(3, H, W) in training, (K, 3, H, W) otherwise."""
        return faces_input([self.transform(d, name) for d in data], self.train)

    def num_frames(self, entry: ShardEntry, reader: MemberReader) -> int | None:
        """Not used for faces."""
        return None


Codec = AudioCodec | VisualCodec
