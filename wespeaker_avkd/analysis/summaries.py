"""Summaries of bootstrap draws: one system's metric over seeds (mean, std, percentile interval of the mean)
and the paired student-minus-baseline difference with its p-value and verdict, plain and Holm-Bonferroni over a
family of comparisons (method: docs/statistics.md). The draws come from analysis.bootstrap."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

LEVEL = 0.95
VERDICTS = ("better", "no significant difference", "worse")


@dataclasses.dataclass
class SystemSummary:
    """One metric of one system on one list over seeds: per-seed values on the full list, mean, std (ddof 1;
    NaN with one seed), and the percentile interval of the mean over seeds under the identity bootstrap."""

    seeds: list[int]
    per_seed: list[float]
    mean: float
    std: float
    ci_low: float
    ci_high: float
    level: float = LEVEL
    num_draws: int = 0

    def to_dict(self) -> dict:
        """JSON record."""
        return dataclasses.asdict(self)


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of 1-D samples (NaN draws ignored)."""
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(samples, [tail, 100.0 - tail])
    return float(lo), float(hi)


def summarise_system(seeds: Sequence[int], per_seed: Sequence[float], boot: np.ndarray,
                     level: float = LEVEL) -> SystemSummary:
    """Summary from the full-list values per seed (S,) and the per-draw values (S, B) (same draws per seed)."""
    boot = np.atleast_2d(np.asarray(boot, dtype=np.float64))
    values = np.asarray(per_seed, dtype=np.float64)
    if boot.shape[0] != len(values) or len(seeds) != len(values) or not len(values):
        raise ValueError(f"{len(seeds)} seeds, {len(values)} values and {boot.shape[0]} bootstrap rows differ")
    lo, hi = _interval(boot.mean(axis=0), level)
    std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return SystemSummary([int(s) for s in seeds], [float(v) for v in values], float(values.mean()), std, lo, hi,
                         level, int(boot.shape[1]))


@dataclasses.dataclass
class PairedSummary:
    """Student minus baseline of one metric (lower is better) over the seeds both have, paired per seed and
    per draw: per-seed differences on the full list, their mean, the percentile interval of the per-draw mean
    over seeds of the differences, the two-sided bootstrap p-value, and the verdicts (plain and Holm)."""

    seeds: list[int]
    per_seed_diff: list[float]
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    verdict: str
    holm_verdict: str = ""
    level: float = LEVEL
    num_draws: int = 0

    def to_dict(self) -> dict:
        """JSON record."""
        return dataclasses.asdict(self)


def verdict_of(ci_low: float, ci_high: float) -> str:
    """'better' when the whole interval of student - baseline is below 0, 'worse' above, else no difference."""
    if ci_high < 0.0:
        return "better"
    if ci_low > 0.0:
        return "worse"
    return "no significant difference"


def bootstrap_p_value(diffs: np.ndarray) -> float:
    """Two-sided p-value of 'no difference' from per-draw differences: twice the smaller share of draws on
    either side of 0 (ties count on both), capped at 1 -- the smallest 1 - level at which the percentile
    interval still contains 0. Its resolution is 1 / draws (0 means no draw crossed 0)."""
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        return float("nan")
    below = np.count_nonzero(diffs <= 0.0) / diffs.size
    above = np.count_nonzero(diffs >= 0.0) / diffs.size
    return float(min(1.0, 2.0 * min(below, above)))


def paired_difference(seeds: Sequence[int], student: Sequence[float], baseline: Sequence[float],
                      student_boot: np.ndarray, baseline_boot: np.ndarray, level: float = LEVEL) -> PairedSummary:
    """Paired summary from full-list values (S,) and per-draw values (S, B) of student and baseline, row s of
    both from seed seeds[s] and column b of both from the same identity draw."""
    sb = np.atleast_2d(np.asarray(student_boot, dtype=np.float64))
    bb = np.atleast_2d(np.asarray(baseline_boot, dtype=np.float64))
    if sb.shape != bb.shape or not sb.shape[0] == len(seeds) == len(student) == len(baseline):
        raise ValueError(f"paired inputs disagree: {len(seeds)} seeds, bootstrap shapes {sb.shape}, {bb.shape}")
    per_seed = np.asarray(student, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    draws = (sb - bb).mean(axis=0)
    lo, hi = _interval(draws, level)
    return PairedSummary([int(s) for s in seeds], [float(v) for v in per_seed], float(per_seed.mean()), lo, hi,
                         bootstrap_p_value(draws), verdict_of(lo, hi), level=level, num_draws=int(sb.shape[1]))


def holm_reject(p_values: Sequence[float], alpha: float = 1.0 - LEVEL) -> list[bool]:
    """Holm-Bonferroni step-down: which hypotheses are rejected at family-wise error `alpha` (NaN never)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = int(np.isfinite(p).sum())
    reject = [False] * len(p)
    order = sorted((i for i in range(len(p)) if np.isfinite(p[i])), key=lambda i: p[i])
    for rank, i in enumerate(order):
        if p[i] > alpha / (m - rank):
            break
        reject[i] = True
    return reject


def apply_holm(comparisons: Sequence[PairedSummary], alpha: float = 1.0 - LEVEL) -> None:
    """Set holm_verdict of every comparison of one family (e.g. all students x lists of a report)."""
    reject = holm_reject([c.p_value for c in comparisons], alpha)
    for c, r in zip(comparisons, reject):
        c.holm_verdict = ("better" if c.mean_diff < 0 else "worse") if r else "no significant difference"
