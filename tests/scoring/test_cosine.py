"""Cosine scores (with/without mean subtraction), dtype refusal, zero-norm/NaN errors and AS-norm vs numpy."""
import numpy as np
import pytest

from wespeaker_avkd import _scorer
from wespeaker_avkd.scoring import KeyIndex, ScoringError, as_norm, score_trials

from .references import as_norm_numpy, cosine_numpy


def table(n=300, d=37, seed=0, offset=0.5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32) + offset


def pairs(n, m, seed=1):
    rng = np.random.default_rng(seed)
    return (np.sort(rng.integers(0, n, m)).astype(np.int32), rng.integers(0, n, m).astype(np.int32))


@pytest.mark.parametrize("d", [1, 16, 37, 512])
@pytest.mark.parametrize("with_mean", [False, True])
def test_cosine_matches_float64_numpy(d, with_mean):
    emb = table(d=d)
    e, t = pairs(len(emb), 5000)
    mean = emb.mean(axis=0) if with_mean else None
    got = _scorer.cosine_scores(emb, e, t, mean)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, cosine_numpy(emb, e, t, mean), atol=1e-5, rtol=0)


def test_thread_counts_give_identical_scores():
    emb = table(d=64)
    e, t = pairs(len(emb), 50000)
    one = _scorer.cosine_scores(emb, e, t, None, None, 1)
    two = _scorer.cosine_scores(emb, e, t, None, None, 2)
    assert np.array_equal(one, two)


def test_wrong_dtype_or_layout_is_refused_not_copied():
    emb = table()
    e, t = pairs(len(emb), 10)
    with pytest.raises(TypeError, match="emb must be a C-contiguous float32 .* got dtype float64"):
        _scorer.cosine_scores(emb.astype(np.float64), e, t)
    with pytest.raises(TypeError, match="C-contiguous"):
        _scorer.cosine_scores(np.asfortranarray(emb), e, t)
    with pytest.raises(TypeError, match="enroll must be a C-contiguous int32"):
        _scorer.cosine_scores(emb, e.astype(np.int64), t)


def test_score_trials_refuses_float64_before_parsing(tmp_path):
    trials = write_trials(tmp_path / "t", ["a b target"])
    with pytest.raises(TypeError, match="C-contiguous float32 array, got float64; convert explicitly"):
        score_trials(trials, ["a", "b"], table(n=2).astype(np.float64))


def test_index_out_of_range():
    emb = table(n=10)
    with pytest.raises(ScoringError, match=r"trial 1 refers to embedding row 10 outside \[0, 10\)"):
        _scorer.cosine_scores(emb, np.array([0, 10], np.int32), np.array([1, 2], np.int32))


def write_trials(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def test_zero_norm_embedding_is_named(tmp_path):
    emb = table(n=4, d=8)
    emb[2] = 0.0
    keys = ["a", "b", "c", "d"]
    trials = write_trials(tmp_path / "t", ["a b target", "a c nontarget"])
    with pytest.raises(ScoringError, match=r"t: trial 1: embedding row 2 \('c'\) has zero norm"):
        score_trials(trials, keys, emb)
    # after mean subtraction: a row equal to the mean
    emb = table(n=4, d=8)
    with pytest.raises(ScoringError, match=r"\('b'\) has zero norm after mean subtraction"):
        score_trials(trials, keys, emb, mean_vec=emb[1].copy())


def test_nan_embedding_is_named(tmp_path):
    emb = table(n=4, d=8)
    emb[3, 5] = np.nan
    trials = write_trials(tmp_path / "t", ["a b target"])
    with pytest.raises(ScoringError, match=r"embedding row 3 \('d'\) contains NaN or Inf"):
        score_trials(trials, ["a", "b", "c", "d"], emb)


def test_mean_vector_dimension_is_checked(tmp_path):
    emb = table(n=4, d=8)
    trials = write_trials(tmp_path / "t", ["a b target"])
    with pytest.raises(ScoringError, match="mean vector has dimension 7, the embeddings 8"):
        score_trials(trials, ["a", "b", "c", "d"], emb, mean_vec=np.zeros(7))


def test_keys_must_match_rows(tmp_path):
    trials = write_trials(tmp_path / "t", ["a b target"])
    with pytest.raises(ScoringError, match="3 keys for 4 embedding rows"):
        score_trials(trials, ["a", "b", "c"], table(n=4))
    with pytest.raises(ScoringError, match="duplicate embedding key 'a'"):
        KeyIndex(["a", "b", "a"])


@pytest.mark.parametrize("top_k,with_mean", [(5, False), (20, True), (1000, True)])
def test_as_norm_matches_numpy(top_k, with_mean):
    emb = table(n=120, d=24, seed=3)
    cohort = table(n=40, d=24, seed=4)
    e, t = pairs(len(emb), 800, seed=5)
    mean = emb.mean(axis=0) if with_mean else None
    s = _scorer.cosine_scores(emb, e, t, mean)
    got = as_norm(s, e, t, emb, cohort, top_k, mean)
    want = as_norm_numpy(emb, e, t, cohort, min(top_k, len(cohort)), mean)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-5)


def test_as_norm_bad_inputs():
    emb = table(n=10, d=8)
    e, t = pairs(10, 5)
    s = _scorer.cosine_scores(emb, e, t)
    with pytest.raises(ScoringError, match="cohort dimension 7 differs"):
        as_norm(s, e, t, emb, table(n=5, d=7), 3)
    with pytest.raises(ScoringError, match="top_k must be positive"):
        as_norm(s, e, t, emb, table(n=5, d=8), 0)
