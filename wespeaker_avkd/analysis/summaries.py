"""Summaries of bootstrap draws: one system's metric over seeds (mean, std, percentile interval of the mean)
and paired differences (student minus baseline) with p-value and verdict, plain and Holm-Bonferroni over a
family of comparisons (method: docs/statistics.md). The draws come from analysis.bootstrap.

Two paired methods: `method_difference` (the report's, with two seeds or more) is a t interval whose standard
error adds the identity-bootstrap variance of the mean-over-seeds difference and the seed variance of the
per-seed differences (Welch-Satterthwaite degrees of freedom), so it speaks about the training method;
`paired_difference` is the identity-only percentile interval over the fixed trained models (the only one
possible with one seed, where the seed variance cannot be estimated)."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from wespeaker_avkd.analysis import power, tdist

LEVEL = 0.95
VERDICTS = ("better", "no significant difference", "worse")
METHOD_T = "seeds and identities (t)"
METHOD_ONE_SEED = "identities only, one seed: not a statement about the method"
METHOD_FIXED = "identities only (fixed models)"


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
    method: str = METHOD_FIXED
    se: float = float("nan")          # standard error of mean_diff (identity bootstrap, plus seeds for METHOD_T)
    df: float = float("nan")          # its degrees of freedom (inf: normal; identity-only methods)
    v_id: float = float("nan")        # variance over draws of the mean-over-seeds difference
    seed_var: float = float("nan")    # sample variance (ddof 1) of the per-seed differences
    mde: float = float("nan")         # minimal detectable effect at 80 % power, two-sided 1 - level
    mde_holm: float = float("nan")    # the same at the strictest Holm step of its family (set by apply_holm)

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
    """Identity-only paired summary (the fixed trained models; method METHOD_FIXED): percentile interval and
    bootstrap p of the per-draw mean-over-seeds difference, from full-list values (S,) and per-draw values
    (S, B) of student and baseline, row s of both from seed seeds[s], column b from the same identity draw."""
    sb = np.atleast_2d(np.asarray(student_boot, dtype=np.float64))
    bb = np.atleast_2d(np.asarray(baseline_boot, dtype=np.float64))
    if sb.shape != bb.shape or not sb.shape[0] == len(seeds) == len(student) == len(baseline):
        raise ValueError(f"paired inputs disagree: {len(seeds)} seeds, bootstrap shapes {sb.shape}, {bb.shape}")
    per_seed = np.asarray(student, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    draws = (sb - bb).mean(axis=0)
    lo, hi = _interval(draws, level)
    v_id = _id_variance(draws)
    se = float(np.sqrt(v_id))
    return PairedSummary([int(s) for s in seeds], [float(v) for v in per_seed], float(per_seed.mean()), lo, hi,
                         bootstrap_p_value(draws), verdict_of(lo, hi), level=level, num_draws=int(sb.shape[1]),
                         se=se, df=float("inf"), v_id=v_id, mde=power.mde(se, float("inf"), 1.0 - level))


def _id_variance(draws: np.ndarray) -> float:
    """Variance (ddof 1) of the finite per-draw values (NaN with fewer than two)."""
    draws = draws[np.isfinite(draws)]
    return float(draws.var(ddof=1)) if draws.size > 1 else float("nan")


def _t_test(mean: float, se: float, df: float, level: float) -> tuple[float, float, float]:
    """(low, high, two-sided p) of the t interval mean +- t_{(1+level)/2, df} se; NaNs when se is not finite
    (e.g. no draw left both systems a target and a nontarget)."""
    if not np.isfinite(se):
        return float("nan"), float("nan"), float("nan")
    half = tdist.t_quantile(0.5 + level / 2.0, df) * se
    if se > 0.0:
        p = tdist.t_two_sided_p(mean / se, df)
    else:
        p = 1.0 if mean == 0.0 else 0.0
    return mean - half, mean + half, p


def method_difference(seeds: Sequence[int], student: Sequence[float], baseline: Sequence[float],
                      student_boot: np.ndarray, baseline_boot: np.ndarray, level: float = LEVEL) -> PairedSummary:
    """Paired summary about the method, from full-list values (S,) and per-draw values (S, B) of student and
    baseline (rows: seeds, columns: shared identity draws): SE^2 = V_id + s^2 / S, t interval and p-value with
    Welch df. With one seed, the identity-only percentile summary labelled METHOD_ONE_SEED."""
    if len(seeds) < 2:
        one = paired_difference(seeds, student, baseline, student_boot, baseline_boot, level)
        one.method = METHOD_ONE_SEED
        return one
    sb = np.atleast_2d(np.asarray(student_boot, dtype=np.float64))
    bb = np.atleast_2d(np.asarray(baseline_boot, dtype=np.float64))
    if sb.shape != bb.shape or not sb.shape[0] == len(seeds) == len(student) == len(baseline):
        raise ValueError(f"paired inputs disagree: {len(seeds)} seeds, bootstrap shapes {sb.shape}, {bb.shape}")
    per_seed = np.asarray(student, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    n = len(per_seed)
    v_id = _id_variance((sb - bb).mean(axis=0))
    seed_var = float(per_seed.var(ddof=1))
    se = float(np.sqrt(v_id + seed_var / n))
    df = power.welch_df(v_id, seed_var, n)
    mean = float(per_seed.mean())
    lo, hi, p = _t_test(mean, se, df, level)
    return PairedSummary([int(s) for s in seeds], [float(v) for v in per_seed], mean, lo, hi, p,
                         verdict_of(lo, hi), level=level, num_draws=int(sb.shape[1]), method=METHOD_T, se=se,
                         df=df, v_id=v_id, seed_var=seed_var, mde=power.mde(se, df, 1.0 - level))


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
    strictest = alpha / max(1, sum(np.isfinite(c.p_value) for c in comparisons))
    for c, r in zip(comparisons, reject):
        c.mde_holm = power.mde(c.se, c.df, strictest)
        c.holm_verdict = ("better" if c.mean_diff < 0 else "worse") if r else "no significant difference"
