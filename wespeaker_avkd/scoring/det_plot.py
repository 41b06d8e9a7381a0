"""DET figures on probit axes (matplotlib, Agg backend): one panel per trial list, one curve per system.

The package's one DET plotter: `compute_metrics --det` draws one score file through plot_det, the report
(analysis.plots.det_plot) draws every system on every list through plot_det_panels.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from wespeaker_avkd.utils.fileio import atomic_write

# DET axes ticks (percent); the axes run from 0.05 % to 95 % (see docs/metrics.md).
DET_TICKS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 40, 60, 80, 90]
# (p_fa, p_miss, eer) of one system on one list, all fractions; p_fa/p_miss as det_curve returns them.
Curve = tuple[np.ndarray, np.ndarray, float]


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (imported on first use: scoring needs no matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | os.PathLike) -> None:
    """Save a figure as PNG atomically (temporary file beside it, then rename) and close it."""
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)


def plot_det_panels(curves: Mapping[str, Mapping[str, Curve]], path: str | os.PathLike,
                    style: Callable[[str], str] | None = None) -> None:
    """One panel per trial list, side by side; curves[list][system] = (p_fa, p_miss, eer), rates as fractions,
    drawn on Φ⁻¹ (probit) axes with the EER in the legend; style(system) gives a matplotlib line style."""
    from scipy.stats import norm

    plt = pyplot()
    lists = list(curves)
    fig, axes = plt.subplots(1, len(lists), figsize=(5.2 * len(lists), 5.4), squeeze=False)
    lo, hi = norm.ppf(0.0005), norm.ppf(0.95)
    ticks = norm.ppf(np.array(DET_TICKS) / 100)
    for ax, name in zip(axes[0], lists):
        for system, (p_fa, p_miss, eer) in curves[name].items():
            # A rate of 0 or 1 is at infinity on probit axes: clip just inside so the curve reaches the edge.
            x = norm.ppf(np.clip(p_fa, 1e-6, 1 - 1e-6))
            y = norm.ppf(np.clip(p_miss, 1e-6, 1 - 1e-6))
            ax.plot(x, y, style(system) if style else "-", linewidth=1.2, label=f"{system} ({100 * eer:.2f}%)")
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
    save_png(fig, path)


def plot_det(path: str | os.PathLike, p_fa: np.ndarray, p_miss: np.ndarray, eer: float, label: str = "") -> None:
    """One DET curve (rates as fractions, EER as a fraction) as a one-panel figure titled and labelled `label`."""
    name = label or "trials"
    plot_det_panels({name: {name: (p_fa, p_miss, eer)}}, path)
