"""The score and compute_metrics CLIs end to end: outputs, JSON, DET plot, warnings and error exits."""
import json
import re
import subprocess
import sys

import kaldiio
import numpy as np
import pytest

from wespeaker_avkd.scoring import compute_metrics, read_score_file

from .references import as_norm_numpy, cosine_numpy


def run(*args):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """40 utterances of 8 speakers (clustered embeddings), an scp, trials in both labelled forms."""
    d = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((8, 16))
    keys = [f"id{10000 + i % 8}/v/{i:05d}" for i in range(40)]
    emb = (centres[np.arange(40) % 8] + 0.8 * rng.standard_normal((40, 16)) + 2.0).astype(np.float32)
    with kaldiio.WriteHelper(f"ark,scp:{d}/xvector.ark,{d}/xvector.scp") as w:
        for k, v in zip(keys, emb):
            w[k] = v
    pairs = [(i, j) for i in range(40) for j in range(0, 40, 3) if i != j]
    with open(d / "O", "w") as f, open(d / "O.txt", "w") as g:
        for i, j in pairs:
            same = i % 8 == j % 8
            f.write(f"{keys[i]} {keys[j]} {'target' if same else 'nontarget'}\n")
            g.write(f"{int(same)} {keys[i]} {keys[j]}\n")
    np.save(d / "mean.npy", emb.mean(axis=0))
    return d, keys, emb, pairs


