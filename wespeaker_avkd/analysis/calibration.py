"""Calibration of the identity bootstrap on synthetic trial lists with a known population EER.

A population of identities, each with random effects on its target-score mean (t_i) and nontarget-score mean
(n_i), several utterances per identity (utterance effect q_u), and trial lists built like the toy corpus's:
every target pair within an identity, each utterance against a few random utterances of other identities.
Scores: target (u, v) of identity i: mu + t_i + q_u + q_v + e; nontarget (u, v): n_i(u) + n_i(v) + q_u + q_v + e.
The true EER is that of a very large list of the same design. Many small lists are drawn; each gets a 95 %
percentile interval under every resampling scheme, and the coverage of the true EER is counted:

- "per-identity" (the report's default): trial weighted by m of each DISTINCT identity it involves, once: m(a)
  for a target (a = b), m(a) m(b) for a nontarget;
- "two-way": trial (a, b) weighted m(a) m(b) (the report's former default; a target weighs m(a)^2);
- "one-way": trial weighted m(a), the count of its ONE enrolment identity only (for a target a = b, so m(a));
- "trials": trials resampled as if independent (the naive scheme, for contrast).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from wespeaker_avkd.analysis import bootstrap

SCHEMES = ("per-identity", "one-way", "two-way", "trials")
NOMINAL = 0.95


@dataclasses.dataclass(frozen=True)
class Population:
    """Score model of the synthetic identities (standard deviations in score units)."""

    target_mean: float = 2.5
    sd_target_id: float = 0.6
    sd_nontarget_id: float = 0.3
    sd_utterance: float = 0.3
    sd_noise: float = 1.0
    utts_per_id: int = 6
    nontargets_per_utt: int = 3


def simulate_list(pop: Population, num_ids: int, rng: np.random.Generator
                  ) -> tuple[bootstrap.ListDesign, np.ndarray, np.ndarray]:
    """(design, scores (M,), labels (M,)) of one list drawn from the population."""
    spk = np.repeat(np.arange(num_ids), pop.utts_per_id)
    u, v = np.triu_indices(pop.utts_per_id, 1)
    base = np.arange(num_ids)[:, None] * pop.utts_per_id
    t_u, t_v = (base + u).ravel(), (base + v).ravel()
    n_u = np.repeat(np.arange(len(spk)), pop.nontargets_per_utt)
    offset = rng.integers(1, num_ids, size=n_u.size) * pop.utts_per_id  # another identity, any utterance
    n_v = (n_u - n_u % pop.utts_per_id + offset + rng.integers(0, pop.utts_per_id, n_u.size)) % len(spk)
    a, b = np.concatenate([t_u, n_u]), np.concatenate([t_v, n_v])
    labels = np.concatenate([np.ones(t_u.size, np.int8), np.zeros(n_u.size, np.int8)])
    t_id, n_id = rng.normal(0, pop.sd_target_id, num_ids), rng.normal(0, pop.sd_nontarget_id, num_ids)
    q = rng.normal(0, pop.sd_utterance, len(spk))
    ia, ib = spk[a], spk[b]
    mean = np.where(labels == 1, pop.target_mean + t_id[ia], n_id[ia] + n_id[ib])
    scores = mean + q[a] + q[b] + rng.normal(0, pop.sd_noise, a.size)
    return bootstrap.ListDesign([str(i) for i in range(num_ids)], ia, ib), scores, labels


def list_eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """The EER of one full list (the scorer's definition, through the bootstrap's weighted metrics)."""
    st = bootstrap.sort_trials(scores, labels)
    return float(bootstrap.weighted_metrics(st, np.ones((1, len(scores)), np.int64), ())[0][0])


def true_eer(pop: Population, rng: np.random.Generator, num_ids: int = 20_000) -> float:
    """The population EER, from one very large list."""
    _, scores, labels = simulate_list(pop, num_ids, rng)
    return list_eer(scores, labels)


def boot_eers(design: bootstrap.ListDesign, scores: np.ndarray, labels: np.ndarray, scheme: str, num_draws: int,
              rng: np.random.Generator) -> np.ndarray:
    """(B,) bootstrap EERs of one list under a scheme of SCHEMES."""
    if scheme == "trials":
        st = bootstrap.sort_trials(scores, labels)
        w = rng.multinomial(len(scores), np.full(len(scores), 1.0 / len(scores)), size=num_draws)
        return bootstrap.weighted_metrics(st, w, ())[0]
    counts = bootstrap.draw_identity_counts(design.num_identities, num_draws, rng)
    out = bootstrap.bootstrap_metrics({0: (scores, labels)}, design, counts, (), workers=1, scheme=scheme)
    return out[0].eer


def coverage(pop: Population, num_ids: int, num_lists: int, num_draws: int, seed: int = 0,
             schemes: Sequence[str] = SCHEMES, truth: float | None = None) -> dict:
    """{"true_eer", "sd_over_lists", "schemes": {scheme: {coverage, mean_boot_sd, width_ratio, ...}}}: the
    share of lists whose 95 % percentile interval holds the true EER, and the bootstrap sd over the true
    sampling sd of the list EER (width_ratio)."""
    rng = np.random.default_rng(seed)
    truth = true_eer(pop, rng) if truth is None else truth
    hits = {s: 0 for s in schemes}
    sds: dict[str, list[float]] = {s: [] for s in schemes}
    eers = []
    for _ in range(num_lists):
        design, scores, labels = simulate_list(pop, num_ids, rng)
        eers.append(list_eer(scores, labels))
        for s in schemes:
            draws = boot_eers(design, scores, labels, s, num_draws, rng)
            lo, hi = np.percentile(draws[np.isfinite(draws)], [2.5, 97.5])
            hits[s] += int(lo <= truth <= hi)
            sds[s].append(float(np.nanstd(draws, ddof=1)))
    sd_lists = float(np.std(eers, ddof=1))
    return {"true_eer": truth, "mean_list_eer": float(np.mean(eers)), "sd_over_lists": sd_lists,
            "num_ids": num_ids, "num_lists": num_lists, "num_draws": num_draws, "population": dataclasses.asdict(pop),
            "schemes": {s: {"coverage": hits[s] / num_lists, "mean_boot_sd": float(np.mean(sds[s])),
                            "width_ratio": float(np.mean(sds[s]) / sd_lists)} for s in schemes}}


def calibrated_scheme(result: dict, candidates: Sequence[str] = ("per-identity", "one-way", "two-way")) -> str:
    """The scheme that does not under-cover -- bootstrap sd at least the true sampling sd (width_ratio >= 1) and
    coverage not significantly below NOMINAL (two Monte-Carlo standard errors) -- whose coverage is nearest
    NOMINAL (ties: the narrower); the highest-covering candidate when every one under-covers."""
    r = result["num_lists"]
    floor = NOMINAL - 2.0 * np.sqrt(NOMINAL * (1 - NOMINAL) / r)
    stats = {s: result["schemes"][s] for s in candidates}
    ok = [s for s in candidates if stats[s]["coverage"] >= floor and stats[s]["width_ratio"] >= 1.0]
    if not ok:
        return max(candidates, key=lambda s: stats[s]["coverage"])
    return min(ok, key=lambda s: (abs(stats[s]["coverage"] - NOMINAL), stats[s]["width_ratio"]))
