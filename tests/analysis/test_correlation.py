"""PCC definitions against numpy.corrcoef, cosine distance, key matching."""
import numpy as np
import pytest

from wespeaker_avkd.analysis.correlation import agreement, cosine_distance, flattened_pcc, utterance_pcc


def test_utterance_pcc_matches_corrcoef():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 16))
    y = 0.3 * x + rng.normal(size=(7, 16))
    expected = [np.corrcoef(x[i], y[i])[0, 1] for i in range(7)]
    np.testing.assert_allclose(utterance_pcc(x, y), expected, rtol=1e-12)


def test_flattened_pcc_matches_corrcoef():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 8))
    y = x ** 2 + rng.normal(size=(5, 8))
    assert flattened_pcc(x, y) == pytest.approx(np.corrcoef(x.ravel(), y.ravel())[0, 1], rel=1e-12)


def test_cosine_distance_and_agreement():
    x = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    y = np.array([[2.0, 0.0], [1.0, 0.0], [-1.0, -1.0]])
    np.testing.assert_allclose(cosine_distance(x, y), [0.0, 1.0, 2.0], atol=1e-12)
    out = agreement((["a", "b", "c"], x), (["c", "a", "z"], y[[2, 0, 1]]))
    assert out["num_utts"] == 2 and out["cosine_distance"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="share no utterance"):
        agreement((["a"], x[:1]), (["b"], y[:1]))
