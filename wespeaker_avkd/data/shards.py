"""Tar shards of a data dir in WeSpeaker's shard format (+ face frames and fbank): the format and the readers
(data/shard_writer.py packs them).

Format (docs/shards.md). A shard is a plain (uncompressed) tar; each utterance is a run of consecutive
members named `<key>.<postfix>`, where the key is the member name up to its LAST dot, so keys may contain '/'
and '.' (VoxCeleb's `idNNNNN/<video>/NNNNN`). WeSpeaker's own writer puts `<key>.spk` (the speaker id, utf-8
text) and `<key>.wav` (the audio file's bytes; the postfix is the file's extension) in each shard, and its
reader groups consecutive members by that key, so our shards read there as audio shards. Beside them we add
`<key>.npy` (the stored fbank matrix, float32 (T, F), numpy's .npy bytes; when the data dir has feats.scp) and
`<key>.face000`, `<key>.face001`, ... (the encoded bytes of the utterance's face frames, in faces.scp order).
A shard list is a text file of one tar path per line (WeSpeaker's shard.list). Member headers carry no time
stamp or owner, so the same inputs give byte-identical tars.

Reading. An index of every shard (member offsets, read from the tar headers once when a loader is built) lets
each reader fetch only the members it needs with positioned reads of the open tar file:
- training (ShardTrainDataset, iterable): the epoch's utterance sequence is the shards in list order (shuffled
  per epoch when `shuffle`), cut into equal contiguous parts, one per DDP rank (padded by wrapping to equal
  length, like the map sampler, so ranks run the same number of steps); each rank's part is shuffled in
  blocks of `shuffle_size` utterances (WeSpeaker's shuffle buffer: fill, shuffle, emit) and cut into batches;
  batch b goes to DataLoader worker b % num_workers, so the main process receives batches in order 0, 1, 2,
  ... whatever the number of workers. Each worker reads the utterances of its batches block by block in file
  order (sequential reads with gaps). Per batch, the chunk length and each item's seed come from
  samplers.batch_draws, exactly as the map sampler's; without shuffling, one rank reads utterances in list
  order, so shards written in sorted key order give the very batches of the map loader with `shuffle: false`.
- evaluation (ShardEvalDataset, map-style): utterances in sorted key order, whole (no chunking), batched by the
  same samplers as the map datasets, so extraction from shards equals extraction from raw files exactly.
"""
from __future__ import annotations

import array
import dataclasses
import io
import os
import re
import sys
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import IterableDataset, get_worker_info

from wespeaker_avkd.data.datasets import (
    FaceTransform,
    KeyedDataset,
    collate_batch,
    face_indices,
    faces_input,
    fbank_frames,
    feats_input,
    wave_input,
)
from wespeaker_avkd.data.samplers import batch_draws, seeded_rng
from wespeaker_avkd.data.validate import audio_problem
from wespeaker_avkd.utils.errors import NamedError
from wespeaker_avkd.utils.fingerprint import read_stamp, write_stamp

SHARD_LIST = "shard.list"        # in a data dir: the shard list its loaders read with data_type: shard
AUDIO_POSTFIXES = ("wav", "flac", "mp3", "m4a", "ogg", "opus", "wma")  # WeSpeaker's audio member postfixes
SPK_POSTFIX = "spk"
FEATS_POSTFIX = "npy"
FACE_PREFIX = "face"             # face frame i: <key>.face{i:03d}
DEFAULT_SHUFFLE_SIZE = 2500      # WeSpeaker's shuffle_args.shuffle_size default
INDEX_SUFFIX = ".idx.json"       # beside a shard we write: its member offsets, so loaders need not scan it


class ShardError(NamedError, ValueError):
    """A shard, shard list or shard member that cannot be used; the message names the file and key."""


# ====================================================================== names
def member_name(key: str, postfix: str) -> str:
    """The tar member name of `postfix` of utterance `key` (WeSpeaker: key + '.' + postfix)."""
    return f"{key}.{postfix}"


