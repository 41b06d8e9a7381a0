"""Scoring never overwrites its own output: colliding score paths are refused before anything is written."""
import subprocess
import sys

import kaldiio
import numpy as np
import pytest

from wespeaker_avkd.scoring import ScoringError
from wespeaker_avkd.scoring.pipeline import ScoringJob, read_jobs, score_files, score_jobs


def run(*args):
    return subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.score", *args], capture_output=True, text=True)


@pytest.fixture()
def corpus(tmp_path):
    """12 embeddings and two different trial lists named O in two dirs (d1/O, d2/O)."""
    rng = np.random.default_rng(0)
    keys = [f"u{i:02d}" for i in range(12)]
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/e.ark,{tmp_path}/e.scp") as w:
        for k in keys:
            w[k] = rng.standard_normal(8).astype(np.float32)
    for sub, step in (("d1", 1), ("d2", 2)):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "O").write_text("".join(f"{keys[i]} {keys[(i + step) % 12]} "
                                                  f"{'target' if i % 2 else 'nontarget'}\n" for i in range(12)))
    return tmp_path


def written(out_dir):
    return sorted(p.name for p in out_dir.rglob("*")) if out_dir.exists() else []


def test_same_list_name_refused_before_writing(corpus):
    out = corpus / "scores"
    r = run("--embeddings", f"{corpus}/e.scp", "--trials", f"{corpus}/d1/O", f"{corpus}/d2/O", "--output_dir",
            str(out), "--metrics")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{corpus}/d1/O and {corpus}/d2/O would both be written to {out}/O.score" in r.stderr
    assert written(out) == []
    # the same list given twice (or with a trailing slash) is the same collision
    with pytest.raises(ScoringError, match="would both be written"):
        score_files(f"{corpus}/e.scp", [f"{corpus}/d1/O", f"{corpus}/d1/O"], str(out), log=lambda s: None)
    assert written(out) == []


def test_distinct_names_or_dirs_are_fine(corpus):
    """The recipe's layout: the same list name in different output dirs never collides."""
    for sub in ("d1", "d2"):
        r = run("--embeddings", f"{corpus}/e.scp", "--trials", f"{corpus}/{sub}/O", "--output_dir",
                f"{corpus}/scores/{sub}")
        assert r.returncode == 0, r.stderr
    a = (corpus / "scores/d1/O.score").read_text()
    b = (corpus / "scores/d2/O.score").read_text()
    assert a != b and len(a.splitlines()) == len(b.splitlines()) == 12


def test_jobs_sharing_an_output_dir_refused(corpus):
    jobs = corpus / "jobs.tsv"
    jobs.write_text(f"{corpus}/e.scp\t{corpus}/s\n{corpus}/e.ark\t{corpus}/x/../s\n")
    r = run("--jobs", str(jobs), "--trials", f"{corpus}/d1/O")
    assert r.returncode == 2 and "would both write" in r.stderr and f"{corpus}/s" in r.stderr
    assert written(corpus / "s") == []


@pytest.mark.parametrize("bad_fields,match", [
    ("{c}/nomean.npy", "nomean.npy: no such mean vector file"),
    ("-\t{c}/nocohort.scp", "nocohort.scp: no such cohort file"),
    ("-\t{c}/e.scp\t{c}/nou2s", "nou2s: no such cohort utt2spk file"),
])
def test_a_bad_job_fails_before_the_first_system_is_scored(corpus, bad_fields, match):
    bad = bad_fields.replace("{c}", str(corpus))  # the optional fields of the second job
    (corpus / "jobs.tsv").write_text(f"{corpus}/e.scp\t{corpus}/a\n{corpus}/e.scp\t{corpus}/b\t{bad}\n")
    with pytest.raises(ScoringError, match=match):
        score_jobs(read_jobs(str(corpus / "jobs.tsv")), [f"{corpus}/d1/O"], log=lambda s: None)
    assert written(corpus / "a") == []


@pytest.mark.parametrize("content,match", [
    ("a.scp out\n", r"jobs.tsv:1: expected 'embeddings<TAB>output_dir"),
    ("# only a comment\n\n", "lists no system"),
    ("a.scp\tout\tm.npy\tc.scp\tu2s\textra\n", r"jobs.tsv:1: expected"),
    ("a.scp\tout\tm.npy\t-\tu2s\n", r"jobs.tsv:1: a cohort utt2spk \(u2s\) needs a cohort"),
    ("\tout\n", r"jobs.tsv:1: expected"),
])
def test_malformed_jobs_file_named(tmp_path, content, match):
    path = tmp_path / "jobs.tsv"
    path.write_text(content)
    with pytest.raises(ScoringError, match=match):
        read_jobs(str(path))


def test_jobs_file_fields(tmp_path):
    path = tmp_path / "jobs.tsv"
    path.write_text("e1.scp\to1\tm1.npy\r\ne2.scp\to2\t-\ne3.scp\to3\ne4.scp\to4\t-\tc4.scp\n"
                    "e5.scp\to5\tm5.npy\tc5.scp\tu5\ne6.scp\to6\t\t-\t\n")
    assert read_jobs(str(path)) == [ScoringJob("e1.scp", "o1", "m1.npy"), ScoringJob("e2.scp", "o2", None),
                                    ScoringJob("e3.scp", "o3", None), ScoringJob("e4.scp", "o4", None, "c4.scp"),
                                    ScoringJob("e5.scp", "o5", "m5.npy", "c5.scp", "u5"),
                                    ScoringJob("e6.scp", "o6")]


def test_metrics_on_unlabelled_list_refused_before_its_score_is_written(corpus):
    (corpus / "U").write_text("u00 u01\nu02 u03\n")
    r = run("--embeddings", f"{corpus}/e.scp", "--trials", f"{corpus}/U", "--output_dir", f"{corpus}/s",
            "--metrics")
    assert r.returncode == 2 and f"{corpus}/U: has no labels" in r.stderr
    assert written(corpus / "s") == []
    r = run("--embeddings", f"{corpus}/e.scp", "--trials", f"{corpus}/U", "--output_dir", f"{corpus}/s")
    assert r.returncode == 0 and written(corpus / "s") == ["U.score"]
