"""Figures of the report: DET curves of every system, Venn-style diagram of corrected trials."""
from __future__ import annotations

import os
from typing import Mapping, Sequence, Tuple

import numpy as np

# DET axes ticks (percent), as WeSpeaker draws them.
DET_TICKS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 40, 60, 80, 90]


def _pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    """Save a figure atomically (temporary file beside it, then rename)."""
    from wespeaker_avkd.utils.fileio import atomic_write

    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")


def det_plot(curves: Mapping[str, Mapping[str, Tuple[np.ndarray, np.ndarray, float]]], path: str) -> None:
    """One panel per trial list; curves[list][system] = (p_fa, p_miss, eer) fractions, probit axes."""
    from scipy.stats import norm

    plt = _pyplot()
    lists = list(curves)
    fig, axes = plt.subplots(1, len(lists), figsize=(5.2 * len(lists), 5.4), squeeze=False)
    lo, hi = norm.ppf(0.0005), norm.ppf(0.95)
    ticks = norm.ppf(np.array(DET_TICKS) / 100)
    for ax, name in zip(axes[0], lists):
        for system, (p_fa, p_miss, eer) in curves[name].items():
            x = norm.ppf(np.clip(p_fa, 1e-6, 1 - 1e-6))
            y = norm.ppf(np.clip(p_miss, 1e-6, 1 - 1e-6))
            style = "-" if "kd" in system else ("--" if "baseline" in system else ":")
            ax.plot(x, y, style, linewidth=1.2, label=f"{system} ({100 * eer:.2f}%)")
        ax.plot([lo, hi], [lo, hi], color="0.7", linewidth=0.6)
        ax.set_xticks(ticks, [f"{t:g}" for t in DET_TICKS])
        ax.set_yticks(ticks, [f"{t:g}" for t in DET_TICKS])
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("false alarm rate (%)")
        ax.set_ylabel("miss rate (%)")
        ax.set_title(f"DET, trials {name} (EER in legend)")
        ax.grid(True, linewidth=0.3)
        ax.legend(fontsize=6, loc="lower left")
    _save(fig, path)
    plt.close(fig)


def venn_plot(regions: Mapping[str, int], labels: Sequence[str], title: str, path: str) -> None:
    """Three-circle Venn diagram; regions maps membership bits "ABC" (e.g. "110") to counts."""
    plt = _pyplot()
    from matplotlib.patches import Circle

    fig, ax = plt.subplots(figsize=(6.2, 5.6))
    centres = [(-0.55, 0.35), (0.55, 0.35), (0.0, -0.55)]
    colours = ["tab:red", "tab:green", "tab:blue"]
    for (cx, cy), colour, label, anchor in zip(centres, colours, labels, [(-1.2, 1.45), (1.2, 1.45), (0, -1.75)]):
        ax.add_patch(Circle((cx, cy), 1.0, alpha=0.22, color=colour))
        ax.text(*anchor, label, ha="center", va="center", fontsize=9, color=colour)
    positions = {"100": (-1.0, 0.6), "010": (1.0, 0.6), "001": (0.0, -1.05), "110": (0.0, 0.75),
                 "101": (-0.6, -0.35), "011": (0.6, -0.35), "111": (0.0, 0.05)}
    for key, (x, y) in positions.items():
        weight = "bold" if key in ("110", "111") else "normal"
        ax.text(x, y, str(regions.get(key, 0)), ha="center", va="center", fontsize=11, fontweight=weight)
    outside = regions.get("000")
    if outside is not None:
        ax.text(1.55, -1.6, f"outside: {outside}", ha="right", fontsize=8, color="0.4")
    ax.set_xlim(-2.0, 2.0)
    ax.set_ylim(-2.0, 1.8)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    _save(fig, path)
    plt.close(fig)


def ensure_dir(path: str) -> str:
    """Create the parent folder of `path`; return path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return path
