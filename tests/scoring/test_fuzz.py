"""Fuzzing the compiled entry points with random and malformed input: a result or ScoringError, never a crash."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wespeaker_avkd import _scorer
from wespeaker_avkd.scoring import KeyIndex, ScoringError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
KEYS = ["a", "b", "c", "id1/x/1", "1", "0", "target"]
TOKENS = st.sampled_from(KEYS + ["target", "nontarget", "1", "0", "", " ", "\t", "\r", "\n", "\x00", "é", "x" * 300,
                                 "nan", "inf", "-0.5", "1e40", "+", "0.25", "ghost"])


def line_soup():
    """Text made of plausible tokens and separators (reaches the deeper parser states)."""
    return st.lists(TOKENS, max_size=60).map(lambda toks: " ".join(toks))


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), line_soup().map(lambda s: s.encode("utf-8"))),
       skip=st.booleans(), threads=st.sampled_from([1, 2]))
def test_read_trials_never_crashes(tmp_path_factory, data, skip, threads):
    path = tmp_path_factory.mktemp("f") / "trials"
    path.write_bytes(data)
    try:
        r = _scorer.read_trials(str(path), KeyIndex(KEYS), skip, threads)
    except ScoringError as e:
        assert str(path) in str(e)
        return
    n = len(r["enroll"])
    assert n > 0 and len(r["test"]) == n and len(r["labels"]) == n
    assert r["enroll"].min() >= 0 and r["test"].max() < len(KEYS)


def first_rejection(path, scan) -> str | None:
    """The error read_trials (all KEYS known, no skip_missing) must raise for the file that scan_trials read: its
    first bad line by the grammar or first trial with a key outside KEYS, whichever comes first; None if none."""
    bad = [(line, f"{path}:{line}: {why}" if line else f"{path}: {why}") for line, why in scan["problems"]]
    bad += [(line, f"{path}:{line}: ") for line, e, t in zip(scan["lines"].tolist(), scan["enroll"], scan["test"])
            if e not in KEYS or t not in KEYS]
    return min(bad)[1] if bad else None


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), line_soup().map(lambda s: s.encode("utf-8"))),
       threads=st.sampled_from([1, 2]))
def test_scan_and_read_trials_accept_and_reject_the_same_lines(tmp_path_factory, data, threads):
    """The validators' reader (scan_trials, every bad line) and the scorer's (read_trials, stops at the first)
    share one grammar: the same form, the same trials, the first bad line named with the same message."""
    path = tmp_path_factory.mktemp("f") / "trials"
    path.write_bytes(data)
    scan = _scorer.scan_trials(str(path))
    expected = first_rejection(path, scan)
    try:
        r = _scorer.read_trials(str(path), KeyIndex(KEYS), False, threads)
    except ScoringError as e:
        assert expected is not None, f"read_trials refused what scan_trials accepted: {e}"
        if expected.endswith(": "):  # a key missing from the embeddings: the scan does not know the key set
            assert str(e).startswith(expected) and "is not in the embeddings" in str(e)
        else:
            assert str(e) == expected
        return
    assert expected is None, f"read_trials accepted what scan_trials refused: {expected}"
    assert r["form"] == scan["form"] and r["labels"].tolist() == scan["labels"].tolist()
    assert [KEYS[i] for i in r["enroll"]] == scan["enroll"] and [KEYS[i] for i in r["test"]] == scan["test"]


def test_scan_reports_every_bad_line_and_names_the_form(tmp_path):
    path = tmp_path / "trials"
    path.write_bytes(b"a b target\n\na b tgt\nc d\r\n1 a b \x0c\nc\xff d nontarget\n")
    scan = _scorer.scan_trials(str(path))
    assert scan["form"] == "kaldi" and scan["lines"].tolist() == [1, 6] and scan["labels"].tolist() == [1, 0]
    assert scan["enroll"] == ["a", "c\ufffd"] and scan["test"] == ["b", "d"]  # bytes not UTF-8 read as U+FFFD
    assert [line for line, _ in scan["problems"]] == [3, 4, 5]
    assert scan["problems"][0][1] == "unknown label 'tgt' (Kaldi form: expected target or nontarget)"
    assert scan["problems"][1][1].startswith("malformed trial line: expected 3 fields 'enroll test target|nontarget'")
    assert scan["problems"][1][1].endswith("got 2") and scan["problems"][2][1].endswith("got 4")  # \f: a field
    vox = _scorer.scan_trials(str(path), "voxceleb")  # a given form: no detection, every line against it
    assert vox["form"] == "voxceleb" and vox["lines"].tolist() == [] and len(vox["problems"]) == 5
    (tmp_path / "blank").write_bytes(b"\n \r\n\t\n")
    blank = _scorer.scan_trials(str(tmp_path / "blank"), "kaldi")
    assert blank["problems"] == [(0, "empty trial list (no trial lines)")]
    with pytest.raises(ScoringError, match="unknown trial-list form 'score'"):
        _scorer.scan_trials(str(path), "score")


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), line_soup().map(lambda s: s.encode("utf-8"))))
def test_read_score_file_never_crashes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("f") / "s.score"
    path.write_bytes(data)
    try:
        r = _scorer.read_score_file(str(path))
    except ScoringError as e:
        assert str(path) in str(e)
        return
    assert np.isfinite(r["scores"]).all() and len(r["index"]) > 0


float32s = st.floats(width=32, allow_nan=True, allow_infinity=True)


@FUZZ
@given(scores=st.lists(float32s, max_size=40), labels=st.lists(st.integers(-3, 3), max_size=40),
       p=st.lists(st.floats(-1, 2), max_size=3), c=st.floats(-1, 10))
def test_metrics_never_crash(scores, labels, p, c):
    n = min(len(scores), len(labels))
    s, y = np.array(scores[:n], np.float32), np.array(labels[:n], np.int8)
    try:
        r = _scorer.compute_metrics(s, y, p, c, 1.0)
    except ScoringError:
        return
    assert 0.0 <= r["eer"] <= 1.0 and 0.0 <= r["eer_rocch"] <= r["eer"] + 1e-12 and 0.0 <= r["eer_kaldi"] <= 1.0
    try:
        p_fa, p_miss, _ = _scorer.det_curve(s, y)
    except ScoringError:
        pytest.fail("det_curve refused what compute_metrics accepted")
    assert p_fa[0] == 1.0 and p_miss[-1] == 1.0


@FUZZ
@given(n=st.integers(0, 6), d=st.integers(0, 5), rows=st.lists(st.integers(-3, 8), max_size=20),
       special=st.sampled_from([None, 0.0, np.nan, np.inf]), mean=st.booleans(), seed=st.integers(0, 99))
def test_cosine_never_crashes(n, d, rows, special, mean, seed):
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, d)).astype(np.float32)
    if special is not None and n:
        emb[rng.integers(n)] = special
    m = len(rows) // 2
    e, t = np.array(rows[:m], np.int32), np.array(rows[m:2 * m], np.int32)
    mv = rng.standard_normal(d).astype(np.float32) if mean else None
    try:
        s = _scorer.cosine_scores(emb, e, t, mv)
    except ScoringError:
        return
    assert s.shape == (m,) and (np.abs(s) <= 1.0 + 1e-5).all()


@FUZZ
@given(keys=st.lists(st.text(max_size=5), max_size=8), rows=st.lists(st.integers(-2, 9), max_size=6),
       labels=st.lists(st.integers(-3, 3), max_size=3))
def test_key_index_and_writer_never_crash(tmp_path_factory, keys, rows, labels):
    try:
        index = KeyIndex(keys)
    except ScoringError:
        assert "" in keys or len(set(keys)) < len(keys) or any(set(k) & set(" \t\n\r\v\f\0") for k in keys)
        return
    m = min(len(rows) // 2, len(labels))
    e, t = np.array(rows[:m], np.int32), np.array(rows[m:2 * m], np.int32)
    path = tmp_path_factory.mktemp("w") / "out"
    with open(path, "wb") as f:
        try:
            _scorer.write_score_lines(f.fileno(), index, e, t, np.zeros(m, np.float32), np.array(labels[:m], np.int8))
        except ScoringError:
            return
    assert len(path.read_bytes().splitlines()) == m
