"""Identity bootstrap: weighted metrics against the compiled scorer, interval coverage of a known EER, paired
verdicts, Holm-Bonferroni."""
import numpy as np
import pytest
from scipy.stats import norm

from wespeaker_avkd.analysis.bootstrap import (
    ListDesign,
    bootstrap_list,
    bootstrap_metrics,
    draw_identity_counts,
    list_design,
    list_rng,
    metric_rows,
    sort_trials,
    trial_weights,
    weighted_metrics,
)
from wespeaker_avkd.analysis.summaries import (
    apply_holm,
    bootstrap_p_value,
    holm_reject,
    paired_difference,
    summarise_system,
    verdict_of,
)
from wespeaker_avkd.scoring import compute_metrics

P = (0.01, 0.05, 0.3, 0.5, 0.7)


def test_weighted_metrics_equal_scorer_on_repeated_scores():
    """Integer weights == the compiled scorer on the score array with every trial repeated by its weight,
    ties (several score values only) and zero weights included."""
    rng = np.random.default_rng(0)
    checked = 0
    for case in range(300):
        m = int(rng.integers(2, 60))
        labels = rng.integers(0, 2, m)
        labels[:2] = (1, 0)
        if case % 3 == 0:
            scores = rng.integers(0, 5, m).astype(np.float32) * 0.25  # heavy ties, mixed labels in a tie
        else:
            scores = (rng.normal(size=m) + labels).astype(np.float32)
        if case % 5 == 0:
            scores[: m // 2] = scores[0]
        weights = rng.integers(0, 4, (3, m))
        st = sort_trials(scores, labels)
        eer, dcf = weighted_metrics(st, weights, P)
        for row, w in enumerate(weights):
            if w[labels == 1].sum() == 0 or w[labels == 0].sum() == 0:
                assert np.isnan(eer[row])
                continue
            ref = compute_metrics(np.repeat(scores, w), np.repeat(labels, w), P)
            assert eer[row] == pytest.approx(ref.eer, abs=1e-12), (case, row)
            for p in P:
                assert dcf[p][row] == pytest.approx(ref.min_dcf[repr(p)], abs=1e-12), (case, row, p)
            checked += 1
    assert checked > 700


def test_weights_and_unit_draw():
    """Trial weight = m(a) m(b); a draw that picks every identity once reproduces the full-list metrics."""
    design = ListDesign(["x", "y", "z"], np.array([0, 0, 1, 2]), np.array([0, 1, 2, 2]))
    w = trial_weights(design, np.array([[2, 0, 1], [1, 1, 1]]))
    assert w.tolist() == [[4, 0, 0, 1], [1, 1, 1, 1]]
    rng = np.random.default_rng(1)
    scores, labels, design = _synthetic(rng, 30, 0.1, 0.2)
    out = bootstrap_metrics({"s": (scores, labels)}, design, np.ones((2, design.num_identities), dtype=int))
    ref = compute_metrics(scores, labels)
    assert out["s"].eer == pytest.approx([ref.eer] * 2, abs=1e-12)
    assert out["s"].min_dcf[0.01] == pytest.approx([ref.min_dcf["0.01"]] * 2, abs=1e-12)
    # threads over score sets give the serial result
    counts = draw_identity_counts(design.num_identities, 50, rng)
    sets = {k: (scores + k, labels) for k in range(3)}
    serial = bootstrap_metrics(sets, design, counts, workers=1)
    threaded = bootstrap_metrics(sets, design, counts, workers=2)
    assert all((serial[k].eer == threaded[k].eer).all() for k in sets)


def test_list_design_maps_utterances_to_identities():
    design = list_design(["a1", "a2", "b1"], ["a2", "b1", "c1"], {"a1": "A", "a2": "A", "b1": "B", "c1": "C"})
    assert design.identities == ["A", "B", "C"]
    assert design.id_a.tolist() == [0, 0, 1] and design.id_b.tolist() == [0, 1, 2]
    with pytest.raises(KeyError, match="'zz' .trial 2. has no identity"):
        list_design(["a1", "zz"], ["a1", "a1"], {"a1": "A"}, where="E")
    counts = draw_identity_counts(5, 4, list_rng(0, "E"))
    assert counts.shape == (4, 5) and (counts.sum(axis=1) == 5).all()
    assert (draw_identity_counts(5, 4, list_rng(0, "E")) == counts).all()  # reproducible per list name


# --------------------------------------------------------------------------------------------------------------
# synthetic systems with a known population EER
SIGMA = 1.0


def _trial_list(rng, num_ids, trials_per_id=20):
    """(labels (M,), design): every identity enrolls trials_per_id targets and as many nontargets against a
    random other identity."""
    id_a = np.repeat(np.arange(num_ids), 2 * trials_per_id)
    labels = np.tile(np.repeat([1, 0], trials_per_id), num_ids).astype(np.int8)
    other = (id_a + rng.integers(1, num_ids, id_a.size)) % num_ids
    id_b = np.where(labels == 1, id_a, other)
    return labels, ListDesign([f"id{i}" for i in range(num_ids)], id_a, id_b)


def _scores(rng, labels, design, eer, tau, effects):
    """Scores of a two-way identity model whose marginal target and nontarget scores are N(gap, 1) and N(0, 1),
    so the population EER is Phi(-gap / 2) = `eer`. Identity effects u_i ~ N(0, tau^2) enter every trial of
    identity i (target u_a + u_a + e, nontarget u_a + u_b + e); the noise variance makes up the rest of 1."""
    gap = -2.0 * SIGMA * norm.ppf(eer)
    noise_var = np.where(labels == 1, SIGMA ** 2 - 4 * tau ** 2, SIGMA ** 2 - 2 * tau ** 2)
    scores = gap * labels + effects[design.id_a] + effects[design.id_b] + rng.normal(size=labels.size) * np.sqrt(
        noise_var)
    return scores.astype(np.float32)


def _synthetic(rng, num_ids, eer, tau):
    """(scores, labels, design) of one synthetic system on a fresh list of num_ids identities."""
    labels, design = _trial_list(rng, num_ids)
    return _scores(rng, labels, design, eer, tau, rng.normal(scale=tau, size=num_ids)), labels, design


def test_interval_covers_true_eer():
    """The 95 % identity-bootstrap interval covers the population EER in >= 85 % of 100 repetitions, for both
    schemes; resampling trials instead (the wrong unit) covers far less.

    Nominal coverage is 95 %. On this design (every identity enrolls its own targets and nontargets against
    random partners) the two-way interval is conservative: measured ~1.6x the true sampling spread, coverage
    ~99 %; the one-way interval is about right (~95 %). With 100 repetitions the binomial sd is ~2.5 points, so
    85 % leaves room for a slightly short interval without accepting a broken one. The width check pins the
    measured conservativeness of the two-way scheme, so a change of either scheme shows up here; the
    per-identity scheme (the default: a target weighs m(a), not m(a)^2) lies between the two."""
    rng = np.random.default_rng(2024)
    true_eer, tau = 0.10, 0.35
    covered = {"two-way": 0, "one-way": 0, "per-identity": 0, "trials": 0}
    width = {"two-way": [], "one-way": [], "per-identity": []}
    for rep in range(100):
        scores, labels, design = _synthetic(rng, 60, true_eer, tau)
        counts = draw_identity_counts(design.num_identities, 150, rng)
        point = compute_metrics(scores, labels).eer
        for scheme in ("two-way", "one-way", "per-identity"):
            boot = bootstrap_metrics({"s": (scores, labels)}, design, counts, p_targets=(0.01,), workers=1,
                                     scheme=scheme)["s"].eer
            s = summarise_system([1], [point], boot[None, :])
            covered[scheme] += s.ci_low <= true_eer <= s.ci_high
            width[scheme].append(s.ci_high - s.ci_low)
        # resampling trials: weight = how often a trial was drawn
        tboot = weighted_metrics(sort_trials(scores, labels), draw_identity_counts(len(scores), 150, rng), (0.01,))[0]
        lo, hi = np.percentile(tboot, [2.5, 97.5])
        covered["trials"] += lo <= true_eer <= hi
    assert covered["two-way"] >= 85 and covered["one-way"] >= 85 and covered["per-identity"] >= 85, covered
    assert np.mean(width["one-way"]) < np.mean(width["per-identity"]) < np.mean(width["two-way"]), width
    assert covered["trials"] < min(covered["two-way"], covered["one-way"]) - 10, covered
    assert np.mean(width["two-way"]) > 1.3 * np.mean(width["one-way"]), (np.mean(width["two-way"]),
                                                                        np.mean(width["one-way"]))


def _paired_run(rng, student_eer, baseline_eer, seeds=(1, 2, 3), num_ids=60, tau=0.35):
    """Student and baseline scored on one list (shared identity effects: the identities' difficulty), with
    independent noise per system and seed; the paired summary of student - baseline EER."""
    labels, design = _trial_list(rng, num_ids)
    u = rng.normal(scale=tau, size=num_ids)
    systems, points = {}, {}
    for name, eer in (("student", student_eer), ("baseline", baseline_eer)):
        for seed in seeds:
            scores = _scores(rng, labels, design, eer, tau, u)
            systems.setdefault(name, {})[seed] = (scores, labels)
            points.setdefault(name, []).append(compute_metrics(scores, labels).eer)
    boot, _ = bootstrap_list(systems, design, 200, rng, p_targets=(0.01,))
    sd, sb = metric_rows(boot["student"], "eer")[1], metric_rows(boot["baseline"], "eer")[1]
    return paired_difference(list(seeds), points["student"], points["baseline"], sd, sb)


def test_paired_null_gives_no_difference():
    """Two independent draws of the same system: 'no significant difference' in >= 85 % of 100 repetitions
    (nominal 95 %; same slack as the coverage test)."""
    rng = np.random.default_rng(7)
    verdicts = [_paired_run(rng, 0.10, 0.10).verdict for _ in range(100)]
    assert verdicts.count("no significant difference") >= 85, verdicts.count("no significant difference")


def test_clearly_better_and_worse():
    rng = np.random.default_rng(8)
    better = _paired_run(rng, 0.04, 0.12)
    assert better.verdict == "better" and better.ci_high < 0 and better.mean_diff < -0.05
    assert len(better.per_seed_diff) == 3 and better.p_value < 0.05
    worse = _paired_run(rng, 0.12, 0.04)
    assert worse.verdict == "worse" and worse.ci_low > 0


def test_summary_over_seeds():
    s = summarise_system([1, 2, 3], [0.1, 0.2, 0.3], np.array([[0.1, 0.0, 0.2], [0.2, 0.1, 0.3], [0.3, 0.2, 0.4]]))
    assert s.mean == pytest.approx(0.2) and s.std == pytest.approx(0.1)
    # interval of the per-draw mean over seeds: draws' means are 0.2, 0.1, 0.3
    assert s.ci_low == pytest.approx(np.percentile([0.2, 0.1, 0.3], 2.5))
    assert np.isnan(summarise_system([1], [0.1], np.array([[0.1, 0.2]])).std)


def test_p_value_verdict_and_holm():
    assert bootstrap_p_value(np.array([-3.0, -2.0, -1.0, 1.0])) == pytest.approx(0.5)
    assert bootstrap_p_value(np.array([-1.0] * 10)) == 0.0
    assert verdict_of(-2.0, -0.1) == "better" and verdict_of(0.1, 2.0) == "worse"
    assert verdict_of(-1.0, 1.0) == "no significant difference"
    # Holm: sorted p 0.01 <= 0.05/4, 0.02 > 0.05/3 -> stop: only the first rejected
    assert holm_reject([0.02, 0.01, 0.04, 0.5]) == [False, True, False, False]
    assert holm_reject([0.001, 0.012, 0.02, 0.03]) == [True, True, True, True]
    two_negative = np.array([[0.1] * 98 + [-0.1] * 2])  # p = 0.04: interval above 0, not past Holm
    cmp = [paired_difference([1], [0.1], [0.2], np.full((1, 100), -0.1), np.zeros((1, 100))),
           paired_difference([1], [0.2], [0.1], two_negative, np.zeros((1, 100))),
           paired_difference([1], [0.2], [0.2], np.zeros((1, 100)), np.zeros((1, 100)))]
    apply_holm(cmp)
    assert [c.p_value for c in cmp] == pytest.approx([0.0, 0.04, 1.0])
    assert [c.verdict for c in cmp] == ["better", "worse", "no significant difference"]
    # Holm over 3: 0 <= 0.05/3 rejected, 0.04 > 0.05/2 stops
    assert [c.holm_verdict for c in cmp] == ["better"] + ["no significant difference"] * 2
