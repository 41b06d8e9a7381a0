"""The recipe's shell and python helpers agree with the package: student names, the tuned weight lookup."""
import itertools
import os
import subprocess
import sys

import pytest
import yaml

from wespeaker_avkd.utils.naming import EQ7_WEIGHT, student_name, tuning_run_name

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(ROOT, "egs", "voxceleb", "v_kd")
LOSSES = ("COS", "KL", "MMD")
COMBOS = ["+".join(p) for n in (1, 2, 3) for p in itertools.permutations(LOSSES, n)]


def test_shell_names_come_from_the_package():
    """local/systems.sh's student_name, tune_dir and kd_weight_key give utils.naming's names for every modality,
    combination and grid weight, and refuse what load_names was not given."""
    pairs = [(m, c) for m in ("visual", "audio") for c in COMBOS]
    grid = ["0.1", "1", "10", "100"]
    tunes = [(m, loss, w) for m in ("visual", "audio") for loss in LOSSES for w in grid]
    body = (". local/common.sh\n. local/systems.sh\nexp=EXP\n"
            f'load_names "visual audio" "{" ".join(COMBOS)}" "{" ".join(grid)}"\n'
            + "".join(f'student_name {m} "{c}"; echo\n' for m, c in pairs)
            + "".join(f"tune_dir {m} {loss} {w}; echo\n" for m, loss, w in tunes)
            + "".join(f"kd_weight_key {loss}\n" for loss in LOSSES))
    out = subprocess.run(["bash", "-c", body], capture_output=True, text=True, cwd=RECIPE)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ([student_name(m, c) for m, c in pairs]
                                  + [f"EXP/tune/{tuning_run_name(m, loss, w)}" for m, loss, w in tunes]
                                  + [EQ7_WEIGHT[loss] for loss in LOSSES])
    assert student_name("visual", "COS+KL") == "visual_kd_cos_kl"
    assert tuning_run_name("audio", "KL", "0.1") == "audio_kd_kl_w0.1"
    assert EQ7_WEIGHT == {"KL": "alpha", "COS": "beta", "MMD": "gamma"}   # paper Eq. 7
    for call, what in (('student_name audio "KL+COS+MMD"', "no student name"), ("tune_dir audio KL 3", "no tuning run"),
                       ("kd_weight_key XYZ", "no weight key")):
        bad = subprocess.run(["bash", "-c", f'. local/common.sh\n. local/systems.sh\nload_names audio KL 1\n{call}'],
                             capture_output=True, text=True, cwd=RECIPE)
        assert bad.returncode != 0 and what in bad.stderr, (call, bad.stderr)


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


@pytest.mark.parametrize("systems,lines_per_system,expected_processes", [
    (1, 4, 1),     # the default run's teacher: one system, two job slots -> one process, never an empty share
    (2, 2, 2),
    (3, 2, 2),
    (0, 0, 0),
])
def test_extract_run_deals_whole_systems_and_starts_no_empty_process(tmp_path, systems, lines_per_system,
                                                                    expected_processes):
    """local/systems.sh:extract_run starts min(--nj, systems) extraction processes, each with whole systems."""
    jobs_file = tmp_path / "jobs.tsv"
    jobs_file.write_text("".join(f"exp/s{s}\tdata/p{p}\texp/s{s}/embeddings/p{p}\t0\t-\n"
                                 for s in range(systems) for p in range(lines_per_system)))
    calls = tmp_path / "calls"
    # python3 is replaced by a function that records which jobs file each extraction process got
    body = f"""
set -euo pipefail
exp={tmp_path}/exp; jobs=2; ncores=2; num_gpus=0; overwrite=false; progress=false; side_by_side=false; threads=2
. local/common.sh
. local/jobs.sh
. local/systems.sh
refresh_flags
python3() {{
  local f; f=$(printf '%s\\n' "$@" | sed -n '/^--jobs$/{{n;p}}')
  # one append per process (a short line is written at once): processes side by side never interleave
  printf '%s\\n' "$(cut -f1 "$f" | sort -u | tr '\\n' ' ')" >> {calls}
}}
extract_run {jobs_file} t
"""
    out = subprocess.run(["bash", "-c", body], capture_output=True, text=True, cwd=RECIPE)
    assert out.returncode == 0, out.stderr
    shares = [line.split() for line in calls.read_text().splitlines()] if calls.exists() else []
    assert len(shares) == expected_processes
    assert all(shares), f"an extraction process got no system: {shares}"
    dealt = [s for share in shares for s in share]
    assert sorted(dealt) == [f"exp/s{s}" for s in range(systems)]   # every system once, never split
