"""The recipe's shell and python helpers agree with the package: student names, the tuned weight lookup."""
import itertools
import os
import subprocess
import sys

import pytest
import yaml

from wespeaker_avkd.analysis.report import student_name

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(ROOT, "egs", "voxceleb", "v_kd")
LOSSES = ("COS", "KL", "MMD")
COMBOS = ["+".join(p) for n in (1, 2, 3) for p in itertools.permutations(LOSSES, n)]


def test_shell_student_name_matches_the_report():
    """local/systems.sh:student_name gives analysis.report.student_name for every modality and combination."""
    pairs = [(m, c) for m in ("visual", "audio") for c in COMBOS]
    body = ". local/common.sh\n. local/systems.sh\n" + "".join(f'student_name {m} "{c}"; echo\n' for m, c in pairs)
    out = subprocess.run(["bash", "-c", body], capture_output=True, text=True, cwd=RECIPE)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [student_name(m, c) for m, c in pairs]
    assert student_name("visual", "COS+KL") == "visual_kd_cos_kl"


def _chosen(tmp_path, table, modality, loss, grid):
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(table))
    out = subprocess.run([sys.executable, os.path.join(RECIPE, "local", "chosen_weight.py"), str(path), modality, loss,
                          *grid], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("entry,loss,expected", [
    ({"alpha": 10.0, "beta": 0.0, "gamma": 0.0}, "KL", "10"),
    ({"alpha": 0.0, "beta": 0.1, "gamma": 0.0}, "COS", "0.1"),
    ({"gamma": 100}, "MMD", "100"),
    ({"alpha": 0.0, "beta": 0.0, "gamma": 3.0}, "MMD", ""),         # not a grid value: no tuning run
    ({"alpha": 1.0, "beta": 1.0, "gamma": 0.0}, "KL", ""),          # two losses: not the tuning run
    ({"losses": [{"name": "KL", "weight": 1.0}]}, "KL", ""),        # another form: not matched
])
def test_chosen_weight(tmp_path, entry, loss, expected):
    table = {"visual": {loss: entry}}
    assert _chosen(tmp_path, table, "visual", loss, ["0.1", "1", "10", "100"]) == expected
    assert _chosen(tmp_path, table, "audio", loss, ["0.1", "1", "10", "100"]) == ""
