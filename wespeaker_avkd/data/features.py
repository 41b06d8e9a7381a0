"""Fbank extraction of a whole data dir into Kaldi ark/scp: parallel, resumable (per block), atomic."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import kaldiio
import numpy as np
import torch

from wespeaker_avkd.data.fbank import compute_fbank, load_wav
from wespeaker_avkd.data.kaldi_dir import read_table, write_table
from wespeaker_avkd.utils.errors import NamedError
from wespeaker_avkd.utils.fileio import atomic_write, replace_into, temp_path_beside
from wespeaker_avkd.utils.fingerprint import digest_of, stamp_matches, write_stamp
from wespeaker_avkd.utils.kaldi_tables import TableError, read_rxfile
from wespeaker_avkd.utils.parallel import run_with_progress

BLOCK_UTTS = 100  # utterances per ark block: the unit of resumption
# Kaldi's matrix compression (kaldiio's compression_method numbers): 1 = what Kaldi's --compress=true does
# (kSpeechFeature, one byte a value against per-column percentiles, for matrices of more than 8 rows).
KALDI_COMPRESSION_METHODS = range(1, 8)
STAMP_SUFFIX = ".stamp.json"  # beside each block: the fingerprint of the inputs it was computed from


class FbankError(NamedError, RuntimeError):
    """Feature extraction or reading failed for one utterance; the message names it and its file."""


def read_feats(rxfile: str, utt: str, table: str) -> np.ndarray:
    """One feature matrix (T, F) float32 of a feats.scp entry, read through utils/kaldi_tables.py (a pipe,
    stdin or specifier value, or a file that is not regular, raises TableError: nothing is run). A missing,
    corrupt or truncated entry, or one holding NaN or Inf, raises FbankError naming the table, the utterance
    and where its data lives (kaldiio alone says 'buffer size ...', an empty AssertionError or a
    UnicodeDecodeError)."""
    where = f"{table}: utterance '{utt}'"
    try:
        feats = np.array(read_rxfile(rxfile, where), dtype=np.float32)  # a writable copy
    except TableError:
        raise
    except Exception as e:
        detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise FbankError(f"{table}: cannot read the features of utterance '{utt}' at {rxfile}: corrupt, truncated "
                         f"or missing ark entry ({detail}); recompute them with bin.compute_fbank") from e
    if not np.isfinite(feats).all():
        bad = int(np.count_nonzero(~np.isfinite(feats)))
        raise FbankError(f"{table}: the features of utterance '{utt}' at {rxfile} hold {bad} NaN or Inf values "
                         f"of {feats.size}; check its audio (bin.validate_data --deep) and recompute them")
    return feats


def block_inputs(utts: list[str], wavs: list[str], fbank_args: Mapping[str, Any], sample_rate: int,
                 compression_method: int | None = None) -> str:
    """Fingerprint of what a block is computed from: its wav.scp entries, each file's size and mtime, the fbank
    settings (and the compression, when one is chosen). A block is reused only when this is unchanged (a key
    pointed at other audio recomputes)."""
    files = []
    for path in wavs:
        try:
            st = os.stat(path)
            files.append([st.st_size, st.st_mtime_ns])
        except OSError:
            files.append(None)
    record = {"entries": [[u, w] for u, w in zip(utts, wavs)], "files": files, "fbank_args": dict(fbank_args),
              "sample_rate": sample_rate}
    if compression_method is not None:  # absent when uncompressed: the stamps of earlier runs stay valid
        record["compression_method"] = int(compression_method)
    return digest_of(record)


def _block_done(base: str, stamp: str) -> bool:
    """True when the block's scp exists and was computed from the same inputs."""
    return os.path.isfile(base + ".scp") and stamp_matches(base + STAMP_SUFFIX, {"inputs": stamp})


def _block_name(out_dir: str, job: int, block: int) -> str:
    return os.path.join(out_dir, f"raw_fbank.{job + 1}.{block + 1}")


