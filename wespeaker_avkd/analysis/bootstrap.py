"""Two-way identity bootstrap of EER and minDCF: the per-draw metrics of every system and seed of a trial list
(analysis.summaries turns them into intervals over seeds and paired student-minus-baseline verdicts).

Method (docs/statistics.md): trials are not independent (they share utterances and identities), so the
bootstrap resamples *identities*. One draw picks the list's identities with replacement (as many as there are);
identity i drawn m_i times gives trial (a, b) the weight m_id(a) * m_id(b) (0 when a side was not drawn). The
metrics of a draw are those of the weighted trials, i.e. of the score array with every trial repeated by its
weight -- with exactly the definitions of scoring.compute_metrics:

- EER: the crossing of the linearly interpolated ROC with the diagonal, one operating point per group of equal
  (float32) scores plus the reject-all point;
- minDCF: every trial in stable ascending score order is an operating point (Kaldi's compute_min_dcf.py),
  c_miss = c_fa = 1 unless given, normalised by min(c_miss p, c_fa (1 - p)).

Speed: each system's scores are sorted once (SortedTrials); a draw only changes the weights, so the weighted
cumulative target/nontarget masses of many draws are one numpy cumsum over a (draws, trials) block. All systems
of one trial list share the same draws (paired), and all seeds of a system share them too, so that the mean over
seeds and the student-minus-baseline difference are computed inside each draw.
"""
from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np

from wespeaker_avkd.utils.errors import InputKeyError, InputValueError

P_TARGETS = (0.01, 0.05)
# How a draw weights trial (a, b) (a: enrolment identity, b: test identity; m: how often an identity was drawn):
# "per-identity": the product of m over the trial's DISTINCT identities -- m(a) for a target trial (a = b), m(a) m(b)
# for a nontarget; every identity enters a trial's weight once. "two-way": m(a) m(b) always, so a target trial
# weighs m(a)^2 -- its intervals are ~1.5-1.7x too wide (for the targets' part sqrt(11/4) ~ 1.66: with counts m ~
# Poisson(1), Var(m^2) / E[m^2]^2 = (15 - 4) / 4 against Var(m) / E[m]^2 = 1). "one-way": m(a) -- the test side
# of a nontarget is not resampled, a little too narrow. Calibration on synthetic lists with known truth:
# analysis.calibration, tools/calibrate_bootstrap.py, docs/statistics.md.
SCHEMES = ("per-identity", "two-way", "one-way")
DEFAULT_SCHEME = "per-identity"  # the calibrated one (docs/statistics.md)
_BLOCK_ELEMENTS = 2_000_000  # draws x trials per block: bounds the temporary arrays (~8-16 MB each)

K = TypeVar("K", bound=Hashable)


# ----------------------------------------------------------------------------------------------------------------
# one system's scores, sorted once
@dataclasses.dataclass(frozen=True)
class SortedTrials:
    """A system's trials in stable ascending float32 score order, prepared once for many weightings.

    target_order / nontarget_order: trial indices of the targets / nontargets in sorted order. eer_t, eer_n
    (G + 1,): how many targets / nontargets lie below each group of equal scores, then the totals (reject all).
    dcf_t, dcf_n (K,): targets / nontargets up to and including each trial that can be the minDCF operating
    point (see sort_trials).
    """

    target_order: np.ndarray
    nontarget_order: np.ndarray
    eer_t: np.ndarray
    eer_n: np.ndarray
    dcf_t: np.ndarray
    dcf_n: np.ndarray

    @property
    def num_trials(self) -> int:
        """M."""
        return int(self.target_order.shape[0] + self.nontarget_order.shape[0])


