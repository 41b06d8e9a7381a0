"""Pack a Kaldi data dir into tar shards (the format: data/shards/), resumably, atomically, in parallel."""
from __future__ import annotations

import dataclasses
import io
import os
import tarfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from wespeaker_avkd.data.features import read_feats
from wespeaker_avkd.data.kaldi_dir import read_multi_table, read_table
from wespeaker_avkd.data.samplers import seeded_rng
from wespeaker_avkd.data.shards import format as fmt  # the shard format: member names, entries, errors
from wespeaker_avkd.data.shards.index import write_index_file
from wespeaker_avkd.utils.fileio import atomic_write
from wespeaker_avkd.utils.fingerprint import digest_of, read_stamp, write_stamp
from wespeaker_avkd.utils.kaldi_tables import split_offset
from wespeaker_avkd.utils.parallel import run_with_progress

FORMAT_VERSION = 1
STAMP_SUFFIX = ".stamp.json"
DEFAULT_UTTS_PER_SHARD = 1000    # WeSpeaker's make_shard_list default


@dataclasses.dataclass(frozen=True)
class PackArgs:
    """What make_shards packs: the faces and the stored fbank when the data dir has them (and they are wanted)."""

    faces: bool = True
    feats: bool = True


def plan_shards(utts: Sequence[str], utts_per_shard: int, shuffle: bool, seed: int) -> list[list[str]]:
    """Utterances per shard: sorted keys (or a permutation drawn from `seed`) cut into runs of utts_per_shard."""
    if utts_per_shard < 1:
        raise ValueError(f"utts_per_shard must be >= 1, got {utts_per_shard}")
    order = sorted(utts)
    if shuffle:
        order = [order[i] for i in seeded_rng(seed).permutation(len(order))]
    return [order[i:i + utts_per_shard] for i in range(0, len(order), utts_per_shard)]


def _stat(path: str) -> list[int] | None:
    """[size, mtime_ns] of a file, or None when it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _audio_postfix(path: str, utt: str, wav_scp: str) -> str:
    """The member postfix of an audio file: its extension, which must be one WeSpeaker reads."""
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext not in fmt.AUDIO_POSTFIXES:
        raise fmt.ShardError(f"{wav_scp}: utterance '{utt}' has audio {path} whose extension is not one of "
                             f"{', '.join(fmt.AUDIO_POSTFIXES)} (WeSpeaker's shard member names)")
    return ext


@dataclasses.dataclass(frozen=True)
class UttSources:
    """Everything one utterance's members are made from."""

    key: str
    spk: str
    wav: str
    feats: str | None
    faces: tuple[str, ...]

    def fingerprint(self) -> list[Any]:
        """The inputs of its members: paths and their size and mtime (a changed file rewrites the shard)."""
        return [self.key, self.spk, self.wav, _stat(self.wav), self.feats,
                _stat(split_offset(self.feats)[0]) if self.feats else None, [[f, _stat(f)] for f in self.faces]]


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> tuple[int, int]:
    """Add a regular member with fixed metadata (no time stamp or owner: the same inputs give the same bytes);
    returns (data offset, size) in the tar."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))
    padded = -(-len(data) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    return tar.offset - padded, len(data)  # tar.offset: the end of what was written, data padded to blocks


def _read_bytes(path: str, what: str, utt: str) -> bytes:
    """The bytes of an input file; a missing or unreadable one is a ShardError naming the utterance."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise fmt.ShardError(f"utterance '{utt}': cannot read its {what} {path} ({e.strerror or e})") from e


