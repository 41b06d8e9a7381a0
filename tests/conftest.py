"""Shared pytest setup: deterministic, two-thread torch so the suite behaves the same on every 2-core box."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

try:
    import torch

    torch.set_num_threads(2)
except ImportError:  # the scorer tests run without torch
    pass