def sort_trials(scores: np.ndarray, labels: np.ndarray) -> SortedTrials:
    """Sort scores (M,) (compared as float32, like the compiled scorer) with labels (M,) 1/0 once."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(f"scores and labels must be 1-D of one length, got shapes {scores.shape}, {labels.shape}")
    if scores.size == 0:
        raise ValueError("no trials")
    s32 = scores.astype(np.float32)
    if not np.isfinite(s32).all():
        raise ValueError(f"trial {int(np.flatnonzero(~np.isfinite(s32))[0])} has a non-finite score")
    bad = (labels != 0) & (labels != 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"trial {i} has label {labels[i]} (expected 1 target or 0 nontarget)")
    order = np.argsort(s32, kind="stable")  # stable: ties keep trial order, as the compiled minDCF does
    sorted_scores = s32[order]
    is_target = labels[order] == 1
    m = len(order)
    t_below = np.concatenate([[0], np.cumsum(is_target)])  # t_below[k]: targets at sorted positions < k
    n_below = np.arange(m + 1) - t_below
    starts = np.flatnonzero(np.diff(sorted_scores) != 0) + 1  # -0.0 == 0.0, as the scorer's key folding
    eer_points = np.concatenate([[0], starts, [m]])
    # Along a run of targets the detection cost rises, along a run of nontargets it falls, so the minimum over
    # the points of the repeated array is at the end of a nontarget run, at the last trial, or (leading
    # targets) at the very first unit of weight -- sorted_masses adds that one.
    run_end = ~is_target & np.append(is_target[1:], True)
    dcf_points = np.unique(np.concatenate([[m - 1], np.flatnonzero(run_end)])) + 1
    return SortedTrials(order[is_target], order[~is_target], t_below[eer_points], n_below[eer_points],
                        t_below[dcf_points], n_below[dcf_points])


def _exclusive_cumsum(w: np.ndarray) -> np.ndarray:
    """(B, n + 1) cumulative sums along the trials of w (B, n), with a zero first column."""
    out = np.empty((w.shape[0], w.shape[1] + 1), dtype=w.dtype)
    out[:, 0] = 0
    np.cumsum(w, axis=1, out=out[:, 1:])
    return out


def _weighted_eer(st: SortedTrials, cum_t: np.ndarray, cum_n: np.ndarray, total_t: np.ndarray,
                  total_n: np.ndarray) -> np.ndarray:
    """EER (B,) per draw from the exclusive cumulative masses (B, Mt + 1), (B, Mn + 1) and their totals (B,)."""
    rows = np.arange(cum_t.shape[0])

    def roc(j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(fnr, fnr - fpr) per draw at EER point j (B,), in the compiled scorer's float64 arithmetic."""
        fnr = cum_t[rows, st.eer_t[j]] / total_t
        fpr = (total_n - cum_n[rows, st.eer_n[j]]) / total_n
        return fnr, fnr - fpr

    # d = FNR - FPR rises from -1 (point 0) to +1 (reject all): bisect for the first point with d > 0
    lo = np.zeros(len(rows), dtype=np.int64)
    hi = np.full(len(rows), len(st.eer_t) - 1, dtype=np.int64)
    while True:
        open_ = hi - lo > 1
        if not open_.any():
            break
        mid = (lo + hi) // 2
        _, d = roc(mid)
        up = open_ & (d > 0.0)
        hi = np.where(up, mid, hi)
        lo = np.where(open_ & ~up, mid, lo)
    f0, d0 = roc(lo)
    f1, d1 = roc(hi)
    return f0 + d0 / (d0 - d1) * (f1 - f0)


def _weighted_min_dcf(st: SortedTrials, cum_t: np.ndarray, cum_n: np.ndarray, total_t: np.ndarray,
                      total_n: np.ndarray, p_targets: Sequence[float], c_miss: float, c_fa: float
                      ) -> dict[float, np.ndarray]:
    """{p_target: minDCF (B,)} per draw from the exclusive cumulative masses and their totals."""
    ct = np.take(cum_t, st.dcf_t, axis=1).astype(np.float64)  # exact: integer masses
    cn = np.take(cum_n, st.dcf_n, axis=1).astype(np.float64)
    # Candidates with no weight up to them (a leading prefix) are not points of the repeated array.
    empty = 0
    while empty < ct.shape[1] and not (ct[:, empty] + cn[:, empty] > 0).all():
        empty += 1
    zero = (ct[:, :empty] + cn[:, :empty]) == 0 if empty else None
    cost = np.empty_like(ct)
    scratch = np.empty_like(cn)
    min_dcf = {}
    for p in p_targets:
        p = float(p)
        # cost = c_miss p ct / T + c_fa (1 - p) (1 - cn / N); the constant c_fa (1 - p) is added after the min
        np.multiply(ct, (c_miss * p / total_t)[:, None], out=cost)
        np.multiply(cn, (c_fa * (1.0 - p) / total_n)[:, None], out=scratch)
        cost -= scratch
        if zero is not None:
            cost[:, :empty][zero] = np.inf
        best = cost.min(axis=1) + c_fa * (1.0 - p)
        # the first unit of weight when it is a target (else a point above the real first one: harmless)
        first = c_miss * p / total_t + c_fa * (1.0 - p)
        min_dcf[p] = np.minimum(best, first) / min(c_miss * p, c_fa * (1.0 - p))
    return min_dcf


def sorted_masses(st: SortedTrials, w_target: np.ndarray, w_nontarget: np.ndarray, p_targets: Sequence[float],
                  c_miss: float = 1.0, c_fa: float = 1.0) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """EER (B,) and {p_target: minDCF (B,)} from the integer weights of the targets (B, Mt) and nontargets
    (B, Mn), each in the system's sorted order (st.target_order, st.nontarget_order)."""
    for p in p_targets:
        if not 0.0 < float(p) < 1.0:
            raise ValueError(f"p_target must lie in (0, 1), got {p}")
    cum_t = _exclusive_cumsum(w_target)
    cum_n = _exclusive_cumsum(w_nontarget)
    total_t = cum_t[:, -1].astype(np.float64)
    total_n = cum_n[:, -1].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        eer = _weighted_eer(st, cum_t, cum_n, total_t, total_n)
        min_dcf = _weighted_min_dcf(st, cum_t, cum_n, total_t, total_n, p_targets, c_miss, c_fa)
    bad = ~((total_t > 0) & (total_n > 0))
    if bad.any():
        eer[bad] = np.nan
        for p in min_dcf:
            min_dcf[p][bad] = np.nan
    return eer, min_dcf


