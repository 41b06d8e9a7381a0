"""tools/parse_options.sh: Kaldi-style --name value / --name=value / --dashed-name parsing of listed options."""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tools", "parse_options.sh")


def _run(*args):
    """Source parse_options.sh in a script with defaults; print the resulting variables."""
    body = (f'stage=1\nstop_stage=8\nconfig=\nflag=false\nhidden=secret\nhelp_message="usage: demo"\n'
            f'options=(stage stop_stage config flag)\n. {SCRIPT}\n'
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
    (["--hidden", "x"], "unknown option --hidden"),  # a variable that is not a listed option
    (["--PATH", "/nowhere"], "unknown option --PATH"),
    (["--a[$(touch PWNED)]", "1"], "unknown option"),
])
def test_errors(args, message):
    out = _run(*args)
    assert out.returncode != 0 and message in out.stderr


def test_values_are_never_evaluated(tmp_path):
    hostile = "$(touch PWNED); `touch PWNED`"
    out = subprocess.run(["bash", "-c", f'config=\noptions=(config)\n. {SCRIPT}\nprintf "%s" "$config"', "demo",
                          "--config", hostile], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout == hostile
    assert not (tmp_path / "PWNED").exists()


def test_needs_an_option_list():
    out = subprocess.run(["bash", "-c", f"stage=1\n. {SCRIPT}", "demo", "--stage", "2"], capture_output=True, text=True)
    assert out.returncode != 0 and "needs an array 'options'" in out.stderr


def test_help():
    out = _run("--help")
    assert out.returncode == 0 and "usage: demo" in out.stdout
