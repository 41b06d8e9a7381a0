"""Run independent work items in this process or in forked worker processes, under one progress bar."""
from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def run_with_progress(work: Callable[[T], int], tasks: Sequence[T], nj: int, total: int, done: int, desc: str,
                      progress: bool = True, unit: str = "utt") -> None:
    """Call work(task) -> units done for every task, in this process (nj <= 1 or one task) or in nj forked
    processes, counting the units on a tqdm bar of `total` that starts at `done` (the units already complete)."""
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, desc=desc, unit=unit, disable=not progress, file=sys.stderr)
    try:
        if nj <= 1 or len(tasks) <= 1:
            for task in tasks:
                bar.update(work(task))
        else:
            with multiprocessing.get_context("fork").Pool(min(nj, len(tasks))) as pool:
                for n in pool.imap_unordered(work, tasks):
                    bar.update(n)
    finally:
        bar.close()
