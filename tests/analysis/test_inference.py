"""Inference about the method: the Student-t distribution against scipy, the seed-plus-identity t interval,
power (MDE, seeds needed), Holm verdicts that do not depend on the bootstrap seed, and a synthetic seed-level
shift that the identity-only method mistakes for a difference while the method-level test does not."""
import math

import numpy as np
import pytest
from scipy import stats

from wespeaker_avkd.analysis import bootstrap, power, summaries, tdist


@pytest.mark.parametrize("df", [1.0, 1.5, 2.7, 5.0, 30.0, 300.0, 1e5])
def test_t_distribution_matches_scipy(df):
    for x in (-40.0, -3.0, -0.3, 0.0, 0.5, 2.0, 10.0):
        assert tdist.t_cdf(x, df) == pytest.approx(stats.t.cdf(x, df), rel=1e-8, abs=1e-300)
        assert tdist.t_two_sided_p(x, df) == pytest.approx(2 * stats.t.sf(abs(x), df), rel=1e-8)
    for q in (0.025, 0.5, 0.8, 0.975, 0.9993):
        assert tdist.t_quantile(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-8, abs=1e-9)
    for a, b, x in ((0.5, 0.5, 0.3), (df / 2, 0.5, 0.9), (3.0, 7.0, 0.01)):
        assert tdist.betainc(a, b, x) == pytest.approx(stats.beta.cdf(x, a, b), rel=1e-9)
    assert tdist.t_quantile(0.975, math.inf) == pytest.approx(stats.norm.ppf(0.975), rel=1e-9)
    with pytest.raises(ValueError, match="degrees of freedom"):
        tdist.t_cdf(1.0, 0.0)


def test_method_difference_formulas():
    """SE^2 = V_id + s^2/n, Welch df, t interval and p, against a direct computation with scipy."""
    rng = np.random.default_rng(1)
    student, baseline = np.array([0.10, 0.13, 0.09]), np.array([0.12, 0.12, 0.14])
    sb, bb = 0.01 * rng.normal(size=(3, 500)) + student[:, None], 0.01 * rng.normal(size=(3, 500)) + baseline[:, None]
    c = summaries.method_difference([1, 2, 3], student, baseline, sb, bb)
    d = student - baseline
    v_id, s2 = (sb - bb).mean(axis=0).var(ddof=1), d.var(ddof=1)
    se = math.sqrt(v_id + s2 / 3)
    df = 2 * (se ** 2 / (s2 / 3)) ** 2
    assert (c.se, c.df, c.v_id, c.seed_var) == pytest.approx((se, df, v_id, s2))
    half = stats.t.ppf(0.975, df) * se
    assert (c.ci_low, c.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert c.p_value == pytest.approx(2 * stats.t.sf(abs(d.mean()) / se, df))
    assert c.mde == pytest.approx((stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df)) * se)
    assert c.method == summaries.METHOD_T
    nan = summaries.method_difference([1, 2], student[:2], baseline[:2], np.full((2, 5), np.nan), bb[:2, :5])
    assert np.isnan(nan.p_value) and nan.verdict == "no significant difference"
    one = summaries.method_difference([1], student[:1], baseline[:1], sb[:1], bb[:1])
    assert one.method == summaries.METHOD_ONE_SEED and one.mean_diff == pytest.approx(d[0])


def test_seeds_needed():
    """More seed variance needs more seeds; the returned n is the first whose MDE reaches the effect."""
    n = power.seeds_needed(seed_var=0.03 ** 2, v_id=0.004 ** 2, effect=0.02)
    assert n is not None and power.seeds_mde(0.03 ** 2, 0.004 ** 2, n) <= 0.02 < power.seeds_mde(
        0.03 ** 2, 0.004 ** 2, n - 1)
    assert power.seeds_needed(0.05 ** 2, 0.004 ** 2, 0.02) > n
    assert power.seeds_needed(0.03 ** 2, 0.02 ** 2, 0.02) is None  # identity noise alone exceeds the effect
    # with plenty of seeds the MDE approaches the normal one: (1.96 + 0.84) SE
    se = math.sqrt(0.004 ** 2 + 0.03 ** 2 / 50)
    assert power.seeds_mde(0.03 ** 2, 0.004 ** 2, 50) == pytest.approx(2.8016 * se, rel=0.03)


# ---------------------------------------------------------------------------------------------------------------
# synthetic lists: identities with several utterances, targets within identity, nontargets across
NUM_IDS, UTTS = 40, 4


