"""Agreement between student and teacher embeddings: Pearson correlation (two definitions) and cosine distance.

- utterance PCC: for each utterance, the PCC between the two D-dim vectors (each centred on its own mean over
  dims), then the mean over utterances. Needs equal dims.
- flattened PCC: one PCC over all N x D value pairs (each matrix centred on its global mean).
- cosine distance: mean over utterances of 1 - cos(student, teacher), the quantity the COS loss minimises.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 (N, D) copies; shapes must agree."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"expected two (N, D) arrays of one shape, got {x.shape} and {y.shape}")
    return x, y


def utterance_pcc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) PCC between row i of x and row i of y (NaN where a row is constant)."""
    x, y = _check(x, y)
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    denom = np.sqrt((xc * xc).sum(1) * (yc * yc).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(1) / denom


def flattened_pcc(x: np.ndarray, y: np.ndarray) -> float:
    """PCC over all N*D value pairs."""
    x, y = _check(x, y)
    xc = x.ravel() - x.mean()
    yc = y.ravel() - y.mean()
    return float((xc @ yc) / np.sqrt((xc @ xc) * (yc @ yc)))


def cosine_distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) 1 - cos(x_i, y_i)."""
    x, y = _check(x, y)
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    return 1.0 - (x * y).sum(1) / np.maximum(norms, 1e-12)


def common_keys(a: Sequence[str], b: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list]:
    """Row indices into a and b of the keys both hold (in a's order), and those keys."""
    pos_b = {k: i for i, k in enumerate(b)}
    ia, ib, keys = [], [], []
    for i, k in enumerate(a):
        j = pos_b.get(k)
        if j is not None:
            ia.append(i)
            ib.append(j)
            keys.append(k)
    return np.asarray(ia, dtype=np.int64), np.asarray(ib, dtype=np.int64), keys


def agreement(student: tuple[Sequence[str], np.ndarray], teacher: tuple[Sequence[str], np.ndarray]) -> dict[str, float]:
    """{num_utts, pcc_utterance (mean), pcc_flattened, cosine_distance (mean)} over the common keys."""
    ia, ib, keys = common_keys(student[0], teacher[0])
    if not keys:
        raise ValueError("student and teacher embeddings share no utterance id")
    x, y = student[1][ia], teacher[1][ib]
    out = {"num_utts": len(keys), "cosine_distance": float(cosine_distance(x, y).mean())}
    if x.shape[1] == y.shape[1]:
        out["pcc_utterance"] = float(np.nanmean(utterance_pcc(x, y)))
        out["pcc_flattened"] = flattened_pcc(x, y)
    return out
