"""The member index of a shard list (offsets read once from the tar headers or the index file beside a tar)
and positioned reads of members."""
from __future__ import annotations

import array
import dataclasses
import os
import sys
import tarfile
from collections.abc import Mapping, Sequence

import numpy as np

from wespeaker_avkd.data.shards.format import (
    INDEX_SUFFIX,
    SPK_POSTFIX,
    ShardEntry,
    ShardError,
    member_name,
    read_shard_list,
    split_member,
)
from wespeaker_avkd.utils.fingerprint import read_stamp, write_stamp


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
