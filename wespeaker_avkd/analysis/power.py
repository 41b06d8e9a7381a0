"""Power of the paired t comparison (analysis.summaries.method_difference): the minimal detectable effect of a
comparison, and the number of training seeds needed to detect a given effect from dev estimates of the seed
variance and the identity-bootstrap variance (docs/statistics.md, "Power")."""
from __future__ import annotations

import math

from wespeaker_avkd.analysis import tdist

POWER = 0.8
ALPHA = 0.05
DF_CAP = 1e6  # Welch df when the seed variance is ~0 (V_id's own df is taken as infinite): the normal limit


def welch_df(v_id: float, seed_var: float, num_seeds: int) -> float:
    """Welch-Satterthwaite df of SE^2 = v_id + seed_var / n, v_id's df taken as infinite; capped at DF_CAP."""
    s2n = seed_var / num_seeds
    if num_seeds < 2 or not s2n > 0.0:
        return DF_CAP
    return float(min(DF_CAP, (num_seeds - 1) * ((v_id + s2n) / s2n) ** 2))


def mde(se: float, df: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Minimal detectable effect (the metric's units) of a two-sided level-alpha t test with standard error se
    and df degrees of freedom at the given power: (t_{1-alpha/2,df} + t_{power,df}) se; NaN for a NaN se."""
    if not math.isfinite(se) or not df > 0:
        return float("nan")
    return (tdist.t_quantile(1.0 - alpha / 2.0, df) + tdist.t_quantile(power, df)) * se


def seeds_mde(seed_var: float, v_id: float, num_seeds: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """MDE with num_seeds seeds: SE^2 = v_id + seed_var / n, Welch df (n - 1)(SE^2 / (seed_var / n))^2."""
    se = math.sqrt(v_id + seed_var / num_seeds)
    return mde(se, welch_df(v_id, seed_var, num_seeds), alpha, power)


def seeds_needed(seed_var: float, v_id: float, effect: float, alpha: float = ALPHA, power: float = POWER,
                 max_seeds: int = 200) -> int | None:
    """Fewest seeds n >= 2 whose MDE (seeds_mde) is at most `effect`; None when even max_seeds is not enough
    (the identity variance v_id alone may forbid it: more seeds do not shrink it; a bigger list does).

    seed_var: variance (ddof 1) of the per-seed paired differences on dev; v_id: the identity-bootstrap
    variance of the mean-over-seeds difference on dev (taken as fixed in n: conservative, as averaging more
    seeds shrinks its seed-specific part)."""
    if not effect > 0 or not seed_var >= 0 or not v_id >= 0:
        raise ValueError(f"need effect > 0 and variances >= 0, got {effect}, {seed_var}, {v_id}")
    for n in range(2, max_seeds + 1):
        if seeds_mde(seed_var, v_id, n, alpha, power) <= effect:
            return n
    return None