def split_member(name: str) -> tuple[str, str]:
    """(key, postfix) of a member name: split at the last dot, as WeSpeaker's reader groups members."""
    pos = name.rfind(".")
    if pos <= 0:
        raise ValueError(f"member name {name!r} has no '<key>.<postfix>' form")
    return name[:pos], name[pos + 1:]


def face_postfix(i: int) -> str:
    """The postfix of face frame i."""
    return f"{FACE_PREFIX}{i:03d}"


def _face_number(postfix: str) -> int | None:
    """i of a face postfix 'face<i>', else None."""
    digits = postfix[len(FACE_PREFIX):]
    return int(digits) if postfix.startswith(FACE_PREFIX) and digits.isdigit() else None


# ====================================================================== index
@dataclasses.dataclass(frozen=True)
class ShardEntry:
    """One utterance of a shard: its key, shard number, speaker (its .spk member, or None) and members
    {postfix: (data offset, size)} in the tar."""

    key: str
    shard: int
    spk: str | None
    members: dict[str, tuple[int, int]]

    def audio_postfix(self) -> str | None:
        """The postfix of its audio member, or None."""
        return next((p for p in self.members if p in AUDIO_POSTFIXES), None)

    def face_postfixes(self) -> list[str]:
        """Its face frame postfixes in frame order."""
        faces = [(n, p) for p in self.members if (n := _face_number(p)) is not None]
        return [p for _, p in sorted(faces)]


