"""Targets shared between lists (unordered utterance pairs, nontargets ignored) and the report's provenance
(commit and dirty state of a git checkout, or a plain statement that there is none)."""
import os
import subprocess

import numpy as np

from wespeaker_avkd.analysis.overlap import shared_targets, shared_targets_lines
from wespeaker_avkd.analysis.provenance import code_provenance


def test_shared_targets_counts_unordered_target_pairs():
    lists = {"O": (["a", "c", "x"], ["b", "d", "y"], np.array([1, 1, 0])),
             "E": (["b", "c", "x", "e"], ["a", "e", "y", "f"], np.array([1, 0, 1, 1])),
             "H": (["x"], ["y"], np.array([0]))}
    record = shared_targets(lists)
    assert record["targets"] == {"O": 2, "E": 3, "H": 0}
    assert record["shared"] == {"O/E": 1, "O/H": 0, "E/H": 0}  # (a, b) = (b, a); (c, d)/(c, e) differ
    text = " ".join(shared_targets_lines(record))
    assert "O and E share 1 target trials" in text and "not independent" in text
    assert shared_targets_lines(shared_targets({"O": lists["O"]})) == []


def test_provenance_of_a_checkout_and_of_a_plain_folder(tmp_path):
    plain = tmp_path / "plain" / "wespeaker_avkd"
    plain.mkdir(parents=True)
    record = code_provenance("cmd --x 'a b'", str(plain))
    assert record["commit"] is None and "not in a git checkout" in record["git"]
    assert record["command"] == "cmd --x 'a b'"
    repo = tmp_path / "repo"
    (repo / "wespeaker_avkd").mkdir(parents=True)
    (repo / "egs").mkdir()
    (repo / "wespeaker_avkd" / "m.py").write_text("x = 1\n")
    (repo / "egs" / "run.sh").write_text("true\n")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    record = code_provenance("", str(repo / "wespeaker_avkd"))
    assert record["commit"] == head and record["dirty"] == {"wespeaker_avkd": False, "egs": False}
    (repo / "wespeaker_avkd" / "m.py").write_text("x = 2\n")
    record = code_provenance("", str(repo / "wespeaker_avkd"))
    assert record["dirty"] == {"wespeaker_avkd": True, "egs": False} and "wespeaker_avkd/ dirty" in record["git"]
