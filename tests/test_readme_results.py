"""README.md's results are a copy of a committed report made by the landed code: its marked block is the block
tools/readme_results.py makes from egs/voxceleb/v_kd/results/results.json, and that file's commit has the code
of HEAD. The generator, the publisher and the commit check are tested on a fixture report and a scratch git
repository; the checks of the real README skip (saying why) while no report is published."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from wespeaker_avkd.utils.errors import InputKeyError, InputValueError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, "tests", "fixtures", "readme_results", "results.json")
sys.path.insert(0, os.path.join(REPO, "tools"))
readme_results = importlib.import_module("readme_results")
_spec = importlib.util.spec_from_file_location("publish_results", os.path.join(REPO, "tools", "publish_results.py"))
publish_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(publish_results)
PUBLISHED = os.path.join(REPO, readme_results.RESULTS_DIR, "results.json")


def _fixture() -> dict:
    with open(FIXTURE, encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------- the README of this checkout
def _published() -> dict:
    if not os.path.isfile(PUBLISHED):
        pytest.skip(f"no published report yet ({readme_results.RESULTS_DIR}/results.json is absent; "
                    "tools/publish_results.py REPORT_DIR writes it and the README block)")
    with open(PUBLISHED, encoding="utf-8") as f:
        return json.load(f)


def test_readme_block_is_the_published_report():
    record = _published()
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        block = readme_results.current_block(f.read())
    assert block == readme_results.results_block(record), "README.md's results block differs from the block " \
        "made from the committed results.json: rerun tools/publish_results.py"


def test_published_report_describes_this_code():
    record = _published()
    if shutil.which("git") is None or subprocess.run(["git", "-C", REPO, "rev-parse", "--git-dir"],
                                                     capture_output=True).returncode:
        pytest.skip("not a git checkout: the report's commit cannot be compared with this code")
    known = subprocess.run(["git", "-C", REPO, "cat-file", "-e", f"{record['commit']}^{{commit}}"],
                           capture_output=True).returncode == 0
    shallow = subprocess.run(["git", "-C", REPO, "rev-parse", "--is-shallow-repository"], capture_output=True,
                             text=True).stdout.strip() == "true"
    if shallow and not known:
        pytest.skip(f"a shallow clone without the report's commit {record['commit']}: fetch the history to compare")
    assert readme_results.code_change_since(REPO, record["commit"]) == ""


# ---------------------------------------------------------------- the generator on a fixture report
def test_block_holds_the_reports_numbers():
    block = readme_results.results_block(_fixture()).splitlines()
    assert block[0] == readme_results.BEGIN and block[-1] == readme_results.END
    assert "Report of commit `0123456789abcdef0123456789abcdef01234567`, made by `egs/voxceleb/run.sh --seeds '1 2'`" \
           " (seeds 1, 2)" in block[3]
    assert "| System | O EER % mean ± std [95 % CI] | E EER % mean ± std [95 % CI] |" in block
    assert "| audio_baseline | 12.28 ± 3.60 [9.70, 15.20] | 13.59 ± - [11.40, 16.10] |" in block   # NaN std: '-'
    assert "| teacher | 6.33 ± 1.11 [4.60, 8.40] | missing |" in block
    # the recorded MDE is shown (O), a record without one shows none (E)
    assert "| KL | -2.32 [-3.70, -1.20], better (better), MDE 2.15 | +0.50 [-0.20, +1.90], n.s. (n.s.) |" in block
    assert "Pair minus its better single-loss student (chosen on dev):" in block
    assert "| audio COS+KL - KL (KL better on dev (9.10 vs 9.80 %)) | -0.40 [-2.00, +1.20], n.s. (n.s.), MDE 2.50 |" \
        in block
    assert "Teacher minus" not in "\n".join(block)  # an empty section is left out


def test_block_refuses_a_report_without_commit():
    record = _fixture()
    del record["commit"]
    with pytest.raises(InputKeyError, match="r.json: results.json has no 'commit'"):
        readme_results.results_block(record, "r.json")


def test_block_refuses_a_report_of_uncommitted_code():
    record = _fixture()
    record["provenance"] = {"dirty": {"wespeaker_avkd": False, "egs": True}}
    with pytest.raises(InputValueError, match="r.json: the report was made from uncommitted changes in egs/"):
        readme_results.results_block(record, "r.json")
    record["provenance"]["dirty"]["egs"] = False
    assert readme_results.results_block(record, "r.json").startswith(readme_results.BEGIN)


@pytest.mark.parametrize("text", ["no markers", "<!-- results:end --> <!-- results:begin -->",
                                  "<!-- results:begin --> <!-- results:begin --> <!-- results:end -->"])
def test_markers_must_be_once_and_in_order(text):
    with pytest.raises(InputValueError, match="README.md: expected the markers"):
        readme_results.replace_block(text, "x")


def test_publish_copies_the_report_and_rewrites_only_the_block(tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    shutil.copy(FIXTURE, report / "results.json")
    (report / "results.md").write_text("# tables\n")
    (report / "det.png").write_bytes(b"\x89PNG")
    repo = tmp_path / "repo"
    repo.mkdir()
    readme = repo / "README.md"
    readme.write_text("intro\n<!-- results:begin -->\nold\n<!-- results:end -->\nclaims\n")
    dest = repo / readme_results.RESULTS_DIR
    assert publish_results.main([str(report), "--repo", str(repo)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n<!-- results:begin -->\n") and text.endswith("<!-- results:end -->\nclaims\n")
    assert readme_results.current_block(text) == readme_results.results_block(_fixture())
    assert sorted(os.listdir(dest)) == ["det.png", "results.json", "results.md"]
    assert (dest / "results.json").read_bytes() == (report / "results.json").read_bytes()


def test_publish_refuses_a_report_without_command_and_writes_nothing(tmp_path, capsys):
    record = _fixture()
    del record["command"]
    (tmp_path / "results.json").write_text(json.dumps(record))
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:begin --><!-- results:end -->")
    assert publish_results.main([str(tmp_path), "--repo", str(tmp_path)]) == 2
    assert "has no 'command'" in capsys.readouterr().err
    assert not (tmp_path / "egs").exists() and readme.read_text() == "<!-- results:begin --><!-- results:end -->"


# ---------------------------------------------------------------- the commit check on a scratch repository
def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_code_change_since_sees_code_but_not_results_or_docs(tmp_path):
    repo = tmp_path / "repo"
    (repo / "wespeaker_avkd").mkdir(parents=True)
    (repo / "egs/voxceleb/v_kd/results").mkdir(parents=True)
    (repo / "wespeaker_avkd/a.py").write_text("x = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "a")
    made = _git(repo, "rev-parse", "HEAD")
    for path in ("egs/voxceleb/v_kd/results/results.json", "egs/voxceleb/v_kd/README.md", "README.md"):
        (repo / path).write_text("{}\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "publish")
    assert readme_results.code_change_since(str(repo), made) == ""
    (repo / "egs/voxceleb/v_kd/run.sh").write_text("echo\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "code")
    assert readme_results.code_change_since(str(repo), made) == \
        f"the code changed since {made}: egs/voxceleb/v_kd/run.sh"
    assert "is no commit of this repository" in readme_results.code_change_since(str(repo), "f" * 40)
    _git(repo, "checkout", "-q", "-b", "side", made)
    (repo / "wespeaker_avkd/a.py").write_text("x = 2\n")
    _git(repo, "commit", "-qam", "side")
    side = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "-")
    assert readme_results.code_change_since(str(repo), side) == f"results.json's commit {side} is not in the " \
                                                                   "history of HEAD"
