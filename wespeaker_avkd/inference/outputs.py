"""Embedding files and their stamps: the one Kaldi ark/scp writer, and the "already done" record of a job.

Outputs are complete or absent. write_embeddings writes the scp under a temporary name and renames it into
place last, so an scp marks a complete ark. An extraction's result (write_xvectors) goes further: the new ark
gets a fresh name (xvector.<tag>.ark, created exclusively), the scp is renamed into place, and only then is
the previous ark deleted, so an interruption (also of --force) leaves the previous complete result. A job's
stamp (extract.json) records the content fingerprint of its inputs and outputs (is_current).
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import kaldiio
import numpy as np

from wespeaker_avkd.utils.fileio import check_output_path, create_exclusive, replace_into, temp_path_beside
from wespeaker_avkd.utils.fingerprint import digest_of, file_fingerprint, read_stamp, stamp_matches

STAMP_NAME = "extract.json"
STAMP_VERSION = 2
SCP_NAME = "xvector.scp"


def write_embeddings(pairs: Iterable[tuple[str, np.ndarray]], ark_path: str, scp_path: str | None = None,
                     fresh_ark: bool = False, before_scp: Callable[[], None] | None = None,
                     flags: Sequence[str] = ()) -> int:
    """Write (key, (D,) vector) pairs as float32 to the Kaldi ark `ark_path` (+ `scp_path`); returns the count.

    The scp is written under a temporary name and renamed into place last (after `before_scp`), its lines
    name the ark by its absolute path (they work from any cwd). Output paths that exist as anything but a
    regular file are refused before anything is written. fresh_ark: the ark must be a new file (created
    exclusively: never an existing file or a planted symlink) and is deleted again when writing fails.
    `flags`: further Kaldi wspecifier options (e.g. 't' for a text ark).
    """
    options = ",".join(["ark", *(["scp"] if scp_path is not None else []), *flags])
    ark_path = os.path.abspath(ark_path)
    for path in (ark_path, scp_path):
        if path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            check_output_path(path)
    if scp_path is None:
        return _write_pairs(pairs, f"{options}:{ark_path}")
    if fresh_ark:
        create_exclusive(ark_path)
    try:
        with temp_path_beside(scp_path) as tmp_scp:
            count = _write_pairs(pairs, f"{options}:{ark_path},{tmp_scp}")
            if before_scp is not None:
                before_scp()
            replace_into(tmp_scp, scp_path)
    except BaseException:
        if fresh_ark:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(ark_path)
        raise
    return count


def _write_pairs(pairs: Iterable[tuple[str, np.ndarray]], wspecifier: str) -> int:
    """Write (key, vector) pairs as float32 through kaldiio's WriteHelper; returns the count."""
    count = 0
    with kaldiio.WriteHelper(wspecifier) as writer:
        for key, vec in pairs:
            writer(key, np.asarray(vec, dtype=np.float32))
            count += 1
    return count


def _remove_other_arks(out_dir: str, keep: str) -> None:
    """Delete xvector*.ark files of out_dir other than `keep` (the previous result, or a crashed writer's)."""
    for name in os.listdir(out_dir):
        path = os.path.abspath(os.path.join(out_dir, name))
        if name.startswith("xvector") and name.endswith(".ark") and path != os.path.abspath(keep):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def write_xvectors(out_dir: str, keys: Sequence[str], table: Mapping[str, np.ndarray], tag: str,
                   before_scp: Callable[[], None] | None = None) -> str:
    """Write table[keys] (in that order) as out_dir/xvector.<tag>.ark + xvector.scp through write_embeddings
    (fresh ark, scp renamed into place last), then delete the previous ark. Returns the scp path."""
    scp_path = os.path.join(out_dir, SCP_NAME)
    ark_path = os.path.abspath(os.path.join(out_dir, f"xvector.{tag}.ark"))
    check_output_path(scp_path)  # before the ark is created
    write_embeddings(((key, table[key]) for key in keys), ark_path, scp_path, fresh_ark=True, before_scp=before_scp)
    _remove_other_arks(out_dir, ark_path)
    return scp_path


def fresh_tag(wanted: Mapping[str, Any]) -> str:
    """A short name part for a new ark: the inputs' digest plus a nonce (a forced redo never reuses a name)."""
    return digest_of({"inputs": dict(wanted), "nonce": [os.getpid(), time.time_ns()]})[:12]


def output_fingerprints(outputs: Sequence[str]) -> dict[str, Any]:
    """{file name: content fingerprint} of the outputs written beside an scp (mean_vec.npy, ...)."""
    return {os.path.basename(path): file_fingerprint(path) for path in outputs}


def is_current(scp_path: str, record_path: str, wanted: Mapping[str, Any], outputs: Sequence[str] = ()) -> bool:
    """True when scp_path exists and its stamp records the same inputs and this very scp (content), and every
    other output of the job (`outputs`) exists with the content the stamp recorded (a deleted mean_vec.npy
    is recreated; a stamp older than this record only needs them to exist)."""
    if not os.path.isfile(scp_path) or not all(os.path.isfile(path) for path in outputs):
        return False
    if not stamp_matches(record_path, dict(wanted, scp=file_fingerprint(scp_path))):
        return False
    recorded = (read_stamp(record_path) or {}).get("outputs")
    return recorded is None or stamp_matches(record_path, {"outputs": output_fingerprints(outputs)})
