"""The shard format (docs/shards.md): member names `<key>.<postfix>`, the postfixes, an utterance's members
(ShardEntry) and the shard list."""
from __future__ import annotations

import dataclasses
import os

from wespeaker_avkd.utils.errors import NamedError

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


# ====================================================================== an utterance, the shard list
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