def _design(rng):
    """(design, labels, identity effect per trial): all target pairs within identity, 3 nontargets per utt."""
    spk = np.repeat(np.arange(NUM_IDS), UTTS)
    a, b, labels = [], [], []
    for u in range(len(spk)):
        for v in range(u + 1, (spk[u] + 1) * UTTS):
            a.append(spk[u]), b.append(spk[v]), labels.append(1)
        for v in rng.choice(np.flatnonzero(spk != spk[u]), 3, replace=False):
            a.append(spk[u]), b.append(spk[v]), labels.append(0)
    design = bootstrap.ListDesign([str(i) for i in range(NUM_IDS)], np.array(a), np.array(b))
    return design, np.array(labels)


def _family(rng, design, labels, gaps, seed_sd, num_seeds=3):
    """{system: {seed: (scores, labels)}}: baseline and one student per gap shift; each trained seed gets its own
    random gap offset (sd seed_sd); systems share most of the per-trial noise (they score the same trials)."""
    id_hard = rng.normal(0, 0.7, NUM_IDS)
    shared = rng.normal(size=len(labels)) + id_hard[design.id_a] * labels
    sets = {}
    for k, shift in enumerate([0.0, *gaps]):
        for s in range(1, num_seeds + 1):
            gap = 2.0 + shift + rng.normal(0, seed_sd)
            sets.setdefault(f"sys{k}", {})[s] = (gap * labels + shared + 0.3 * rng.normal(size=len(labels)), labels)
    return sets


def _comparisons(sets, design, boot_seed, method, num_draws=200):
    """Every system but sys0 against sys0, under one set of shared identity draws."""
    boot, _ = bootstrap.bootstrap_list(sets, design, num_draws, np.random.default_rng(boot_seed), workers=1)
    full = {n: {s: float(bootstrap.weighted_metrics(bootstrap.sort_trials(*sl), np.ones(len(sl[0])))[0][0])
                for s, sl in per.items()} for n, per in sets.items()}
    out = []
    for n in sorted(sets)[1:]:
        seeds = sorted(sets[n])
        out.append(method(seeds, [full[n][s] for s in seeds], [full["sys0"][s] for s in seeds],
                          bootstrap.metric_rows(boot[n], "eer")[1], bootstrap.metric_rows(boot["sys0"], "eer")[1]))
    return out


def test_seed_level_shift_fools_identity_only_not_method_test():
    """No true difference between methods, but every trained seed lands elsewhere: the identity-only interval
    over fixed models calls a difference far more often than 5 %, the seed-plus-identity t test near 5 %."""
    rng = np.random.default_rng(7)
    design, labels = _design(rng)
    old, new = [], []
    for rep in range(150):
        sets = _family(rng, design, labels, gaps=[0.0], seed_sd=0.35)
        old += [c.verdict != "no significant difference" for c in
                _comparisons(sets, design, rep, summaries.paired_difference, 100)]
        new += [c.verdict != "no significant difference" for c in
                _comparisons(sets, design, rep, summaries.method_difference, 100)]
    assert np.mean(old) > 0.3, np.mean(old)
    assert np.mean(new) <= 0.10, np.mean(new)


def test_holm_verdicts_do_not_depend_on_the_bootstrap_seed():
    """A family with clear, null and moderate effects: identical Holm verdicts for three bootstrap seeds."""
    rng = np.random.default_rng(3)
    design, labels = _design(rng)
    sets = _family(rng, design, labels, gaps=[0.0, 0.0, 1.5, -1.5, 0.8, 0.3, 0.0], seed_sd=0.1, num_seeds=4)
    verdicts, p_values = [], []
    for boot_seed in (0, 1, 2):
        family = _comparisons(sets, design, boot_seed, summaries.method_difference)
        summaries.apply_holm(family)
        verdicts.append([c.holm_verdict for c in family])
        p_values.append([c.p_value for c in family])
        assert all(np.isfinite(c.mde_holm) and c.mde_holm > c.mde for c in family)
    assert verdicts[0] == verdicts[1] == verdicts[2]
    assert {"better", "no significant difference"} <= set(verdicts[0])
    # p-values are continuous: they differ across bootstrap seeds only by the Monte-Carlo noise of V_id
    assert np.allclose(p_values[0], p_values[1], rtol=0.5, atol=1e-3)
