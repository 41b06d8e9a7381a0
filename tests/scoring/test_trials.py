"""Trial-list and score-file parsing/writing, embedding loading, and their error messages."""
import kaldiio
import numpy as np
import pytest

from wespeaker_avkd import _scorer
from wespeaker_avkd.scoring import (
    KeyIndex,
    ScoringError,
    TrialScores,
    load_embeddings,
    load_mean_vector,
    read_score_file,
    read_trial_rows,
    score_trials,
    write_score_file,
)

KEYS = ["id10001/a/00001", "id10001/b/00002", "id10002/c/00001", "id10003/d/00007"]


def write(path, text, mode="w"):
    with open(path, mode, newline="") as f:
        f.write(text)
    return str(path)


@pytest.mark.parametrize("text,form,labels", [
    ("1 {0} {1}\n0 {0} {2}\n", "voxceleb", [1, 0]),
    ("{0} {1} target\n{0} {2} nontarget\n", "kaldi", [1, 0]),
    ("{0} {1}\n{0} {2}\n", "unlabeled", [-1, -1]),
    # CRLF, tabs, runs of blanks, blank lines, no final newline
    ("\r\n  {0}\t\t{1}   target\r\n\r\n{0} \t{2} nontarget", "kaldi", [1, 0]),
])
def test_trial_forms(tmp_path, text, form, labels):
    path = write(tmp_path / "trials", text.format(*KEYS))
    r = read_trial_rows(path, KEYS)
    assert r["form"] == form
    assert r["enroll"].tolist() == [0, 0] and r["test"].tolist() == [1, 2]
    assert r["labels"].tolist() == labels and r["labels"].dtype == np.int8


def bad(tmp_path, text, match, **kw):
    path = write(tmp_path / "trials.txt", text.format(*KEYS))
    with pytest.raises(ScoringError, match=match):
        read_trial_rows(path, KEYS, **kw)


def test_missing_key_names_file_line_and_key(tmp_path):
    bad(tmp_path, "{0} {1} target\n\n{0} nobody/x/1 nontarget\n",
        r"trials.txt:3: test key 'nobody/x/1' is not in the embeddings \(4 keys\); skip_missing")
    bad(tmp_path, "1 {0} {1}\n1 ghost {1}\n", r"trials.txt:2: enrollment key 'ghost' is not in the embeddings")


def test_skip_missing_counts_and_reports(tmp_path):
    path = write(tmp_path / "t", "{0} {1} target\n{0} x nontarget\ny {2} nontarget\n{0} {3} nontarget\n"
                 .format(*KEYS))
    r = read_trial_rows(path, KEYS, skip_missing=True)
    assert r["num_skipped"] == 2 and r["first_skipped"].endswith("t:2: x")
    assert r["test"].tolist() == [1, 3]
    bad(tmp_path, "a b target\nc d target\n", "no trial could be scored: all 2 trials have a key missing",
        skip_missing=True)


@pytest.mark.parametrize("text,match", [
    ("{0} {1} target\n{0} {1} target extra\n", r"trials.txt:2: malformed trial line: expected 3 fields"),
    ("{0} {1} target\n{0}\n", r"trials.txt:2: malformed trial line: expected 3 fields .* got 1"),
    ("{0} {1} target\n{0} {1} tgt\n", r"trials.txt:2: unknown label 'tgt' \(Kaldi form"),
    ("1 {0} {1}\n2 {0} {1}\n", r"trials.txt:2: unknown label '2' \(VoxCeleb form"),
    ("\n{0} {1} maybe\n", r"trials.txt:2: unknown label: expected 'target' or 'nontarget'"),
    ("{0} {1} target\n{0} {1}\n", r"trials.txt:2: malformed trial line: expected 3 fields"),
    ("{0}\n", r"trials.txt:1: malformed trial line: expected 2 or 3 fields"),
    ("", r"trials.txt: empty trial list"),
    ("\n \r\n\t\n", r"trials.txt: empty trial list"),
])
def test_malformed_trial_lists(tmp_path, text, match):
    bad(tmp_path, text, match)


def test_error_line_numbers_across_threads(tmp_path):
    lines = [f"{KEYS[i % 4]} {KEYS[(i + 1) % 4]} target" for i in range(60000)]
    lines[45677] = "oops"
    path = write(tmp_path / "big", "\n".join(lines) + "\n")
    with pytest.raises(ScoringError, match=r"big:45678: malformed"):
        _scorer.read_trials(path, KeyIndex(KEYS), False, 2)
    lines[45677] = f"{KEYS[0]} {KEYS[1]} nontarget"
    path = write(tmp_path / "big", "\n".join(lines) + "\n")
    one = _scorer.read_trials(path, KeyIndex(KEYS), False, 1)
    two = _scorer.read_trials(path, KeyIndex(KEYS), False, 2)
    assert all(np.array_equal(one[k], two[k]) for k in ("enroll", "test", "labels"))
    assert one["labels"][45677] == 0 and len(one["labels"]) == 60000


