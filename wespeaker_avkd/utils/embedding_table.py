"""Embedding tables: Kaldi scp/ark or .npz (keys, embeddings) -> keys + float32 (N, D) matrix.

One reader for every consumer: the scorer (embeddings, mean vectors, cohorts), the fusion-teacher datasets, a
teacher's kd_export, extraction checks and the report. It sits at the ground layer (docs/design.md) so that
`data` and `scoring` both import it without a layer reaching up, and it needs no torch. Kaldi entries are read
through utils/kaldi_tables.py (a pipe, stdin or specifier value is refused, never run). Errors are
EmbeddingTableError: a named input error and the compiled scorer's ScoringError (a ValueError), naming the file
and key."""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np

from wespeaker_avkd._scorer import ScoringError
from wespeaker_avkd.utils.kaldi_tables import TableError, check_rxfile, iter_ark, iter_scp_values, open_regular

_FINITE_CHUNK = 8192  # rows checked per step: bounded temporary memory for the NaN/Inf check
_FILL_BATCH = 4096  # rows stacked per numpy call while reading a Kaldi table


class EmbeddingTableError(TableError, ScoringError):
    """A bad embedding table (a named input error that scoring's ScoringError handlers catch too)."""


def _read_npz(path: str) -> tuple[list[str], np.ndarray]:
    """keys and embeddings arrays of an .npz file."""
    with np.load(path, allow_pickle=False) as z:
        if "keys" not in z or "embeddings" not in z:
            raise EmbeddingTableError(f"{path}: an embeddings .npz needs arrays 'keys' and 'embeddings', "
                               f"found {sorted(z.files)}")
        keys = [str(k) for k in z["keys"].reshape(-1)]
        emb = check_real(z["embeddings"], path, "'embeddings'")
    if emb.ndim != 2:
        raise EmbeddingTableError(f"{path}: 'embeddings' must be 2-D (N, D), got shape {emb.shape}")
    if len(keys) != emb.shape[0]:
        raise EmbeddingTableError(f"{path}: {len(keys)} keys for {emb.shape[0]} embedding rows")
    return keys, np.ascontiguousarray(emb, dtype=np.float32)


def check_real(array: np.ndarray, path: str, what: str) -> np.ndarray:
    """`array` when it holds real numbers (float, int); strings, objects, complex numbers raise
    EmbeddingTableError naming `path` and `what` (a cast would fail or drop the imaginary part silently)."""
    if array.dtype.kind not in "fiu":
        raise EmbeddingTableError(f"{path}: {what} holds {array.dtype} values; expected real numbers (float)")
    return array


def read_npy(path: str, what: str) -> np.ndarray:
    """The real-number array of a .npy file (a mean vector, a teacher's projection weight); a file numpy cannot
    read, a pickled object array, strings or complex numbers raise EmbeddingTableError naming `path`."""
    try:
        array = np.load(path, allow_pickle=False)  # object arrays (pickles) are refused here
    except Exception as e:  # not a .npy, truncated, an object array: name the file
        raise EmbeddingTableError(f"{path}: cannot read {what} ({type(e).__name__}: {e})") from e
    if not isinstance(array, np.ndarray):
        raise EmbeddingTableError(f"{path}: {what} must be a .npy file holding one array")
    return check_real(array, path, what)


def _describe(e: BaseException) -> str:
    """'Type: message' of a reader's exception (kaldiio's bare AssertionError has no message)."""
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _scp_entries(path: str) -> list[tuple[str, int, str]]:
    """(key, line number, rxfilename) of every non-blank scp line; a file that is not text names the line."""
    with open_regular(path, path) as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise EmbeddingTableError(f"{path}:{line}: not UTF-8 text (an ark given where an scp is expected?)") from None
    entries = []
    for n, line in enumerate(text.split("\n"), 1):
        tok = line.split(None, 1)
        if not tok:
            continue
        if len(tok) < 2:
            raise EmbeddingTableError(f"{path}:{n}: entry '{tok[0]}' has no rxfilename (expected 'key ark:offset')")
        entries.append((tok[0], n, check_rxfile(tok[1].strip(), path, n)))
    return entries


def _kaldi_items(path: str, entries: list[tuple[str, int, str]] | None) -> Iterator[tuple[str, np.ndarray]]:
    """(key, vector) pairs of a Kaldi scp (its `entries`) or ark file, in file order, read through the one
    table reader (utils/kaldi_tables.py: no pipes, regular files only); a corrupt or truncated entry raises
    EmbeddingTableError naming the file, the key and where its data lives."""
    if entries is None:  # an ark: the key of a broken entry is not readable; name the last good one
        last, count = None, 0
        items = iter_ark(path)
        while True:
            try:
                key, vec = next(items)
            except StopIteration:
                return
            except TableError:  # not a matrix, not a regular file: named already
                raise
            except Exception as e:
                where = f"the entry after '{last}'" if last is not None else "the first entry"
                raise EmbeddingTableError(f"{path}: cannot read embeddings: {where} (entry {count + 1}) is corrupt "
                                          f"or truncated ({_describe(e)})") from e
            last, count = key, count + 1
            yield key, vec

    def failed(key: str, n: int, rx: str, e: Exception) -> EmbeddingTableError:
        missing = isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError))
        what = "missing or unreadable ark" if missing else "corrupt or truncated ark entry"
        return EmbeddingTableError(f"{path}: cannot read embeddings: entry '{key}' (line {n}) at {rx}: {what} "
                                   f"({_describe(e)})")

    yield from iter_scp_values(iter(entries), path, failed)