def read_shard_list(path: str) -> list[str]:
    """The tar paths of a shard list (one a line; blank lines skipped; relative paths from the list's folder)."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except (OSError, UnicodeDecodeError) as e:
        raise ShardError(f"{path}: cannot read the shard list ({e})") from e
    base = os.path.dirname(os.path.abspath(path))
    paths = []
    for line_no, entry in enumerate(lines, 1):
        if not entry:
            continue
        shard = entry if os.path.isabs(entry) else os.path.join(base, entry)
        if not os.path.isfile(shard):  # never a pipe, device or URL: tarfile would block on or refuse those
            raise ShardError(f"{path}:{line_no}: {entry!r} is not a regular file (a shard list names tar files)")
        paths.append(shard)
    if not paths:
        raise ShardError(f"{path}: the shard list names no shard")
    return paths


def index_shard(path: str, shard: int) -> list[ShardEntry]:
    """The utterances of one tar in member order (consecutive members with one key are one utterance)."""
    entries: list[ShardEntry] = []
    try:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                try:
                    key, postfix = split_member(info.name)
                except ValueError as e:
                    raise ShardError(f"{path}: {e}") from None
                if not entries or entries[-1].key != key:
                    entries.append(ShardEntry(key, shard, None, {}))
                entry = entries[-1]
                if postfix in entry.members:
                    raise ShardError(f"{path}: member {info.name} appears twice")
                entry.members[postfix] = (info.offset_data, info.size)
                if postfix == SPK_POSTFIX:
                    entries[-1] = dataclasses.replace(entry, spk=tar.extractfile(info).read().decode("utf-8").strip())
    except tarfile.ReadError as e:
        raise ShardError(f"{path}: not a readable uncompressed tar ({e}); shards are plain tar files") from e
    except OSError as e:
        raise ShardError(f"{path}: cannot read the shard ({e.strerror or e})") from e
    return entries


class ShardIndex:
    """Every utterance of a shard list, in list and member order, stored compactly (flat arrays, about 20 bytes
    a member, besides the keys; Python objects a member would take ten times that for VoxCeleb2's millions):
    keys, speakers, the shard of each utterance and its members' (postfix, data offset, size)."""

    def __init__(self, list_path: str, paths: Sequence[str]) -> None:
        self.list_path, self.paths = list_path, list(paths)
        self.keys: list[str] = []
        self.spks: list[str | None] = []
        self.postfixes: list[str] = []                # member postfix vocabulary
        self._codes: dict[str, int] = {}
        self._shard, self._start = array.array("i"), array.array("q", [0])
        self._postfix, self._offset, self._size = array.array("h"), array.array("q"), array.array("q")

    def add(self, entry: ShardEntry) -> None:
        """Append one utterance."""
        self.keys.append(entry.key)
        self.spks.append(None if entry.spk is None else sys.intern(entry.spk))  # one string per speaker
        self._shard.append(entry.shard)
        for postfix, (offset, size) in entry.members.items():
            code = self._codes.setdefault(postfix, len(self._codes))
            if code == len(self.postfixes):
                self.postfixes.append(postfix)
            self._postfix.append(code)
            self._offset.append(offset)
            self._size.append(size)
        self._start.append(len(self._postfix))

    def __len__(self) -> int:
        return len(self.keys)

    def entry(self, i: int) -> ShardEntry:
        """Utterance i as a ShardEntry."""
        lo, hi = self._start[i], self._start[i + 1]
        members = {self.postfixes[self._postfix[m]]: (self._offset[m], self._size[m]) for m in range(lo, hi)}
        return ShardEntry(self.keys[i], self._shard[i], self.spks[i], members)

    def all_have(self, postfix: str) -> bool:
        """True when every utterance has a member `postfix`."""
        code = self._codes.get(postfix)
        return code is not None and int(np.count_nonzero(np.frombuffer(self._postfix, np.int16) == code)) == len(self)

    def counts(self) -> list[int]:
        """Utterances per shard."""
        return np.bincount(np.frombuffer(self._shard, np.int32), minlength=len(self.paths)).tolist()


def _tar_stat(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def write_index_file(path: str, entries: Sequence[ShardEntry]) -> None:
    """Write <tar>.idx.json: the tar's size and mtime and every utterance's key, speaker and members."""
    write_stamp(path + INDEX_SUFFIX, {"tar": _tar_stat(path), "utts": [
        [e.key, e.spk, [[p, o, n] for p, (o, n) in e.members.items()]] for e in entries]})


def read_index_file(path: str, shard: int) -> list[ShardEntry] | None:
    """The entries of <tar>.idx.json when it describes the tar as it is now (same size and mtime), else None."""
    record = read_stamp(path + INDEX_SUFFIX)
    try:
        if record is None or record.get("tar") != _tar_stat(path):
            return None
        return [ShardEntry(key, shard, spk, {p: (o, n) for p, o, n in members}) for key, spk, members in record["utts"]]
    except (OSError, TypeError, ValueError):
        return None  # unreadable or of another shape: scan the tar instead


def load_shard_index(list_path: str) -> ShardIndex:
    """Index every shard of a shard list (from the index file we write beside a shard, else by reading the tar
    headers); a key in two places is a ShardError."""
    paths = read_shard_list(list_path)
    index = ShardIndex(os.path.abspath(list_path), paths)
    seen: dict[str, int] = {}
    for i, path in enumerate(paths):
        entries = read_index_file(path, i)
        for e in entries if entries is not None else index_shard(path, i):
            if e.key in seen:
                raise ShardError(f"{path}: utterance '{e.key}' is also in {paths[seen[e.key]]} (shard list "
                                 f"{list_path})")
            seen[e.key] = i
            index.add(e)
    return index


class MemberReader:
    """Positioned reads of tar members (os.pread on files opened once per process: safe across forks)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        self._fds: dict[int, int] = {}
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        return {"paths": self.paths}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["paths"])

    def read(self, entry: ShardEntry, postfix: str, limit: int | None = None) -> bytes:
        """The bytes of member `postfix` of `entry` (its first `limit` bytes when given); a missing or short
        member is a ShardError naming it."""
        if os.getpid() != self._pid:  # a forked worker: its own descriptors
            self._fds, self._pid = {}, os.getpid()
        path = self.paths[entry.shard]
        if postfix not in entry.members:
            raise ShardError(f"{path}: utterance '{entry.key}' has no member .{postfix}")
        offset, size = entry.members[postfix]
        size = size if limit is None else min(size, limit)
        fd = self._fds.get(entry.shard)
        if fd is None:
            fd = self._fds[entry.shard] = os.open(path, os.O_RDONLY)
        data = os.pread(fd, size, offset)
        if len(data) != size:
            raise ShardError(f"{path}: member {member_name(entry.key, postfix)} is truncated ({len(data)} of "
                             f"{size} bytes)")
        return data


# ====================================================================== per-utterance decoding
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


def _read_item(reader: MemberReader, entry: ShardEntry, postfixes: Sequence[str]) -> list[bytes]:
    return [reader.read(entry, p) for p in postfixes]


# ====================================================================== training: iterable over shards
def epoch_batches(counts: Sequence[int], batch_size: int, seed: int, epoch: int, rank: int, world_size: int,
                  shuffle: bool, shuffle_size: int, drop_last: bool) -> list[np.ndarray]:
    """The item numbers (positions in the index's list order) of rank's batches in `epoch` (see the module
    docstring): shards in list order or a (seed, epoch) permutation, contiguous equal rank parts padded by
    wrapping, block shuffle of shuffle_size, cut into batches of batch_size."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} not in [0, {world_size})")
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    total = int(starts[-1])
    if total == 0:
        raise ValueError("the shards hold no utterance")
    order = seeded_rng(seed, epoch, 1).permutation(len(counts)) if shuffle else np.arange(len(counts))
    sequence = np.concatenate([np.arange(starts[s], starts[s + 1]) for s in order])
    per_rank = -(-total // world_size)
    part = np.resize(sequence, per_rank * world_size)[rank * per_rank:(rank + 1) * per_rank]
    if shuffle:
        for b, start in enumerate(range(0, per_rank, shuffle_size)):
            block = part[start:start + shuffle_size]
            part[start:start + shuffle_size] = block[seeded_rng(seed, epoch, rank, b, 2).permutation(len(block))]
    num = per_rank // batch_size if drop_last else -(-per_rank // batch_size)
    return [part[b * batch_size:(b + 1) * batch_size] for b in range(num)]


class ShardItems:
    """What every shard dataset holds: the index, a member reader, the codec, labels and teacher embeddings
    aligned with the index entries."""

    def __init__(self, index: ShardIndex, codec: Codec, labels: Sequence[int] | None = None,
                 teacher: np.ndarray | None = None) -> None:
        self.index, self.codec = index, codec
        self.reader = MemberReader(index.paths)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.teacher = teacher

    def name(self, entry: ShardEntry) -> str:
        """'<tar>:<key>' for messages."""
        return f"{self.index.paths[entry.shard]}:{entry.key}"

    def members(self, entry: ShardEntry, rng: np.random.Generator | None) -> list[str]:
        """The codec's members of `entry` for one item; a missing member is an error naming the tar."""
        try:
            return self.codec.members(entry, rng)
        except ShardError as e:
            raise ShardError(f"{self.index.paths[entry.shard]}: {e}") from None

    def item(self, i: int, data: Sequence[bytes], num_frames: int, rng: np.random.Generator | None) -> dict:
        """The item dict of entry i (KeyedDataset's form) from its members' bytes."""
        entry = self.index.entry(i)
        out = {"key": entry.key, "input": self.codec.decode(entry, data, self.name(entry), num_frames, rng)}
        if self.labels is not None:
            out["label"] = int(self.labels[i])
        if self.teacher is not None:
            out["teacher_emb"] = torch.from_numpy(self.teacher[i])
        return out


class ShardTrainDataset(IterableDataset):
    """Training batches read from shards (see the module docstring); call set_epoch before each epoch."""

    def __init__(self, items: ShardItems, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 drop_last: bool = True, shuffle: bool = True, shuffle_size: int = DEFAULT_SHUFFLE_SIZE,
                 num_frms: Sequence[int] | None = None) -> None:
        if shuffle_size < 1:
            raise ShardError(f"dataset_args.shuffle_args.shuffle_size must be >= 1, got {shuffle_size}")
        self.items, self.batch_size, self.seed = items, int(batch_size), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.drop_last, self.shuffle, self.shuffle_size = bool(drop_last), bool(shuffle), int(shuffle_size)
        self.num_frms = None if num_frms is None else (int(num_frms[0]), int(num_frms[1]))
        self.counts = items.index.counts()
        self.epoch = 0
        if len(self) == 0:
            raise ShardError(f"{items.index.list_path}: {sum(self.counts)} utterances give no batch of "
                             f"{batch_size} on each of {world_size} rank(s)")

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and crops the next iteration produces."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        per_rank = -(-sum(self.counts) // self.world_size)
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def plan(self) -> list[np.ndarray]:
        """This rank's batches of item numbers for the current epoch."""
        return epoch_batches(self.counts, self.batch_size, self.seed, self.epoch, self.rank, self.world_size,
                             self.shuffle, self.shuffle_size, self.drop_last)

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        batches = self.plan()
        group = max(1, -(-self.shuffle_size // self.batch_size))  # batches of about one shuffle block
        for first in range(0, len(batches), group):
            mine = [b for b in range(first, min(first + group, len(batches))) if b % workers == worker]
            yield from self._group(batches, mine)

    def _group(self, batches: Sequence[np.ndarray], mine: Sequence[int]) -> Iterator[dict]:
        """Read the members of batches `mine` in file order, then yield them collated in batch order."""
        plans = []
        entries: dict[int, ShardEntry] = {}
        wanted: dict[tuple[int, str], None] = {}
        for b in mine:
            frames, seeds = batch_draws(self.seed, self.epoch, self.rank, b, len(batches[b]), self.num_frms)
            rows = []
            for i, item_seed in zip(batches[b].tolist(), seeds):
                rng = seeded_rng(item_seed)
                entries[i] = entries.get(i) or self.items.index.entry(i)
                postfixes = self.items.members(entries[i], rng)
                rows.append((i, postfixes, rng))
                wanted.update({(i, p): None for p in postfixes})
            plans.append((frames, rows))
        data = {(i, p): self.items.reader.read(entries[i], p)
                for i, p in sorted(wanted, key=lambda ip: (ip[0], entries[ip[0]].members[ip[1]][0]))}
        for frames, rows in plans:
            yield collate_batch([self.items.item(i, [data[(i, p)] for p in postfixes], frames, rng)
                                 for i, postfixes, rng in rows])


# ====================================================================== evaluation: map-style over shards
class ShardEvalDataset(KeyedDataset):
    """Whole utterances of a shard index in sorted key order (items as the map datasets': (index, 0, 0))."""

    def __init__(self, items: ShardItems) -> None:
        self.items = items
        self.order = sorted(range(len(items.index)), key=items.index.keys.__getitem__)
        super().__init__([items.index.keys[i] for i in self.order])

    def num_frames(self, index: int) -> int | None:
        """Frames of the whole-utterance input (audio, from the member header), else None."""
        return self.items.codec.num_frames(self.items.index.entry(self.order[index]), self.items.reader)

    def make_input(self, index: int, num_frames: int, rng: np.random.Generator | None) -> Any:
        i = self.order[index]
        entry = self.items.index.entry(i)
        postfixes = self.items.members(entry, rng)
        return self.items.item(i, _read_item(self.items.reader, entry, postfixes), num_frames, rng)["input"]


def check_index_keys(index: ShardIndex, utt2spk: Mapping[str, str], utt2spk_path: str) -> None:
    """The shards must hold exactly the utterances of utt2spk, with the same speakers (stale shards are named)."""
    keys = set(index.keys)
    missing = sorted(set(utt2spk) - keys)
    extra = sorted(keys - set(utt2spk))
    if missing or extra:
        what = (f"utterance '{missing[0]}' of {utt2spk_path} is in no shard" if missing else
                f"utterance '{extra[0]}' of the shards is not in {utt2spk_path}")
        raise ShardError(f"{index.list_path}: {what} ({len(missing)} missing, {len(extra)} extra): repack the "
                         f"shards (bin.make_shards)")
    for i, (key, spk) in enumerate(zip(index.keys, index.spks)):
        if spk is not None and spk != utt2spk[key]:
            raise ShardError(f"{index.paths[index.entry(i).shard]}: utterance '{key}' has speaker '{spk}' but "
                             f"{utt2spk_path} says '{utt2spk[key]}': repack the shards (bin.make_shards)")
