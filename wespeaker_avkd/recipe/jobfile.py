"""Job files of the recipe: one job a line, its command's words separated by tabs; the stage input checks.

A job line is an argument vector, never a shell string: `bin.plan job FILE N` executes line N as it is.
Tables written for bin.extract and bin.score (their `--jobs` files) are tab-separated too, so no word may hold
a tab or a newline (run.sh refuses such paths before planning).
"""
from __future__ import annotations

import os
from collections.abc import Sequence

from wespeaker_avkd.utils.errors import InputValueError, NamedError
from wespeaker_avkd.utils.fileio import atomic_write


class MissingInputError(NamedError, FileNotFoundError):
    """A stage's input that an earlier stage makes is missing; the message names that stage."""


def need(path: str, stages: str | int) -> None:
    """Stop the stage when `path` does not exist, naming the stage(s) that make it."""
    if not os.path.exists(path):
        raise MissingInputError(f"{path} missing: run stage {stages} first")


def write_rows(path: str, rows: Sequence[Sequence[str]]) -> None:
    """Write rows as tab-separated lines to `path` (atomically); a word holding a tab or newline is refused."""
    for row in rows:
        for word in row:
            if "\t" in word or "\n" in word:
                raise InputValueError(f"{path}: the word {word!r} holds a tab or a newline (job files are "
                                      "tab-separated lines)")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with atomic_write(path) as f:
        f.writelines("\t".join(row) + "\n" for row in rows)


def read_job(path: str, index: str) -> list[str]:
    """Line `index` (1-based, as a job array's JOB) of the job file `path`, split into its words."""
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    if not index.isdigit() or not 1 <= int(index) <= len(lines):
        raise InputValueError(f"{path}: no job {index!r} (the file lists jobs 1 to {len(lines)})")
    return lines[int(index) - 1].split("\t")
