"""Adaptive symmetric score normalisation (AS-norm) with a top-k cohort, as WeSpeaker's score_norm.py."""
from __future__ import annotations

import numpy as np

from wespeaker_avkd._scorer import ScoringError

_ROWS_PER_STEP = 2048  # embeddings scored against the cohort at a time: bounds the (rows, cohort) matrix


def _normalised(x: np.ndarray, mean_vec: np.ndarray | None, what: str) -> np.ndarray:
    """Rows minus the mean, L2-normalised, float32; raises on a zero-norm row."""
    x = x.astype(np.float64) - (0.0 if mean_vec is None else mean_vec.astype(np.float64))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ScoringError(f"{what} row {int(np.flatnonzero(norms[:, 0] == 0)[0])} has zero norm")
    return (x / norms).astype(np.float32)


def speaker_mean_cohort(keys: list[str], emb: np.ndarray, utt2spk: dict[str, str]) -> np.ndarray:
    """Per-speaker mean embeddings (S, D), speakers in sorted order, from utterance embeddings and utt2spk."""
    spk = []
    for k in keys:
        if k not in utt2spk:
            raise ScoringError(f"cohort utterance '{k}' is not in utt2spk")
        spk.append(utt2spk[k])
    names, inverse = np.unique(np.array(spk), return_inverse=True)
    sums = np.zeros((len(names), emb.shape[1]))
    np.add.at(sums, inverse, emb.astype(np.float64))
    return (sums / np.bincount(inverse)[:, None]).astype(np.float32)


def cohort_stats(emb: np.ndarray, rows: np.ndarray, cohort: np.ndarray, top_k: int,
                 mean_vec: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std of the top_k cosine scores of emb[rows] against the cohort (both (len(rows),))."""
    if cohort.ndim != 2 or cohort.shape[0] == 0:
        raise ScoringError(f"the cohort must be a non-empty (K, D) matrix, got shape {cohort.shape}")
    if cohort.shape[1] != emb.shape[1]:
        raise ScoringError(f"cohort dimension {cohort.shape[1]} differs from the embeddings' {emb.shape[1]}")
    if top_k <= 0:
        raise ScoringError(f"top_k must be positive, got {top_k}")
    c = _normalised(cohort, mean_vec, "cohort")
    k = min(int(top_k), c.shape[0])  # top_k >= cohort size is plain S-norm
    mu = np.empty(len(rows))
    sd = np.empty(len(rows))
    for start in range(0, len(rows), _ROWS_PER_STEP):
        r = rows[start:start + _ROWS_PER_STEP]
        s = _normalised(emb[r], mean_vec, "embedding") @ c.T
        top = np.partition(s, s.shape[1] - k, axis=1)[:, s.shape[1] - k:].astype(np.float64)
        mu[start:start + len(r)] = top.mean(axis=1)
        sd[start:start + len(r)] = top.std(axis=1)
    if (sd == 0).any():
        raise ScoringError("an embedding has identical scores against all its top-k cohort entries (std 0)")
    return mu, sd


def as_norm(scores: np.ndarray, enroll_rows: np.ndarray, test_rows: np.ndarray, emb: np.ndarray,
            cohort: np.ndarray, top_k: int = 300, mean_vec: np.ndarray | None = None) -> np.ndarray:
    """AS-norm scores float32 (M,): 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t), stats over the top_k cohort
    scores of each side (cohort (K, D), mean-subtracted and L2-normalised like the trials)."""
    used, inverse = np.unique(np.concatenate([enroll_rows, test_rows]), return_inverse=True)
    mu, sd = cohort_stats(emb, used, cohort, top_k, mean_vec)
    m = len(enroll_rows)
    ie, it = inverse[:m], inverse[m:]
    s = scores.astype(np.float64)
    return (0.5 * ((s - mu[ie]) / sd[ie] + (s - mu[it]) / sd[it])).astype(np.float32)