def _fill(path: str, items: Iterable[tuple[str, np.ndarray]], capacity: int | None) -> tuple[list[str], np.ndarray]:
    """Stack vectors into one float32 matrix, checking they are 1-D and of one dimension. With `capacity`
    (rows expected) the matrix is allocated once and filled row by row, so the peak stays near one table."""
    keys: list[str] = []
    batch: list[np.ndarray] = []
    done: list[np.ndarray] = []  # stacked batches when the capacity is unknown or exceeded
    emb = None
    dim = None
    filled = 0

    def flush() -> None:
        nonlocal filled
        if not batch:
            return
        if emb is not None and filled + len(batch) <= emb.shape[0]:
            np.stack(batch, out=emb[filled:filled + len(batch)])
        else:
            done.append(np.stack(batch).astype(np.float32, copy=False))
        filled += len(batch)
        batch.clear()

    for key, vec in items:
        if vec.ndim == 2 and vec.shape[0] == 1:  # some extractors write (1, D) matrices
            vec = vec[0]
        if vec.ndim != 1:
            raise EmbeddingTableError(f"{path}: embedding '{key}' has shape {vec.shape}, expected a vector (D,)")
        if dim is None:
            dim = vec.shape[0]
            if dim == 0:
                raise EmbeddingTableError(f"{path}: embedding '{key}' is empty (dimension 0)")
            if capacity:
                emb = np.empty((capacity, dim), dtype=np.float32)
        elif vec.shape[0] != dim:
            raise EmbeddingTableError(f"{path}: embedding '{key}' has dimension {vec.shape[0]}, but '{keys[0]}' "
                               f"has dimension {dim}: embeddings of different dimensions")
        keys.append(key)
        if emb is not None and not batch and filled < emb.shape[0]:
            emb[filled] = vec  # straight into the table: a per-row copy beats np.stack of many small rows
            filled += 1
            continue
        batch.append(vec)
        if len(batch) == _FILL_BATCH:
            flush()
    flush()
    if not keys:
        raise EmbeddingTableError(f"{path}: no embeddings (empty file)")
    if done:
        parts = ([emb[:filled - sum(len(d) for d in done)]] if emb is not None else []) + done
        return keys, np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    return keys, emb[:filled]


def check_finite(path: str, keys: list[str], emb: np.ndarray) -> None:
    """Raise ScoringError naming the first embedding with NaN or Inf."""
    for start in range(0, emb.shape[0], _FINITE_CHUNK):
        ok = np.isfinite(emb[start:start + _FINITE_CHUNK]).all(axis=1)
        if not ok.all():
            row = start + int(np.argmin(ok))
            raise EmbeddingTableError(f"{path}: embedding '{keys[row]}' contains NaN or Inf")


def load_embeddings(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Read an embedding table -> (keys, float32 (N, D) C-contiguous); Kaldi scp/ark (plain files only), or .npz."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise EmbeddingTableError(f"{path}: no such embeddings file")
    if path.endswith(".npy"):
        raise EmbeddingTableError(f"{path}: a .npy array has no keys; store embeddings as .npz with arrays 'keys' "
                                  "and 'embeddings', or as a Kaldi scp/ark")
    try:
        if path.endswith(".npz"):
            keys, emb = _read_npz(path)
        else:
            entries = None if path.endswith(".ark") else _scp_entries(path)
            keys, emb = _fill(path, _kaldi_items(path, entries), len(entries) if entries else None)
    except ScoringError:  # EmbeddingTableError included
        raise
    except TableError as e:  # a pipe, a specifier, a non-regular file, not a matrix: file and line named
        raise EmbeddingTableError(str(e)) from None
    except Exception as e:  # kaldiio / numpy errors on malformed files: name the file
        raise EmbeddingTableError(f"{path}: cannot read embeddings: {type(e).__name__}: {e}") from e
    if emb.shape[0] == 0:
        raise EmbeddingTableError(f"{path}: no embeddings (empty file)")
    if len(set(keys)) != len(keys):
        seen: set[str] = set()
        dup = next(k for k in keys if k in seen or seen.add(k))
        raise EmbeddingTableError(f"{path}: duplicate embedding key '{dup}'")
    check_finite(path, keys, emb)
    return keys, emb
