"""EER (ROC crossing, Kaldi compute-eer, ROCCH), minDCF and DET points (compiled; definitions: metrics.md)."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from wespeaker_avkd import _scorer
from wespeaker_avkd._scorer import ScoringError


def p_key(p: float) -> str:
    """Dictionary key of a p_target: 0.01 -> "0.01"."""
    return repr(float(p))


@dataclasses.dataclass
class Metrics:
    """Verification metrics; rates are fractions in [0, 1], thresholds are scores."""

    num_trials: int
    num_target: int
    num_nontarget: int
    eer: float            # ROC crossing with tied scores grouped (primary)
    eer_threshold: float
    eer_kaldi: float      # Kaldi compute-eer (float32 value, integer rule)
    eer_rocch: float      # ROCCH-EER (BOSARIS convex hull)
    min_dcf: dict         # p_key(p_target) -> minDCF (Kaldi compute_min_dcf.py)
    min_dcf_threshold: dict = dataclasses.field(default_factory=dict)
    eer_kaldi_threshold: float = float("nan")

    def to_dict(self) -> dict:
        """The JSON record written by compute_metrics --json."""
        keys = ("num_trials", "num_target", "num_nontarget", "eer", "eer_threshold", "eer_kaldi", "eer_rocch",
                "min_dcf")
        return {k: (dict(getattr(self, k)) if k == "min_dcf" else getattr(self, k)) for k in keys}

    def summary(self) -> str:
        """One line: EER % (three definitions), minDCF per p_target, trial counts."""
        dcf = ", ".join(f"minDCF(p={p}) {v:.4f}" for p, v in self.min_dcf.items())
        return (f"EER {100 * self.eer:.3f}% (Kaldi {100 * self.eer_kaldi:.4g}%, ROCCH {100 * self.eer_rocch:.3f}%)"
                f", {dcf}, {self.num_trials} trials ({self.num_target} target, {self.num_nontarget} nontarget)")


def _inputs(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Explicit conversion to the compiled types: metrics are computed on float32 scores (as score files store
    them and as Kaldi does); labels must be 0/1 (the C++ side checks)."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 1 or labels.ndim != 1:
        raise ScoringError(f"scores and labels must be 1-D, got shapes {scores.shape} and {labels.shape}")
    if labels.dtype != np.int8:
        if labels.size and (labels.min() < -1 or labels.max() > 1):
            bad = int(np.flatnonzero((labels < -1) | (labels > 1))[0])
            raise ScoringError(f"trial {bad} has label {labels[bad]} (expected 1 target or 0 nontarget)")
        labels = labels.astype(np.int8)
    return np.ascontiguousarray(scores, dtype=np.float32), np.ascontiguousarray(labels)


def compute_metrics(scores: np.ndarray, labels: np.ndarray, p_targets: Sequence[float] = (0.01, 0.05),
                    c_miss: float = 1.0, c_fa: float = 1.0) -> Metrics:
    """EER by three definitions, its threshold, and minDCF at each p_target from scores (M,) and labels (M,)
    (1 target, 0 nontarget)."""
    scores, labels = _inputs(scores, labels)
    ps = [float(p) for p in p_targets]
    r = _scorer.compute_metrics(scores, labels, ps, float(c_miss), float(c_fa))
    return Metrics(
        num_trials=r["num_trials"], num_target=r["num_target"], num_nontarget=r["num_nontarget"],
        eer=r["eer"], eer_threshold=r["eer_threshold"], eer_kaldi=r["eer_kaldi"], eer_rocch=r["eer_rocch"],
        min_dcf={p_key(p): v for p, v in zip(ps, r["min_dcf"])},
        min_dcf_threshold={p_key(p): v for p, v in zip(ps, r["min_dcf_threshold"])},
        eer_kaldi_threshold=r["eer_kaldi_threshold"])


def det_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DET operating points (p_fa, p_miss), float64, one per distinct score plus reject-all, p_fa descending."""
    scores, labels = _inputs(scores, labels)
    p_fa, p_miss, _ = _scorer.det_curve(scores, labels)
    return p_fa, p_miss
