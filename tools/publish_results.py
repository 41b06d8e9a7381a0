#!/usr/bin/env python3
"""Publish a report as the README's results: copy REPORT_DIR's results.json, results.md and figures (*.png)
into the committed folder egs/voxceleb/v_kd/results/ and rewrite README.md's block between the markers
`<!-- results:begin -->` and `<!-- results:end -->` with the tables made from the copied results.json
(tools/readme_results.py). The repository is the one this script is in (--repo: another checkout's root):

    python tools/publish_results.py egs/voxceleb/v_kd/exp/report   # then commit README.md and the results folder

The report must record the commit and the command that made it (results.json's `commit` and `command`), and
that commit's code must be the code being committed (tests/test_readme_results.py checks both).
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # readme_results beside this file

from readme_results import RESULTS_DIR, replace_block, results_block  # noqa: E402

from wespeaker_avkd.utils.errors import ArgumentParser, InputValueError, UnreadableInputError, run_main  # noqa: E402
from wespeaker_avkd.utils.fileio import atomic_write  # noqa: E402

COPIED = ("results.json", "results.md")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_record(path: str) -> dict:
    """The results.json record at `path`; a missing or unreadable file is one named error."""
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except FileNotFoundError:
        raise UnreadableInputError(f"{path}: no such file (give a report dir of run.sh stage 9)") from None
    except json.JSONDecodeError as err:
        raise InputValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(record, dict):
        raise InputValueError(f"{path}: expected a JSON object")
    return record


def publish(report_dir: str, repo: str = REPO) -> str:
    """Copy the report into <repo>/RESULTS_DIR and rewrite <repo>/README.md's results block; return the block."""
    record = read_record(os.path.join(report_dir, "results.json"))
    block = results_block(record)   # checks every key before anything is written
    dest, readme = os.path.join(repo, RESULTS_DIR), os.path.join(repo, "README.md")
    with open(readme, encoding="utf-8") as f:
        text = replace_block(f.read(), block, readme)
    os.makedirs(dest, exist_ok=True)
    for name in (*COPIED, *sorted(os.path.basename(p) for p in glob.glob(os.path.join(report_dir, "*.png")))):
        source = os.path.join(report_dir, name)
        if not os.path.isfile(source):
            raise UnreadableInputError(f"{source}: no such file (a report dir holds {', '.join(COPIED)})")
        with open(source, "rb") as src, atomic_write(os.path.join(dest, name), "wb", encoding=None) as out:
            shutil.copyfileobj(src, out)
    with atomic_write(readme) as f:
        f.write(text)
    return block


def run(argv: list[str]) -> int:
    """Parse REPORT_DIR [--repo ROOT] and publish."""
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report_dir", help="a report folder of run.sh stage 9 (egs/voxceleb/v_kd/exp/report)")
    parser.add_argument("--repo", default=REPO, help="the checkout whose README.md and results folder are written")
    args = parser.parse_args(argv)
    publish(args.report_dir, args.repo)
    print(f"{RESULTS_DIR}: the report copied; README.md: results block rewritten (in {args.repo})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("publish_results", run, argv)


if __name__ == "__main__":
    sys.exit(main())