def weighted_metrics(st: SortedTrials, weights: np.ndarray, p_targets: Sequence[float] = P_TARGETS,
                     c_miss: float = 1.0, c_fa: float = 1.0) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """EER (B,) and {p_target: minDCF (B,)} of B integer weightings (B, M) (trial order, >= 0) of one system.

    Equal to scoring.compute_metrics on the scores repeated by the weights (trial order kept, so ties stay in
    the same stable order); NaN where a weighting leaves no target or no nontarget mass.
    """
    w = np.asarray(weights)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] != st.num_trials:
        raise ValueError(f"weights must be (draws, {st.num_trials}), got shape {np.shape(weights)}")
    if (w < 0).any() or (w != np.round(w)).any():
        raise ValueError("weights must be non-negative integers")
    w = w.astype(np.int64)
    return sorted_masses(st, w[:, st.target_order], w[:, st.nontarget_order], p_targets, c_miss, c_fa)


# ----------------------------------------------------------------------------------------------------------------
# identities of a trial list, and the draws
@dataclasses.dataclass(frozen=True)
class ListDesign:
    """Identity structure of one trial list: id_a, id_b (M,) indices into identities of enroll/test sides."""

    identities: list[str]
    id_a: np.ndarray
    id_b: np.ndarray

    @property
    def num_identities(self) -> int:
        """Number of distinct identities in the list (the bootstrap draws this many)."""
        return len(self.identities)

    @property
    def num_trials(self) -> int:
        """M."""
        return int(self.id_a.shape[0])


def list_design(enroll: Sequence[str], test: Sequence[str], utt2spk: Mapping[str, str],
                where: str = "trial list") -> ListDesign:
    """Map every trial's enroll/test utterance to its identity through utt2spk; a missing utterance raises
    KeyError naming `where`."""
    if len(enroll) != len(test):
        raise InputValueError(f"{where}: {len(enroll)} enroll but {len(test)} test keys")
    index: dict[str, int] = {}
    sides = []
    for keys in (enroll, test):
        ids = np.empty(len(keys), dtype=np.int64)
        for i, utt in enumerate(keys):
            spk = utt2spk.get(utt)
            if spk is None:
                raise InputKeyError(f"{where}: utterance '{utt}' (trial {i + 1}) has no identity in utt2spk")
            ids[i] = index.setdefault(spk, len(index))
        sides.append(ids)
    return ListDesign(list(index), sides[0], sides[1])


def list_rng(boot_seed: int, list_name: str) -> np.random.Generator:
    """The draws' generator of one trial list: depends on the bootstrap seed and the list's name only, so a
    list's draws do not change when other lists or systems are added."""
    return np.random.default_rng([int(boot_seed), zlib.crc32(list_name.encode("utf-8"))])


def draw_identity_counts(num_identities: int, num_draws: int, rng: np.random.Generator) -> np.ndarray:
    """(B, I) int64: how often each of I identities is drawn, I draws with replacement per row."""
    if num_identities <= 0 or num_draws <= 0:
        raise ValueError(f"need identities and draws, got {num_identities} and {num_draws}")
    return rng.multinomial(num_identities, np.full(num_identities, 1.0 / num_identities), size=num_draws)


def _count_dtype(counts: np.ndarray, num_trials: int) -> type:
    """int32 when no cumulative mass can overflow it, else int64."""
    return np.int32 if float(counts.max(initial=0)) ** 2 * num_trials < 2 ** 31 else np.int64


def side_weights(c: np.ndarray, id_a: np.ndarray, id_b: np.ndarray, scheme: str) -> np.ndarray:
    """(B, n) integer weights of n trials with identities id_a, id_b (n,) under identity counts c (B, I)."""
    w = np.take(c, id_a, axis=1)
    if scheme == "two-way":
        w *= np.take(c, id_b, axis=1)
    elif scheme == "per-identity":
        other = id_a != id_b
        w[:, other] *= np.take(c, id_b[other], axis=1)
    elif scheme != "one-way":
        raise ValueError(f"bootstrap scheme must be one of {sorted(SCHEMES)}, got {scheme!r}")
    return w