def plan_blocks(utts: list[str], nj: int, block_utts: int = BLOCK_UTTS) -> list[tuple[int, int, list[str]]]:
    """Split sorted utts into nj contiguous jobs, each into blocks: [(job, block, utts)]."""
    nj = max(1, min(nj, len(utts)))
    bounds = np.linspace(0, len(utts), nj + 1).round().astype(int)
    plan = []
    for j in range(nj):
        job_utts = utts[bounds[j]:bounds[j + 1]]
        for b, start in enumerate(range(0, len(job_utts), block_utts)):
            plan.append((j, b, job_utts[start:start + block_utts]))
    return plan


def _extract_block(task: tuple) -> int:
    """Compute fbank for one block and write <block>.ark then <block>.scp (its existence marks completion)."""
    base, utts, wavs, fbank_args, sample_rate, compression_method, stamp = task
    torch.set_num_threads(1)
    feats = {}
    for utt, path in zip(utts, wavs):
        try:
            wave, sr = load_wav(path)
            if sr != sample_rate:
                raise ValueError(f"sample rate {sr} Hz, expected {sample_rate} Hz")
            feats[utt] = compute_fbank(wave, sample_rate=sample_rate, dither=0.0, **fbank_args).numpy()
        except Exception as e:  # name the utterance and its file, whatever failed (reader, fbank)
            raise FbankError(f"utterance '{utt}' ({path}): {e}") from e
    # fresh, exclusively created temporary names (never a fixed name where a symlink could be planted)
    with temp_path_beside(base + ".ark") as tmp_ark, temp_path_beside(base + ".scp") as tmp_scp:
        kaldiio.save_ark(tmp_ark, feats, scp=tmp_scp, compression_method=compression_method)
        with open(tmp_scp, "r", encoding="utf-8") as f:
            lines = [line.replace(tmp_ark + ":", base + ".ark:", 1) for line in f]
        replace_into(tmp_ark, base + ".ark")
    with atomic_write(base + ".scp") as f:
        f.writelines(lines)
    write_stamp(base + STAMP_SUFFIX, {"inputs": stamp})
    return len(utts)


def extract_fbank_dir(data_dir: str, out_dir: str, nj: int = 2, fbank_args: Mapping[str, Any] | None = None,
                      sample_rate: int = 16000, progress: bool = True,
                      compression_method: int | None = None) -> dict[str, str]:
    """Fbank of every utterance of data_dir/wav.scp into out_dir; writes out_dir/feats.scp and data_dir/feats.scp.
    `compression_method` (1-7, kaldiio's numbering of Kaldi's methods; None: float32) stores compressed
    matrices, which kaldiio.load_mat (and so every reader here) decompresses.

    Blocks already written by an earlier (interrupted) run are kept when their inputs (wav.scp entries, file
    sizes and mtimes, fbank settings) are unchanged, so a re-run only computes the rest; any other block is
    recomputed. A failing utterance raises FbankError naming it and its file.
    Returns {utt: 'ark_path:offset'}.
    """
    if compression_method is not None and compression_method not in KALDI_COMPRESSION_METHODS:
        raise ValueError(f"compression_method must be one of 1-7 (Kaldi's methods) or None, got {compression_method!r}")
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    args = {"num_mel_bins": 40, "frame_length": 25.0, "frame_shift": 10.0, **(fbank_args or {})}
    args.pop("dither", None)  # stored features are never dithered
    wav = read_table(os.path.join(data_dir, "wav.scp"))
    utts = sorted(wav)
    plan = plan_blocks(utts, nj)
    tasks = [(_block_name(out_dir, j, b), block, [wav[u] for u in block], args, sample_rate, compression_method)
             for j, b, block in plan]
    tasks = [(*t, block_inputs(t[1], t[2], args, sample_rate, compression_method)) for t in tasks]
    todo = [t for t in tasks if not _block_done(t[0], t[6])]
    run_with_progress(_extract_block, todo, nj, len(utts), len(utts) - sum(len(t[1]) for t in todo), "fbank",
                      progress)
    table: dict[str, str] = {}
    for j, b, block in plan:
        table.update(read_table(_block_name(out_dir, j, b) + ".scp"))
    missing = [u for u in utts if u not in table]
    if missing:
        raise RuntimeError(f"fbank missing for utterance '{missing[0]}' after extraction into {out_dir}")
    table = {u: table[u] for u in utts}
    write_table(os.path.join(out_dir, "feats.scp"), table)
    write_table(os.path.join(data_dir, "feats.scp"), table)
    return table