def test_score_then_metrics(corpus, tmp_path):
    d, keys, emb, pairs = corpus
    r = run("wespeaker_avkd.bin.score", "--embeddings", f"{d}/xvector.scp", "--trials", f"{d}/O", f"{d}/O.txt",
            "--output_dir", str(tmp_path), "--mean_vec", f"{d}/mean.npy")
    assert r.returncode == 0, r.stderr
    a, b = read_score_file(tmp_path / "O.score"), read_score_file(tmp_path / "O.txt.score")
    e, t = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    assert a.enroll == [keys[i] for i in e] and a.test == [keys[j] for j in t]  # trial order kept
    np.testing.assert_allclose(a.scores, cosine_numpy(emb, e, t, emb.mean(axis=0)), atol=1e-5)
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.labels, b.labels)

    out = tmp_path / "m.json"
    r = run("wespeaker_avkd.bin.compute_metrics", str(tmp_path / "O.score"), "--p_target", "0.01",
            "--p_target", "0.05", "--json", str(out), "--det", str(tmp_path / "det.png"))
    assert r.returncode == 0, r.stderr
    assert "EER" in r.stdout and "minDCF(p=0.05)" in r.stdout and len(r.stdout.strip().splitlines()) == 1
    got = json.loads(out.read_text())
    want = compute_metrics(a.scores, a.labels).to_dict()
    assert got == want and set(got["min_dcf"]) == {"0.01", "0.05"}  # JSON floats round-trip exactly
    assert 0.0 < got["eer"] < 0.5
    assert (tmp_path / "det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_in_the_scoring_process(corpus, tmp_path):
    """--metrics writes <list>.json equal to compute_metrics --json of the written score file, one summary each."""
    d, *_ = corpus
    r = run("wespeaker_avkd.bin.score", "--embeddings", f"{d}/xvector.scp", "--trials", f"{d}/O", f"{d}/O.txt",
            "--output_dir", str(tmp_path / "s"), "--mean_vec", f"{d}/mean.npy", "--metrics", "--p_target", "0.01")
    assert r.returncode == 0, r.stderr
    for name in ("O", "O.txt"):
        ref = tmp_path / f"{name}.ref.json"
        r2 = run("wespeaker_avkd.bin.compute_metrics", str(tmp_path / "s" / f"{name}.score"), "--p_target", "0.01",
                 "--json", str(ref))
        assert r2.returncode == 0, r2.stderr
        assert json.loads((tmp_path / "s" / f"{name}.json").read_text()) == json.loads(ref.read_text())
        summary = [ln for ln in r.stdout.splitlines() if ln.startswith(str(tmp_path / "s" / f"{name}.score") + ":")]
        assert summary == [r2.stdout.strip()]  # the same line compute_metrics prints
    assert set(json.loads((tmp_path / "s" / "O.json").read_text())["min_dcf"]) == {"0.01"}


def test_jobs_score_several_systems(corpus, tmp_path):
    """--jobs gives each system exactly what a separate single-system call gives (scores and json)."""
    d, keys, emb, pairs = corpus
    other = tmp_path / "other.npz"
    rng = np.random.default_rng(1)
    emb2 = (emb + rng.standard_normal(emb.shape)).astype(np.float32)
    np.savez(other, keys=np.array(keys), embeddings=emb2)
    jobs = tmp_path / "jobs.tsv"
    jobs.write_text(f"# system 1\n{d}/xvector.scp\t{tmp_path}/a\t{d}/mean.npy\n\n{other}\t{tmp_path}/b\n")
    r = run("wespeaker_avkd.bin.score", "--jobs", str(jobs), "--trials", f"{d}/O", "--metrics")
    assert r.returncode == 0, r.stderr
    for sub, args in (("a", [f"{d}/xvector.scp", "--mean_vec", f"{d}/mean.npy"]), ("b", [str(other)])):
        r1 = run("wespeaker_avkd.bin.score", "--embeddings", *args, "--trials", f"{d}/O", "--output_dir",
                 str(tmp_path / f"{sub}1"), "--metrics")
        assert r1.returncode == 0, r1.stderr
        for ext in ("score", "json"):
            assert (tmp_path / sub / f"O.{ext}").read_bytes() == (tmp_path / f"{sub}1" / f"O.{ext}").read_bytes()
    e, t = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    np.testing.assert_allclose(read_score_file(tmp_path / "b" / "O.score").scores, cosine_numpy(emb2, e, t, None),
                               atol=1e-5)
    np.testing.assert_allclose(read_score_file(tmp_path / "a" / "O.score").scores,
                               cosine_numpy(emb, e, t, emb.mean(axis=0)), atol=1e-5)


def test_jobs_with_cohorts_equal_single_system_calls(corpus, tmp_path):
    """AS-norm in --jobs: each line's own cohort (per-speaker means with its utt2spk, or raw rows) and the
    global --top_k give exactly what a separate --cohort call gives; a line without a cohort stays cosine."""
    d, keys, emb, pairs = corpus
    rng = np.random.default_rng(2)
    cohort = tmp_path / "cohort.npz"
    ckeys = [f"c{i:03d}" for i in range(30)]
    np.savez(cohort, keys=np.array(ckeys), embeddings=(rng.standard_normal((30, 16)) + 2.0).astype(np.float32))
    u2s = tmp_path / "utt2spk"
    u2s.write_text("".join(f"{k} s{i % 7}\n" for i, k in enumerate(ckeys)))
    mean = f"{d}/mean.npy"
    jobs = tmp_path / "jobs.tsv"
    jobs.write_text(f"{d}/xvector.scp\t{tmp_path}/spk\t{mean}\t{cohort}\t{u2s}\n"
                    f"{d}/xvector.scp\t{tmp_path}/utt\t-\t{d}/xvector.scp\n"
                    f"{d}/xvector.scp\t{tmp_path}/raw\t{mean}\t-\t-\n")
    r = run("wespeaker_avkd.bin.score", "--jobs", str(jobs), "--trials", f"{d}/O", "--metrics", "--top_k", "5")
    assert r.returncode == 0, r.stderr
    singles = {"spk": ["--mean_vec", mean, "--cohort", str(cohort), "--cohort_utt2spk", str(u2s)],
               "utt": ["--cohort", f"{d}/xvector.scp"], "raw": ["--mean_vec", mean]}
    for sub, extra in singles.items():
        r1 = run("wespeaker_avkd.bin.score", "--embeddings", f"{d}/xvector.scp", "--trials", f"{d}/O",
                 "--output_dir", str(tmp_path / f"{sub}1"), "--metrics", "--top_k", "5", *extra)
        assert r1.returncode == 0, r1.stderr
        for ext in ("score", "json"):
            assert (tmp_path / sub / f"O.{ext}").read_bytes() == (tmp_path / f"{sub}1" / f"O.{ext}").read_bytes()
    e, t = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    np.testing.assert_allclose(read_score_file(tmp_path / "utt" / "O.score").scores,
                               as_norm_numpy(emb, e, t, emb, 5), atol=1e-4)
    raw = read_score_file(tmp_path / "raw" / "O.score").scores
    np.testing.assert_allclose(raw, cosine_numpy(emb, e, t, emb.mean(axis=0)), atol=1e-5)
    cemb = np.load(cohort)["embeddings"]
    spk_means = np.stack([cemb[[i for i in range(30) if i % 7 == s]].mean(axis=0) for s in range(7)])
    spk = read_score_file(tmp_path / "spk" / "O.score").scores
    np.testing.assert_allclose(spk, as_norm_numpy(emb, e, t, spk_means, 5, emb.mean(axis=0)), atol=1e-4)
    assert not np.allclose(spk, raw, atol=1e-2)


def test_score_cli_option_errors(corpus, tmp_path):
    d, *_ = corpus
    for extra in (["--jobs", "j.tsv", "--embeddings", "x.scp"], ["--jobs", "j.tsv", "--cohort", "c.scp"],
                  ["--embeddings", "x.scp", "--output_dir", "o", "--cohort_utt2spk", "u"], ["--embeddings", "x.scp"],
                  ["--embeddings", "x.scp", "--output_dir", "o", "--p_target", "0.1"]):
        r = run("wespeaker_avkd.bin.score", "--trials", f"{d}/O", *extra)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr


def test_as_norm_cli(corpus, tmp_path):
    d, keys, emb, pairs = corpus
    r = run("wespeaker_avkd.bin.score", "--embeddings", f"{d}/xvector.scp", "--trials", f"{d}/O",
            "--output_dir", str(tmp_path), "--cohort", f"{d}/xvector.scp", "--top_k", "10")
    assert r.returncode == 0, r.stderr
    e, t = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    np.testing.assert_allclose(read_score_file(tmp_path / "O.score").scores,
                               as_norm_numpy(emb, e, t, emb, 10), atol=1e-4)


def test_skip_missing_and_missing_key(corpus, tmp_path):
    d, keys, *_ = corpus
    trials = tmp_path / "T"
    trials.write_text(f"{keys[0]} {keys[1]} target\n{keys[0]} ghost nontarget\n{keys[2]} {keys[1]} nontarget\n")
    r = run("wespeaker_avkd.bin.score", "--embeddings", f"{d}/xvector.scp", "--trials", str(trials),
            "--output_dir", str(tmp_path / "s"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{trials}:2: test key 'ghost' is not in the embeddings" in r.stderr
    r = run("wespeaker_avkd.bin.score", "--embeddings", f"{d}/xvector.scp", "--trials", str(trials),
            "--output_dir", str(tmp_path / "s"), "--skip_missing")
    assert r.returncode == 0, r.stderr
    assert "skipped 1 trial(s)" in r.stdout and f"{trials}:2: ghost" in r.stdout
    assert len((tmp_path / "s" / "T.score").read_text().splitlines()) == 2


@pytest.mark.parametrize("content,match", [
    ("a b 0.1\nc d 0.2\n", "has no labels"),
    ("a b 0.1 target\nc d 0.2 target\n", "all targets"),
    ("a b 0.1 nontarget\nc d 0.2 nontarget\n", "all nontargets"),
    ("a b 0.1 target\nc d NaN nontarget\n", r":2: score is NaN"),
    ("", "empty score file"),
])
def test_compute_metrics_errors(tmp_path, content, match):
    path = tmp_path / "x.score"
    path.write_text(content)
    r = run("wespeaker_avkd.bin.compute_metrics", str(path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert str(path) in r.stderr
    assert re.search(match, r.stderr), r.stderr


def test_score_cli_errors(corpus, tmp_path):
    d, keys, *_ = corpus
    bad = tmp_path / "bad"
    bad.write_text(f"{keys[0]} {keys[1]} target\n{keys[0]} {keys[1]} maybe\n")
    r = run("wespeaker_avkd.bin.score", "--embeddings", f"{d}/xvector.scp", "--trials", str(bad),
            "--output_dir", str(tmp_path))
    assert r.returncode == 2 and f"{bad}:2: unknown label 'maybe'" in r.stderr and "Traceback" not in r.stderr
    r = run("wespeaker_avkd.bin.score", "--embeddings", str(tmp_path / "none.scp"), "--trials", str(bad),
            "--output_dir", str(tmp_path))
    assert r.returncode == 2 and "no such embeddings file" in r.stderr
    r = run("wespeaker_avkd.bin.score", "--embeddings", f"{d}/xvector.scp", "--trials", str(tmp_path / "nope"),
            "--output_dir", str(tmp_path))
    assert r.returncode == 2 and "no such trial list" in r.stderr
    np.save(tmp_path / "m.npy", np.zeros(3))
    r = run("wespeaker_avkd.bin.score", "--embeddings", f"{d}/xvector.scp", "--trials", f"{d}/O",
            "--output_dir", str(tmp_path), "--mean_vec", str(tmp_path / "m.npy"))
    assert r.returncode == 2 and "mean vector has dimension 3" in r.stderr
    assert not (tmp_path / "O.score").exists()


def test_scoring_does_not_import_torch():
    code = "import sys, wespeaker_avkd.scoring, wespeaker_avkd.bin.score, wespeaker_avkd.bin.compute_metrics; " \
           "print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
