"""tools/bench_scoring.py runs end to end at a tiny size and its pipelines agree on EER and minDCF."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bench_scoring_smoke(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench_scoring.py"), "--sizes", "3000",
                        "--num_emb", "300", "--dim", "16", "--loop_sample", "200", "--workdir", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for tag in ("(a) ours", "(b) numpy", "(c) loop", "speed-up a/b", "speed-up a/c", "peak RSS (a)"):
        assert tag in r.stdout
    assert "agree: True" in r.stdout
    assert " CPUs (" in r.stdout.splitlines()[0]  # the header names the CPU model next to the count
