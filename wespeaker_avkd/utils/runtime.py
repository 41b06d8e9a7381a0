"""Process set-up shared by the command-line tools: the package's log handlers, seeding and CPU thread counts.

Training (train/trainer.py) and extraction (bin/extract.py) both call these; they live at the ground layer so
that neither has to import the other.
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
import sys

import numpy as np
import torch

from wespeaker_avkd.utils.errors import InputValueError

logger = logging.getLogger("wespeaker_avkd.runtime")


def default_num_threads() -> int:
    """CPU cores this process may use (its affinity mask on Linux, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_cpu_threads(requested: int | None = None, share: int = 1) -> int:
    """torch intra-op threads = requested (clamped to the cores this process may use: more only oversubscribe,
    and beyond what the system allows OpenMP aborts) or cores // share; inter-op threads 1 (our models run one
    op at a time, extra inter-op threads only contend). Returns the count used."""
    cores = default_num_threads()
    if requested is not None and int(requested) < 1:
        raise InputValueError(f"--num_threads must be >= 1, got {requested}")
    threads = max(1, cores // max(1, share)) if requested is None else min(int(requested), cores)
    if requested is not None and int(requested) > cores:
        logger.warning("num_threads %d > the %d cores this process may use: using %d", requested, cores, cores)
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # only settable before the first parallel op of the process
        torch.set_num_interop_threads(1)
    return threads


def setup_logging(exp_dir: str | None, is_main: bool) -> None:
    """Log the package to stderr and (when exp_dir is given) to exp_dir/train.log, appending across resumed
    runs; only the main rank (is_main) logs. Calling it again replaces the handlers it added before."""
    root = logging.getLogger("wespeaker_avkd")
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        if getattr(handler, "_wespeaker_avkd", False):
            root.removeHandler(handler)
            handler.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = []
    if is_main:
        handlers.append(logging.StreamHandler(sys.stderr))
        if exp_dir:
            os.makedirs(exp_dir, exist_ok=True)
            handlers.append(logging.FileHandler(os.path.join(exp_dir, "train.log")))
    for handler in handlers:
        handler.setFormatter(fmt)
        handler._wespeaker_avkd = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.propagate = False


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's (CPU and CUDA) global generators with `seed`."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