def test_score_file_round_trip_is_exact(tmp_path):
    emb = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    trials = write(tmp_path / "O", "{0} {1} target\n{1} {2} nontarget\n{2} {3} nontarget\n{3} {3} target\n"
                   .format(*KEYS))
    ts = score_trials(trials, KEYS, emb)
    ts = ts.with_scores(np.array([0.123456789, -1e-7, 3.4e38, 1 / 3], np.float32))
    write_score_file(tmp_path / "O.score", ts)
    back = read_score_file(tmp_path / "O.score")
    assert back.enroll == ts.enroll and back.test == ts.test
    assert np.array_equal(back.scores, ts.scores) and np.array_equal(back.labels, ts.labels)
    first = (tmp_path / "O.score").read_text().splitlines()[0].split()
    assert first[0] == KEYS[0] and first[3] == "target" and float(first[2]) == np.float32(0.123456789)


def test_unlabeled_score_file_and_list_constructor(tmp_path):
    ts = TrialScores(["a", "b"], ["b", "c"], np.array([0.5, -0.25]), np.array([-1, -1]))
    write_score_file(tmp_path / "u.score", ts)
    assert (tmp_path / "u.score").read_text() == "a b 0.5\nb c -0.25\n"
    back = read_score_file(tmp_path / "u.score")
    assert back.labels.tolist() == [-1, -1] and back.test == ["b", "c"]
    mixed = TrialScores(["a", "b"], ["b", "c"], np.array([0.5, -0.25]), np.array([1, -1]))
    with pytest.raises(ScoringError, match="trial 1 is unlabeled but trial 0 is not"):
        write_score_file(tmp_path / "m.score", mixed)
    assert not (tmp_path / "m.score").exists()


@pytest.mark.parametrize("text,match", [
    ("a b 0.5 target\na b zero target\n", r"s.score:2: bad score 'zero'"),
    ("a b 0.5 target\na b nan target\n", r"s.score:2: score is nan \(scores must be finite\)"),
    ("a b inf target\n", r"s.score:1: score is inf"),
    ("a b 1e99 target\n", r"s.score:1: bad score '1e99'"),
    ("a b 0.5 target\na b 0.5 impostor\n", r"s.score:2: unknown label 'impostor'"),
    ("a b 0.5 target\na b 0.5\n", r"s.score:2: malformed score line: 3 fields where the first line has 4"),
    ("a b\n", r"s.score:1: malformed score line"),
    ("", r"s.score: empty score file"),
])
def test_bad_score_files(tmp_path, text, match):
    with pytest.raises(ScoringError, match=match):
        read_score_file(write(tmp_path / "s.score", text))


def test_score_file_accepts_crlf_tabs_and_plus_sign(tmp_path):
    ts = read_score_file(write(tmp_path / "s", "a\tb  +0.5 target\r\nc d -1.5e-2 nontarget\r\n"))
    assert ts.scores.tolist() == [0.5, np.float32(-0.015)] and ts.labels.tolist() == [1, 0]


def write_scp(tmp_path, rows: dict, name="x"):
    ark, scp = tmp_path / f"{name}.ark", tmp_path / f"{name}.scp"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as w:
        for k, v in rows.items():
            w[k] = v
    return str(scp), str(ark)


def test_load_embeddings_scp_ark_npz_agree(tmp_path):
    rng = np.random.default_rng(0)
    rows = {k: rng.standard_normal(6).astype(np.float32) for k in KEYS}
    scp, ark = write_scp(tmp_path, rows)
    np.savez(tmp_path / "e.npz", keys=np.array(KEYS), embeddings=np.stack(list(rows.values())))
    for path in (scp, ark, str(tmp_path / "e.npz")):
        keys, emb = load_embeddings(path)
        assert keys == KEYS and emb.dtype == np.float32 and emb.flags.c_contiguous
        np.testing.assert_array_equal(emb, np.stack(list(rows.values())))
    np.testing.assert_allclose(load_mean_vector(scp), np.stack(list(rows.values())).mean(0), rtol=1e-6)
    np.save(tmp_path / "mean.npy", np.arange(6.0))
    assert load_mean_vector(tmp_path / "mean.npy").tolist() == list(range(6))


def test_bad_embedding_files(tmp_path):
    scp, _ = write_scp(tmp_path, {"a": np.ones(4, np.float32), "b": np.ones(5, np.float32)})
    with pytest.raises(ScoringError, match=r"x.scp: embedding 'b' has dimension 5, but 'a' has dimension 4"):
        load_embeddings(scp)
    scp, _ = write_scp(tmp_path, {"a": np.ones(4, np.float32), "b": np.array([1, np.inf, 0, 0], np.float32)}, "y")
    with pytest.raises(ScoringError, match=r"y.scp: embedding 'b' contains NaN or Inf"):
        load_embeddings(scp)
    with pytest.raises(ScoringError, match="empty file"):
        load_embeddings(write(tmp_path / "empty.scp", ""))
    with pytest.raises(ScoringError, match="no such embeddings file"):
        load_embeddings(tmp_path / "nope.scp")
    np.save(tmp_path / "e.npy", np.ones((2, 3)))
    with pytest.raises(ScoringError, match="a .npy array has no keys"):
        load_embeddings(tmp_path / "e.npy")
    np.savez(tmp_path / "d.npz", keys=np.array(["a", "a"]), embeddings=np.ones((2, 3)))
    with pytest.raises(ScoringError, match="duplicate embedding key 'a'"):
        load_embeddings(tmp_path / "d.npz")
    with pytest.raises(ScoringError, match=r"bad.scp: cannot read embeddings"):
        load_embeddings(write(tmp_path / "bad.scp", "a /nonexistent.ark:12\n"))
