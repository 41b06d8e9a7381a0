"""Embedding tables for scoring (the reader lives in utils.embedding_table) and the mean vector."""
from __future__ import annotations

import os

import numpy as np

from wespeaker_avkd.utils.embedding_table import EmbeddingTableError, check_finite, load_embeddings, read_npy

__all__ = ["check_finite", "load_embeddings", "load_mean_vector"]


def load_mean_vector(path: str | os.PathLike) -> np.ndarray:
    """Mean vector (D,) float32: a .npy vector of real numbers, or the mean of an embeddings scp/ark/npz; a bad
    file raises EmbeddingTableError (a ScoringError) naming it."""
    path = os.fspath(path)
    if path.endswith(".npy"):
        if not os.path.isfile(path):
            raise EmbeddingTableError(f"{path}: no such mean vector file")
        vec = read_npy(path, "the mean vector")
        vec = vec.reshape(-1) if vec.ndim == 2 and 1 in vec.shape else vec
        if vec.ndim != 1 or vec.size == 0:
            raise EmbeddingTableError(f"{path}: a mean vector must have shape (D,), got {vec.shape}")
        if not np.isfinite(vec).all():
            raise EmbeddingTableError(f"{path}: the mean vector contains NaN or Inf")
        return np.ascontiguousarray(vec, dtype=np.float32)
    _, emb = load_embeddings(path)
    return emb.mean(axis=0, dtype=np.float64).astype(np.float32)
