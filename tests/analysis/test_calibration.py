"""Calibration of the identity bootstrap on synthetic lists with a known population EER: the list design, the
coverage of the calibrated (per-identity) scheme near 95 %, the over-wide two-way and the over-narrow trial
resampling, and the choice rule."""
import numpy as np
import pytest

from wespeaker_avkd.analysis import bootstrap, calibration


def test_simulated_list_design():
    """Targets: every utterance pair within an identity; nontargets: across identities, 3 per utterance."""
    pop = calibration.Population(utts_per_id=4, nontargets_per_utt=3)
    design, scores, labels = calibration.simulate_list(pop, 10, np.random.default_rng(0))
    target = labels == 1
    assert target.sum() == 10 * 6 and (~target).sum() == 10 * 4 * 3
    assert (design.id_a[target] == design.id_b[target]).all() and (design.id_a[~target] != design.id_b[~target]).all()
    assert scores[target].mean() > scores[~target].mean() + 1.5


def test_per_identity_weights():
    """per-identity: m(a) for a target (a = b), m(a) m(b) for a nontarget; two-way m(a) m(b); one-way m(a)."""
    design = bootstrap.ListDesign(["x", "y"], np.array([0, 0, 1]), np.array([0, 1, 1]))
    counts = np.array([[2, 0], [0, 2], [1, 1]])
    assert bootstrap.trial_weights(design, counts, "per-identity").tolist() == [[2, 0, 0], [0, 0, 2], [1, 1, 1]]
    assert bootstrap.trial_weights(design, counts, "two-way").tolist() == [[4, 0, 0], [0, 0, 4], [1, 1, 1]]
    assert bootstrap.trial_weights(design, counts, "one-way").tolist() == [[2, 2, 0], [0, 0, 2], [1, 1, 1]]
    with pytest.raises(ValueError, match="bootstrap scheme"):
        bootstrap.trial_weights(design, counts, "three-way")


def test_calibrated_scheme_covers_near_nominal():
    """Small lists, few repetitions: the per-identity interval covers the true EER near 95 % with about the true
    spread; two-way is ~1.5x too wide, trial resampling too narrow; the rule picks per-identity."""
    r = calibration.coverage(calibration.Population(), num_ids=50, num_lists=60, num_draws=200, seed=3)
    s = r["schemes"]
    assert s["per-identity"]["coverage"] >= 0.85, s
    assert 0.95 <= s["per-identity"]["width_ratio"] <= 1.4, s
    assert s["two-way"]["width_ratio"] > 1.25 * s["per-identity"]["width_ratio"], s
    assert s["trials"]["width_ratio"] < 0.8 and s["trials"]["coverage"] < s["per-identity"]["coverage"], s
    assert abs(r["mean_list_eer"] - r["true_eer"]) < 2 * r["sd_over_lists"]
    assert calibration.calibrated_scheme(r) == "per-identity"


def test_choice_rule():
    """Under-covering schemes (narrow or below the Monte-Carlo floor) are never chosen while another is fine."""
    def result(cov):
        return {"num_lists": 400, "schemes": {k: {"coverage": c, "width_ratio": w} for k, (c, w) in cov.items()}}

    assert calibration.calibrated_scheme(result({"per-identity": (0.97, 1.2), "one-way": (0.94, 0.9),
                                                 "two-way": (0.99, 1.6)})) == "per-identity"
    assert calibration.calibrated_scheme(result({"per-identity": (0.97, 1.2), "one-way": (0.95, 1.02),
                                                 "two-way": (0.99, 1.6)})) == "one-way"
    assert calibration.calibrated_scheme(result({"per-identity": (0.80, 0.7), "one-way": (0.70, 0.6),
                                                 "two-way": (0.90, 0.9)})) == "two-way"


@pytest.mark.slow
def test_calibration_at_eval_size():
    """Eval-sized lists (300 identities), more repetitions: per-identity covers 93-99 %."""
    r = calibration.coverage(calibration.Population(), num_ids=300, num_lists=200, num_draws=400, seed=5)
    assert 0.93 <= r["schemes"]["per-identity"]["coverage"] <= 0.99, r["schemes"]
    assert calibration.calibrated_scheme(r) == "per-identity"
