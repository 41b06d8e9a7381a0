"""Content fingerprints for every "already done, skip" decision: a result is reused only when the inputs it
was made from are the same *content*, never merely the same path.

A stamp is a small json record written next to an output (``<output>.stamp.json`` or a fixed name in an
output dir). It holds the fingerprint of the inputs that matter; a reader compares it with the fingerprint
of the inputs it has now and recomputes on any difference.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from wespeaker_avkd.utils.fileio import PathLike

# Files up to this size are hashed whole; larger ones (feature arks, corpora) by size, mtime and the sha256
# of their first and last MiB, which catches rewrites and truncation without reading gigabytes.
FULL_HASH_LIMIT = 256 * 1024 * 1024
_EDGE = 1024 * 1024
_CHUNK = 4 * 1024 * 1024

# The Kaldi data-dir tables that decide what a data dir holds (absent ones are recorded as absent).
DATA_DIR_TABLES = ("wav.scp", "feats.scp", "faces.scp", "utt2spk", "segments", "reco2dur", "utt2num_frames")


def file_digest(path: PathLike) -> str:
    """sha256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(os.fspath(path), "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def file_fingerprint(path: PathLike, full_hash_limit: int = FULL_HASH_LIMIT) -> dict[str, Any]:
    """{'size', 'sha256'} of a file; above `full_hash_limit` bytes also 'mtime_ns', and the hash covers the
    first and last MiB only. Raises FileNotFoundError naming the path when it does not exist."""
    path = os.fspath(path)
    st = os.stat(path)
    if st.st_size <= full_hash_limit:
        return {"size": st.st_size, "sha256": file_digest(path)}
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(_EDGE))
        f.seek(max(0, st.st_size - _EDGE))
        h.update(f.read(_EDGE))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_edges": h.hexdigest()}


def data_dir_fingerprint(data_dir: PathLike, tables: Iterable[str] = DATA_DIR_TABLES) -> dict[str, Any]:
    """Fingerprints of a Kaldi data dir's tables ({name: fingerprint or None when absent})."""
    data_dir = os.fspath(data_dir)
    out: dict[str, Any] = {}
    for name in tables:
        path = os.path.join(data_dir, name)
        out[name] = file_fingerprint(path) if os.path.isfile(path) else None
    return out


def digest_of(obj: Any) -> str:
    """sha256 (hex) of a json-serialisable object in canonical form (sorted keys, no whitespace)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_stamp(path: PathLike) -> dict[str, Any] | None:
    """The json record at `path`, or None when it is absent or unreadable (an unreadable stamp means redo)."""
    try:
        with open(os.fspath(path), "r", encoding="utf-8") as f:
            data = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_stamp(path: PathLike, record: Mapping[str, Any]) -> None:
    """Write a json stamp atomically."""
    from wespeaker_avkd.utils.fileio import atomic_write

    with atomic_write(path) as f:
        json.dump(dict(record), f, indent=1, sort_keys=True)


def stamp_matches(path: PathLike, wanted: Mapping[str, Any]) -> bool:
    """True when the stamp at `path` holds every key of `wanted` with an equal value."""
    done = read_stamp(path)
    if done is None:
        return False
    normal = json.loads(json.dumps(dict(wanted), default=str))  # compare in json's own types (tuples -> lists)
    return all(done.get(k) == v for k, v in normal.items())


def listed_files_fingerprint(paths: Iterable[PathLike]) -> str:
    """sha256 over (absolute path, size, mtime_ns) of the files a table lists (wavs, feature arks, face images):
    catches a file rewritten behind an unchanged scp without reading it. Absent files are recorded as absent."""
    h = hashlib.sha256()
    for path in sorted({os.path.abspath(os.fspath(p)) for p in paths}):
        try:
            st = os.stat(path)
            h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        except FileNotFoundError:
            h.update(f"{path}\0absent\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()
