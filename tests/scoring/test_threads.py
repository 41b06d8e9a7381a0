"""Thread counts: a count beyond what the process may create is capped with a warning, a negative one refused;
neither kills the interpreter (each case runs in a subprocess, so a crash fails the test instead of the run)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from wespeaker_avkd import _scorer
from wespeaker_avkd.scoring import KeyIndex, ScoringError

# Parses a trial list, scores it and writes the scores with num_threads=N and with 1 thread; prints OK when the
# results are identical.
SCRIPT = r"""
import os, sys, tempfile
import numpy as np
from wespeaker_avkd import _scorer
from wespeaker_avkd.scoring import KeyIndex

n = int(sys.argv[1])
keys = [f"spk{i:03d}/utt" for i in range(200)]
rng = np.random.default_rng(0)
tmp = tempfile.mkdtemp()
path = os.path.join(tmp, "trials")
with open(path, "w") as f:
    for a, b in zip(rng.integers(0, 200, 5000), rng.integers(0, 200, 5000)):
        f.write(f"{keys[a]} {keys[b]} {'target' if a % 7 == b % 7 else 'nontarget'}\n")
index = KeyIndex(keys)
emb = rng.standard_normal((200, 16)).astype(np.float32)


def run(threads):
    r = _scorer.read_trials(path, index, False, threads)
    s = _scorer.cosine_scores(emb, r["enroll"], r["test"], None, index, threads)
    out = os.path.join(tmp, f"scores{threads}")
    with open(out, "wb") as f:
        _scorer.write_score_lines(f.fileno(), index, r["enroll"], r["test"], s, r["labels"], threads)
    with open(out, "rb") as f:
        return r["enroll"].tolist(), s.tolist(), f.read()


assert run(n) == run(1)
print("OK")
"""


def run_script(num_threads: int, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-W", "always::RuntimeWarning", "-c", SCRIPT, str(num_threads)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("num_threads", [100_000, 10**6])
def test_absurd_thread_count_is_capped_with_a_warning(num_threads):
    r = run_script(num_threads)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-2000:]}"
    assert r.stdout.strip() == "OK"
    if _scorer.openmp:
        cap = _scorer.max_threads()
        for fn in ("read_trials", "cosine_scores", "write_score_lines"):
            assert f"RuntimeWarning: {fn}: num_threads={num_threads} exceeds" in r.stderr
        assert f"using {cap}" in r.stderr


def test_absurd_omp_num_threads_is_capped_with_a_warning():
    r = run_script(0, {"OMP_NUM_THREADS": "100000"})
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-2000:]}"
    assert r.stdout.strip() == "OK"
    if _scorer.openmp:
        assert "OpenMP's default of 100000 threads (OMP_NUM_THREADS) exceeds" in r.stderr


def test_cap_follows_cpu_count_and_omp_thread_limit():
    if not _scorer.openmp:
        assert _scorer.max_threads() == 1
        return
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert _scorer.max_threads() == max(8, 4 * cpus)
    code = "from wespeaker_avkd import _scorer; print(_scorer.max_threads())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, OMP_THREAD_LIMIT="3"), timeout=120)
    assert r.stdout.strip() == "3", r.stderr


def test_threads_within_the_cap_give_no_warning(recwarn):
    emb = np.eye(4, dtype=np.float32) + 0.1
    e = np.array([0, 1, 2], np.int32)
    _scorer.cosine_scores(emb, e, e[::-1].copy(), None, None, _scorer.max_threads())
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("num_threads", [-1, -10**6])
def test_negative_thread_count_is_refused(tmp_path, num_threads):
    path = tmp_path / "trials"
    path.write_text("a b target\n")
    with pytest.raises(ScoringError, match=f"num_threads must be >= 0 .*got {num_threads}"):
        _scorer.read_trials(str(path), KeyIndex(["a", "b"]), False, num_threads)
    emb = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="num_threads must be >= 0"):
        _scorer.cosine_scores(emb, np.zeros(1, np.int32), np.ones(1, np.int32), None, None, num_threads)
