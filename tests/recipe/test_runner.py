"""tools/run.py, the recipe's local job runner (Kaldi's run.pl form): job arrays, one log per job, at most N at
once, argument vectors never evaluated, failures named with their logs and exit status."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(ROOT, "tools", "run.py")
PY = sys.executable


def _run(*args, cwd):
    return subprocess.run([PY, RUNNER, *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def _output(log):
    """A job log's lines between the runner's header and footer."""
    lines = open(log).read().splitlines()
    assert lines[0].startswith("# ") and lines[1].startswith("# Started at") and lines[-1].startswith("# Ended (code")
    return lines[2:-1]


def test_job_array_substitutes_the_index_in_log_and_arguments(tmp_path):
    out = _run("JOB=2:4", "logs/t.JOB.log", PY, "-c", "import sys; print(sys.argv[1:])", "a.JOB", "JOBS", "xJOB",
               "JOB", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for i in (2, 3, 4):   # JOB as a word is replaced; inside a longer name it is not
        assert _output(tmp_path / "logs" / f"t.{i}.log") == [str([f"a.{i}", "JOBS", "xJOB", str(i)])]
    assert not (tmp_path / "logs" / "t.1.log").exists()
    assert "Ended (code 0)" in open(tmp_path / "logs" / "t.2.log").read().splitlines()[-1]


def test_a_single_job_without_array(tmp_path):
    out = _run("one.log", PY, "-c", "print('hello')", cwd=tmp_path)
    assert out.returncode == 0 and _output(tmp_path / "one.log") == ["hello"]
    assert out.stdout == "hello\n"   # a job running alone is shown too


def test_arguments_are_never_evaluated(tmp_path):
    hostile = "$(touch PWNED); `touch PWNED` | touch PWNED"
    out = _run("JOB=1:2", "JOB.log", PY, "-c", "import sys; print(sys.argv[1])", hostile, cwd=tmp_path)
    assert out.returncode == 0 and _output(tmp_path / "1.log") == [hostile]
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("max_jobs", ["1", "2"])
def test_failures_are_named_with_their_logs_and_exit_status(tmp_path, max_jobs):
    """Every job runs; each failed one is named with its log (and its last line when not shown); the exit status
    is the first failed job's (2: a named error)."""
    code = ("import sys; i = int(sys.argv[1]); print('working', i); "
            "sys.exit({2: 'prog: conf.yaml: bad key', 3: 5}.get(i, 0)) if i != 2 else "
            "(print('prog: conf.yaml: bad key', file=sys.stderr), sys.exit(2))")
    out = _run("--max-jobs-run", max_jobs, "JOB=1:4", f"{tmp_path}/l.JOB.log", PY, "-c", code, "JOB", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    last2, last3 = ("", "") if max_jobs == "1" else (" (prog: conf.yaml: bad key)", " (working 3)")
    assert out.stderr.splitlines() == [f"run.py: job 2 failed (exit 2): see {tmp_path}/l.2.log{last2}",
                                       f"run.py: job 3 failed (exit 5): see {tmp_path}/l.3.log{last3}"]
    for i in (1, 2, 3, 4):
        assert _output(tmp_path / f"l.{i}.log")[0] == f"working {i}"


def test_at_most_max_jobs_at_once(tmp_path):
    code = ("import os, sys, time; d = sys.argv[1]; os.mkdir(f'{d}/run_{sys.argv[2]}'); "
            "n = len([x for x in os.listdir(d) if x.startswith('run_')]); open(f'{d}/peak_{sys.argv[2]}', 'w')"
            ".write(str(n)); time.sleep(0.4); os.rmdir(f'{d}/run_{sys.argv[2]}')")
    out = _run("--max-jobs-run", "2", "JOB=1:5", "logs/JOB.log", PY, "-c", code, str(tmp_path), "JOB", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    peaks = [int((tmp_path / f"peak_{i}").read_text()) for i in range(1, 6)]
    assert max(peaks) == 2 and out.stdout == ""   # side by side: output only in the logs


@pytest.mark.parametrize("args,message", [
    (["--max-jobs-run", "0", "x.log", "true"], "--max-jobs-run needs a positive integer"),
    (["--mem", "4G", "x.log", "true"], "unknown option --mem"),
    (["JOB=3:1", "x.log", "true"], "an empty job range"),
    (["x.log"], "usage: run.py"),
])
def test_bad_command_lines_are_one_line_and_exit_2(tmp_path, args, message):
    out = _run(*args, cwd=tmp_path)
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1 and message in out.stderr, out.stderr
    assert not (tmp_path / "x.log").exists()


def test_a_missing_program_fails_its_job(tmp_path):
    out = _run("JOB=1:1", "JOB.log", str(tmp_path / "no_such_program"), cwd=tmp_path)
    assert out.returncode == 127 and "job 1 failed (exit 127): see 1.log" in out.stderr
    assert "cannot run" in open(tmp_path / "1.log").read()
