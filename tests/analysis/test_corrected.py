"""Corrected-trials counts on a hand-made example."""
import numpy as np
import pytest

from wespeaker_avkd.analysis.corrected import align_trials, corrected_counts, decisions_correct


def test_decisions_at_threshold():
    labels = np.array([1, 1, 0, 0])
    scores = np.array([0.5, 0.2, 0.5, 0.1])
    assert decisions_correct(scores, labels, 0.5).tolist() == [True, False, False, True]  # accept at >=


def test_hand_made_counts():
    #            trial:   0    1    2    3    4    5    6    7
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    # threshold 0: baseline right on 0, 1, 4, 5; wrong on 2, 3, 6, 7
    base = np.array([1, 1, -1, -1, -1, -1, 1, 1], dtype=float)
    # student right on 0, 2, 3, 4, 6; wrong on 1, 5, 7  -> corrected {2, 3, 6}, broken {1, 5}
    student = np.array([1, -1, 1, 1, -1, 1, -1, 1], dtype=float) * 2 + 0.5
    # other baseline (threshold 0.3) right on 2, 6 and 0 -> of corrected {2, 3, 6}: 2 and 6 right
    other = np.array([0.9, 0.1, 0.4, 0.2, 0.5, 0.5, 0.1, 0.6])
    c = corrected_counts(labels, (base, 0.0), (student, 0.5), (other, 0.3))
    assert (c.baseline_wrong, c.student_wrong, c.corrected, c.corrected_other_right, c.broken) == (4, 3, 3, 2, 2)
    assert c.other_right_fraction == pytest.approx(2 / 3)
    # base rates: other right on trials 0, 2, 6 of 8; of the baseline's wrong {2, 3, 6, 7}: 2 and 6
    assert c.other_right_rate == pytest.approx(3 / 8)
    assert c.other_right_given_baseline_wrong == pytest.approx(2 / 4)
    assert sum(c.venn.values()) == 8
    # region "110": baseline wrong, student right, other wrong -> trial 3 only
    assert c.venn["110"] == 1 and c.venn["111"] == 2
    # brute force every region
    a, b, o = base < 0.0, decisions_correct(student, labels, 0.5), decisions_correct(other, labels, 0.3)
    a = ~decisions_correct(base, labels, 0.0)
    for key, count in c.venn.items():
        mask = np.ones(8, bool)
        for bit, s in zip(key, (a, b, o)):
            mask &= s if bit == "1" else ~s
        assert count == mask.sum(), key


def test_align_trials():
    ref = [("a", "b"), ("a", "c"), ("d", "e")]
    other = [("d", "e"), ("a", "b"), ("a", "c")]
    idx = align_trials(ref, other)
    assert [other[i] for i in idx] == ref
    with pytest.raises(KeyError, match="not by the other"):
        align_trials(ref + [("x", "y")], other)