def _npy_bytes(matrix: np.ndarray) -> bytes:
    """numpy's .npy encoding of a float32 matrix."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(matrix, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def write_shard(path: str, utts: Sequence[UttSources], wav_scp: str) -> list[fmt.ShardEntry]:
    """Write one shard (see the module docstring for the member order) to `path`, atomically; returns its
    index entries (member offsets)."""
    entries = []
    with atomic_write(path, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for u in utts:
            members = {fmt.SPK_POSTFIX: _tar_add(tar, fmt.member_name(u.key, fmt.SPK_POSTFIX), u.spk.encode("utf-8"))}
            audio = _audio_postfix(u.wav, u.key, wav_scp)
            members[audio] = _tar_add(tar, fmt.member_name(u.key, audio), _read_bytes(u.wav, "audio", u.key))
            if u.feats:
                members[fmt.FEATS_POSTFIX] = _tar_add(tar, fmt.member_name(u.key, fmt.FEATS_POSTFIX),
                                                  _npy_bytes(read_feats(u.feats, u.key, "feats.scp")))
            for i, face in enumerate(u.faces):
                members[fmt.face_postfix(i)] = _tar_add(tar, fmt.member_name(u.key, fmt.face_postfix(i)),
                                                    _read_bytes(face, "face frame", u.key))
            entries.append(fmt.ShardEntry(u.key, 0, u.spk, members))
    return entries


def _shard_task(task: tuple[str, list[UttSources], str, str]) -> int:
    """Write a shard, its index file, then its stamp (inputs digest + the tar's size); returns its utterance
    count."""
    path, utts, wav_scp, inputs = task
    write_index_file(path, write_shard(path, utts, wav_scp))
    write_stamp(path + STAMP_SUFFIX, {"inputs": inputs, "size": os.path.getsize(path)})
    return len(utts)


def _shard_done(path: str, inputs: str) -> bool:
    """True when the shard exists, was written from the same inputs and has the size it was written with."""
    stamp = read_stamp(path + STAMP_SUFFIX)
    return (stamp is not None and stamp.get("inputs") == inputs and os.path.isfile(path)
            and stamp.get("size") == os.path.getsize(path))


def data_dir_sources(data_dir: str, pack: PackArgs = PackArgs()) -> list[UttSources]:
    """The sources of every utterance of data_dir/utt2spk (wav.scp required; faces.scp and feats.scp when
    present and wanted), sorted by key; a missing entry is a ShardError naming the table and key."""
    def table(name: str, multi: bool = False) -> dict | None:
        path = os.path.join(data_dir, name)
        return (read_multi_table(path) if multi else read_table(path)) if os.path.isfile(path) else None

    utt2spk = table("utt2spk")
    wav = table("wav.scp")
    if utt2spk is None or wav is None:
        raise fmt.ShardError(f"{data_dir}: a data dir to pack needs utt2spk and wav.scp")
    feats = table("feats.scp") if pack.feats else None
    faces = table("faces.scp", multi=True) if pack.faces else None
    out = []
    for utt in sorted(utt2spk):
        if utt not in wav:
            raise fmt.ShardError(f"{os.path.join(data_dir, 'wav.scp')}: no entry for utterance '{utt}' of utt2spk")
        if feats is not None and utt not in feats:
            raise fmt.ShardError(f"{os.path.join(data_dir, 'feats.scp')}: no entry for utterance '{utt}' of utt2spk")
        out.append(UttSources(utt, utt2spk[utt], wav[utt], feats[utt] if feats is not None else None,
                              tuple(faces.get(utt, ())) if faces is not None else ()))
    return out


def make_shards(data_dir: str, out_dir: str, list_path: str | None = None,
                utts_per_shard: int = DEFAULT_UTTS_PER_SHARD, shuffle: bool = False, seed: int = 42, nj: int = 1,
                pack: PackArgs = PackArgs(), progress: bool = True) -> list[str]:
    """Pack data_dir into out_dir/shard_NNNNNN.tar and write the shard list (default data_dir/shard.list).

    Utterances go in sorted key order (with `shuffle`, in a permutation drawn from `seed`), utts_per_shard a
    shard. Each shard is written to a temporary name and renamed, then stamped with the digest of its inputs
    (keys, speakers, paths with size and mtime, the format); a rerun keeps every shard whose stamp matches, so
    an interrupted run resumes and gives the same files as an uninterrupted one. `nj` processes write shards
    side by side. Shard files of an earlier plan that the new list does not name are deleted once the list is
    written, and so are the temporary files of a killed run (one writer per folder). Returns the shard paths
    (absolute).
    """
    out_dir = os.path.abspath(out_dir)
    list_path = list_path or os.path.join(data_dir, fmt.SHARD_LIST)
    sources = {u.key: u for u in data_dir_sources(data_dir, pack)}
    if not sources:
        raise fmt.ShardError(f"{data_dir}/utt2spk: no utterance to pack")
    wav_scp = os.path.join(data_dir, "wav.scp")
    plan = plan_shards(list(sources), utts_per_shard, shuffle, seed)
    os.makedirs(out_dir, exist_ok=True)
    tasks = []
    for i, keys in enumerate(plan):
        utts = [sources[k] for k in keys]
        inputs = digest_of({"format": FORMAT_VERSION, "utts": [u.fingerprint() for u in utts]})
        tasks.append((os.path.join(out_dir, f"shard_{i:06d}.tar"), utts, wav_scp, inputs))
    todo = [t for t in tasks if not _shard_done(t[0], t[3])]
    run_with_progress(_shard_task, todo, nj, len(sources), len(sources) - sum(len(t[1]) for t in todo), "shards",
                      progress)
    paths = [t[0] for t in tasks]
    with atomic_write(list_path) as f:
        f.writelines(p + "\n" for p in paths)
    keep = {os.path.basename(p) for p in paths}
    for name in os.listdir(out_dir):
        base = next((name[:-len(x)] for x in (STAMP_SUFFIX, fmt.INDEX_SUFFIX) if name.endswith(x)), name)
        stale = base.startswith("shard_") and base.endswith(".tar") and base not in keep
        killed = name.startswith(".shard_") and name.endswith(".tmp")  # the temporary file of a killed writer
        if stale or killed:
            os.unlink(os.path.join(out_dir, name))
    return paths
