"""Embedding tables for scoring (the reader lives in utils.embedding_table) and the mean vector."""
from __future__ import annotations

import os

import numpy as np

from wespeaker_avkd._scorer import ScoringError
from wespeaker_avkd.utils.embedding_table import check_finite, load_embeddings

__all__ = ["check_finite", "load_embeddings", "load_mean_vector"]


def load_mean_vector(path: str | os.PathLike) -> np.ndarray:
    """Mean vector (D,) float32: a .npy vector, or the mean of an embeddings scp/ark/npz."""
    path = os.fspath(path)
    if path.endswith(".npy"):
        if not os.path.isfile(path):
            raise ScoringError(f"{path}: no such mean vector file")
        try:
            vec = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:  # object arrays (need pickle), truncated or non-npy files
            raise ScoringError(f"{path}: not a numeric .npy mean vector ({err})") from err
        if not isinstance(vec, np.ndarray) or not (np.issubdtype(vec.dtype, np.floating)
                                                   or np.issubdtype(vec.dtype, np.integer)):
            raise ScoringError(f"{path}: a mean vector must hold real numbers, got dtype "
                               f"{getattr(vec, 'dtype', type(vec).__name__)}")
        vec = vec.reshape(-1) if vec.ndim == 2 and 1 in vec.shape else vec
        if vec.ndim != 1 or vec.size == 0:
            raise ScoringError(f"{path}: a mean vector must have shape (D,), got {vec.shape}")
        if not np.isfinite(vec).all():
            raise ScoringError(f"{path}: the mean vector contains NaN or Inf")
        return np.ascontiguousarray(vec, dtype=np.float32)
    _, emb = load_embeddings(path)
    return emb.mean(axis=0, dtype=np.float64).astype(np.float32)
