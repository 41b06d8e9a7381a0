"""tools/calibrate_bootstrap.py end to end on tiny sizes: the coverage table, the json, a clear argument error."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "calibrate_bootstrap.py")


def _run(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, env=env, timeout=300)


def test_table_and_json(tmp_path):
    out = tmp_path / "cal.json"
    done = _run("--num_ids", "20", "--num_lists", "4", "--num_draws", "30", "--json", str(out))
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 20 |")]
    assert len(rows) == 4 and sum("(calibrated)" in r for r in rows) == 1
    record = json.loads(out.read_text())
    (result,) = record["results"]
    assert result["num_ids"] == 20 and result["num_lists"] == 4
    assert set(result["schemes"]) == {"per-identity", "one-way", "two-way", "trials"}
    assert result["calibrated"] in ("per-identity", "one-way", "two-way")
    assert "--num_ids 20" in record["command"]


def test_argument_error():
    done = _run("--num_lists", "1")
    assert done.returncode == 2 and "--num_lists" in done.stderr
