"""tools/parse_options.sh: Kaldi-style --name value / --name=value / --dashed-name parsing."""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tools", "parse_options.sh")


def _run(*args):
    """Source parse_options.sh in a script with defaults; print the resulting variables."""
    body = (f'stage=1\nstop_stage=8\nconfig=\nflag=false\nhelp_message="usage: demo"\n. {SCRIPT}\n'
            'echo "stage=$stage stop_stage=$stop_stage config=$config flag=$flag rest=$*"\n')
    return subprocess.run(["bash", "-c", body, "demo"] + list(args), capture_output=True, text=True)


def test_forms():
    out = _run("--stage", "3", "--stop-stage=5", "--config", "conf/a b.yaml", "--flag", "true")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "stage=3 stop_stage=5 config=conf/a b.yaml flag=true rest="


def test_stop_stage_underscore_and_rest():
    out = _run("--stop_stage", "7", "positional", "--stage", "2")
    assert out.stdout.strip() == "stage=1 stop_stage=7 config= flag=false rest=positional --stage 2"


@pytest.mark.parametrize("args,message", [
    (["--stgae", "3"], "unknown option --stgae"),
    (["--stage"], "needs a value"),
    (["--flag", "yes"], "expects true or false"),
])
def test_errors(args, message):
    out = _run(*args)
    assert out.returncode != 0 and message in out.stderr


def test_help():
    out = _run("--help")
    assert out.returncode == 0 and "usage: demo" in out.stdout