def trial_weights(design: ListDesign, counts: np.ndarray, scheme: str = "two-way") -> np.ndarray:
    """(B, M) integer weights of every trial (trial order) under identity counts (B, I); scheme: see SCHEMES."""
    counts = np.asarray(counts)
    c = counts.astype(_count_dtype(counts, design.num_trials))
    return side_weights(c, design.id_a, design.id_b, scheme)


@dataclasses.dataclass
class BootMetrics:
    """Per-draw metrics of one score set: eer (B,), min_dcf {p_target: (B,)}."""

    eer: np.ndarray
    min_dcf: dict[float, np.ndarray]


def bootstrap_metrics(score_sets: Mapping[K, tuple[np.ndarray, np.ndarray]], design: ListDesign,
                      counts: np.ndarray, p_targets: Sequence[float] = P_TARGETS, c_miss: float = 1.0,
                      c_fa: float = 1.0, workers: int = 2, scheme: str = DEFAULT_SCHEME) -> dict[K, BootMetrics]:
    """Per-draw EER/minDCF of every score set {key: (scores (M,), labels (M,))} of one trial list (all in the
    design's trial order) under the SAME identity draws counts (B, I) -- keys are e.g. (system, seed).
    scheme: "per-identity" (m over the trial's distinct identities), "two-way" (m(a) m(b)) or "one-way" (m(a)).
    `workers` threads share the score sets (numpy releases the GIL in the heavy gathers and sums)."""
    from concurrent.futures import ThreadPoolExecutor

    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != design.num_identities:
        raise ValueError(f"counts must be (draws, {design.num_identities}), got shape {counts.shape}")
    if scheme not in SCHEMES:
        raise ValueError(f"bootstrap scheme must be one of {sorted(SCHEMES)}, got {scheme!r}")
    prepared = {}
    for key, (scores, labels) in score_sets.items():
        if len(scores) != design.num_trials:
            raise InputValueError(f"{key}: {len(scores)} scores for a list of {design.num_trials} trials")
        st = sort_trials(scores, labels)
        # identities of both sides of the targets and nontargets in this system's sorted order
        prepared[key] = (st, design.id_a[st.target_order], design.id_b[st.target_order],
                         design.id_a[st.nontarget_order], design.id_b[st.nontarget_order])
    b = counts.shape[0]
    out = {key: BootMetrics(np.empty(b), {float(p): np.empty(b) for p in p_targets}) for key in prepared}
    step = max(1, _BLOCK_ELEMENTS // max(1, design.num_trials))
    c_all = counts.astype(_count_dtype(counts, design.num_trials))

    def run(key: K) -> None:
        """Every block of draws of one score set."""
        st, ta, tb, na, nb = prepared[key]
        for lo in range(0, b, step):
            c = c_all[lo:lo + step]  # (b, I): small, stays in cache while the weights are gathered from it
            w_t = side_weights(c, ta, tb, scheme)
            w_n = side_weights(c, na, nb, scheme)
            eer, dcf = sorted_masses(st, w_t, w_n, p_targets, c_miss, c_fa)
            out[key].eer[lo:lo + step] = eer
            for p, v in dcf.items():
                out[key].min_dcf[p][lo:lo + step] = v

    if workers > 1 and len(prepared) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, prepared))  # list(): re-raises a worker's exception here
    else:
        for key in prepared:
            run(key)
    return out


def bootstrap_list(systems: Mapping[str, Mapping[int, tuple[np.ndarray, np.ndarray]]], design: ListDesign,
                   num_draws: int, rng: np.random.Generator, p_targets: Sequence[float] = P_TARGETS,
                   workers: int = 2, scheme: str = DEFAULT_SCHEME
                   ) -> tuple[dict[str, dict[int, BootMetrics]], np.ndarray]:
    """Bootstrap every system {name: {seed: (scores, labels)}} of one list under one shared set of identity
    draws; returns ({name: {seed: BootMetrics}}, the counts (B, I) used)."""
    counts = draw_identity_counts(design.num_identities, num_draws, rng)
    flat = {(name, seed): sl for name, per_seed in systems.items() for seed, sl in per_seed.items()}
    boot = bootstrap_metrics(flat, design, counts, p_targets, workers=workers, scheme=scheme)
    out: dict[str, dict[int, BootMetrics]] = {}
    for (name, seed), bm in boot.items():
        out.setdefault(name, {})[seed] = bm
    return out, counts


def metric_rows(per_seed: Mapping[int, BootMetrics], metric: str, p_target: float | None = None
                ) -> tuple[list[int], np.ndarray]:
    """Seeds (sorted) and the (S, B) per-draw values of 'eer' or 'min_dcf' (at p_target) of one system."""
    seeds = sorted(per_seed)
    if metric == "eer":
        rows = [per_seed[s].eer for s in seeds]
    else:
        rows = [per_seed[s].min_dcf[float(p_target)] for s in seeds]
    return seeds, np.vstack(rows) if rows else np.empty((0, 0))
