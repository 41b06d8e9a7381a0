"""EER (three definitions), minDCF and DET points against literal ports and independent references."""
import numpy as np
import pytest

from wespeaker_avkd.scoring import ScoringError, compute_metrics, det_curve

from .references import eer_crossing_numpy, eer_kaldi_port, eer_rocch_port, eer_voxsrc, min_dcf_port

WORKED_TARGETS = [.9, .8, .7, .55, .4]
WORKED_NONTARGETS = [.6, .5, .45, .3, .2, .1, 0, -.1]


def random_trials(seed: int, n: int = 3000, ties: bool = False, target_rate: float = 0.2):
    """Scores (float32) and labels; with ties the scores are rounded to 2 decimals (heavy ties)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < target_rate).astype(np.int8)
    labels[:2] = [0, 1]
    scores = rng.normal(0, 1, n) + 1.5 * labels
    if ties:
        scores = np.round(scores, 1)
    return scores.astype(np.float32), labels


def split(scores, labels):
    return scores[labels == 1], scores[labels == 0]


def test_worked_example_of_metrics_md():
    scores = np.array(WORKED_TARGETS + WORKED_NONTARGETS, np.float32)
    labels = np.array([1] * 5 + [0] * 8, np.int8)
    m = compute_metrics(scores, labels)
    assert m.eer == pytest.approx(0.20, abs=1e-12)
    assert m.eer_kaldi == pytest.approx(0.20, abs=1e-7)
    assert m.eer_rocch == pytest.approx(1 / 6, abs=1e-12)
    assert (m.num_trials, m.num_target, m.num_nontarget) == (13, 5, 8)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_crossing_matches_numpy_and_voxsrc(seed, ties):
    scores, labels = random_trials(seed, ties=ties, target_rate=[0.05, 0.2, 0.5][seed % 3])
    m = compute_metrics(scores, labels)
    assert m.eer == pytest.approx(eer_crossing_numpy(scores, labels), abs=1e-9)
    assert m.eer == pytest.approx(eer_voxsrc(scores, labels), abs=1e-6)


def test_crossing_is_order_independent_with_ties():
    scores, labels = random_trials(7, ties=True)
    perm = np.random.default_rng(1).permutation(len(scores))
    assert compute_metrics(scores[perm], labels[perm]).eer == compute_metrics(scores, labels).eer


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_kaldi_eer_is_bit_exact(seed, ties):
    scores, labels = random_trials(100 + seed, n=[50, 800, 3000][seed % 3], ties=ties)
    m = compute_metrics(scores, labels)
    eer, threshold = eer_kaldi_port(*split(scores, labels))
    assert m.eer_kaldi == eer  # float32 value, exactly
    assert m.eer_kaldi_threshold == threshold


def test_kaldi_eer_without_ties_is_ceil_of_crossing():
    scores, labels = random_trials(11, n=2000)
    assert len(np.unique(scores)) == len(scores)
    m = compute_metrics(scores, labels)
    nt = m.num_target
    assert m.eer_kaldi == pytest.approx(np.ceil(nt * m.eer - 1e-9) / nt, abs=1e-7)


def test_kaldi_eer_when_no_position_qualifies():
    # every nontarget above every target: Kaldi falls through to (nT - 1) / nT
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.95], np.float32)
    labels = np.array([1, 1, 1, 0, 0], np.int8)
    m = compute_metrics(scores, labels)
    assert m.eer_kaldi == pytest.approx(2 / 3, abs=1e-7)
    assert m.eer_kaldi == eer_kaldi_port(*split(scores, labels))[0]
    assert m.eer == pytest.approx(1.0)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_rocch_matches_pav_reference(seed, ties):
    scores, labels = random_trials(200 + seed, n=1500, ties=ties)
    m = compute_metrics(scores, labels)
    assert m.eer_rocch == pytest.approx(eer_rocch_port(*split(scores, labels)), abs=1e-9)
    assert m.eer_rocch <= m.eer + 1e-12


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_min_dcf_matches_kaldi_port(seed, ties):
    scores, labels = random_trials(300 + seed, n=2000, ties=ties)
    costs = [(1.0, 1.0), (10.0, 1.0), (1.0, 3.0), (1.0, 1.0)][seed]
    p_targets = [0.01, 0.05, 0.001, 0.3]
    m = compute_metrics(scores, labels, p_targets, c_miss=costs[0], c_fa=costs[1])
    for p in p_targets:
        want, thr = min_dcf_port(scores, labels, p, *costs)
        assert m.min_dcf[repr(p)] == pytest.approx(want, abs=1e-12)
        assert m.min_dcf_threshold[repr(p)] == thr


def test_metrics_record_and_summary():
    scores, labels = random_trials(5)
    m = compute_metrics(scores, labels)
    d = m.to_dict()
    assert list(d) == ["num_trials", "num_target", "num_nontarget", "eer", "eer_threshold", "eer_kaldi",
                       "eer_rocch", "min_dcf"]
    assert set(d["min_dcf"]) == {"0.01", "0.05"}
    assert all(0.0 <= d[k] <= 1.0 for k in ("eer", "eer_kaldi", "eer_rocch"))
    assert "EER" in m.summary() and "minDCF(p=0.01)" in m.summary() and "\n" not in m.summary()


def test_eer_threshold_lies_where_the_rates_cross():
    scores, labels = random_trials(9, n=20000)
    m = compute_metrics(scores, labels)
    t, n = split(scores, labels)
    assert np.mean(t < m.eer_threshold) == pytest.approx(m.eer, abs=2e-3)
    assert np.mean(n >= m.eer_threshold) == pytest.approx(m.eer, abs=2e-3)


def test_det_curve_points():
    scores, labels = random_trials(3, ties=True)
    p_fa, p_miss = det_curve(scores, labels)
    assert (p_fa[0], p_miss[0], p_fa[-1], p_miss[-1]) == (1.0, 0.0, 0.0, 1.0)
    assert np.all(np.diff(p_fa) <= 0) and np.all(np.diff(p_miss) >= 0)
    assert len(p_fa) == len(np.unique(scores)) + 1
    t, n = split(scores, labels)
    thr = np.unique(scores)
    np.testing.assert_allclose(p_miss[:-1], [(t < x).mean() for x in thr], atol=1e-12)
    np.testing.assert_allclose(p_fa[:-1], [(n >= x).mean() for x in thr], atol=1e-12)


def test_labels_as_bool_and_float64_scores_are_converted():
    scores, labels = random_trials(4)
    m = compute_metrics(scores.astype(np.float64), labels.astype(bool))
    assert m.eer == compute_metrics(scores, labels).eer


@pytest.mark.parametrize("scores,labels,message", [
    ([0.1, 0.2, 0.3], [1, 1, 1], "all targets"),
    ([0.1, 0.2, 0.3], [0, 0, 0], "all nontargets"),
    ([0.1, float("nan"), 0.3], [1, 0, 0], "trial 1 is NaN"),
    ([0.1, float("inf"), 0.3], [1, 0, 0], "trial 1 is Inf"),
    ([0.1, 0.2, 0.3], [1, -1, 0], "unlabeled"),
    ([0.1, 0.2, 0.3], [1, 2, 0], "trial 1 has label 2"),
    ([], [], "no trials"),
])
def test_bad_metric_inputs(scores, labels, message):
    with pytest.raises(ScoringError, match=message):
        compute_metrics(np.array(scores, np.float32), np.array(labels, np.int8))


def test_bad_metric_parameters():
    scores, labels = random_trials(1, n=100)
    with pytest.raises(ScoringError, match="p_target must lie in"):
        compute_metrics(scores, labels, p_targets=[1.5])
    with pytest.raises(ScoringError, match="c_miss and c_fa"):
        compute_metrics(scores, labels, c_miss=0.0)
    with pytest.raises(ValueError, match="different lengths"):
        compute_metrics(scores, labels[:-1])
