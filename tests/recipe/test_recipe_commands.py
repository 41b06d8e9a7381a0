"""The commands the recipe issues, without training anything (tests/recipe/dry_run.py): for each option set of
dry_run.VARIANTS the same entry-point calls, with the same arguments, as tests/fixtures/recipe_commands/<name>.log
records (written from the recipe before the planner replaced its bash job pool). Where jobs run one at a time
(--nj 1, GPUs) the order is the same too; side by side only jobs of one parallel step may swap."""
import os
import re
import shutil
from pathlib import Path

import pytest

from .dry_run import VARIANTS, dry_run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recipe_commands"
SEQUENTIAL = {"nj1", "shard", "gpu1", "gpu2"}   # one job at a time: the call order is fixed


def _two_cores() -> list[str]:
    """The recorded runs had 2 usable cores (--num_threads of each job depends on it): pin the run to two."""
    if shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs taskset and two cores (the fixtures' --num_threads are those of a 2-core run)")
    return sorted(os.sched_getaffinity(0))[:2]


def _check(tmp_path, name):
    cores = _two_cores()
    calls = dry_run(tmp_path, *VARIANTS[name], taskset=cores)
    expected = (FIXTURES / f"{name}.log").read_text().splitlines()
    if name in SEQUENTIAL:
        assert calls == expected
    else:
        assert sorted(calls) == sorted(expected)
        # steps stay in order: jobs side by side are calls of one entry point, so the run of entry points with
        # repeats collapsed is the recorded one
        assert _steps(calls) == _steps(expected)


def _steps(calls: list[str]) -> list[str]:
    """The entry points called, consecutive repeats collapsed."""
    names = [re.search(r"(?:^| )-m (\S+)", call).group(1) for call in calls]
    return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]


def test_default_run_issues_the_recorded_commands(tmp_path):
    _check(tmp_path, "default")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "default"])
def test_option_sets_issue_the_recorded_commands(tmp_path, name):
    _check(tmp_path, name)
