"""run.sh's tuning seed (refused among the eval seeds, before any work) and the command line the report job
records (as typed, shell-quoted, never evaluated)."""
import os
import shlex
import subprocess

import pytest

from .dry_run import RUN, make_fake_python


def _run(tmp_path, *args, env=None):
    return subprocess.run(["bash", str(RUN), *args], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=env or os.environ)


@pytest.mark.parametrize("args,message", [
    (["--seeds", "1 101"], "run.sh: --seeds holds the tuning seed 101: choose eval seeds other than --tune_seed"),
    (["--seeds", "7", "--tune_seed", "7", "--tune", "true"],
     "run.sh: --seeds holds the tuning seed 7: choose eval seeds other than --tune_seed"),
    (["--tune_seed", "x1"], "run.sh: --tune_seed must be a non-negative integer, got x1"),
])
def test_tuning_seed_among_eval_seeds_is_one_line(tmp_path, args, message):
    out = _run(tmp_path, "--exp", str(tmp_path / "exp"), "--data", str(tmp_path / "data"), *args)
    assert out.returncode == 2 and out.stderr.splitlines() == [message]
    assert not (tmp_path / "exp").exists() and not (tmp_path / "data").exists()


def test_report_job_records_the_command_as_typed(tmp_path):
    """A value with shell syntax reaches the report's --command quoted: shlex.split gives back the argv typed,
    and nothing in it ran."""
    make_fake_python(tmp_path / "bin")   # bin.report recorded, not run
    exp = tmp_path / "e x$(touch PWNED)`touch PWNED`"
    scores = exp / "seed1" / "teacher" / "scores" / "eval"
    scores.mkdir(parents=True)
    (scores / "O.score").write_text("")
    args = ["--stage", "9", "--exp", str(exp), "--data", str(tmp_path / "data")]
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
               DRY_RUN_LOG=str(tmp_path / "calls.log"))
    out = _run(tmp_path, *args, env=env)
    assert out.returncode == 0, out.stderr
    job = (exp / "jobs" / "stage9_report.jobs").read_text().rstrip("\n").split("\t")
    command = job[job.index("--command") + 1]
    assert shlex.split(command) == [str(RUN), *args]
    assert not (tmp_path / "PWNED").exists() and not list(tmp_path.rglob("PWNED"))
