"""DET curve figure on probit axes with the EER marked (matplotlib, Agg backend)."""
from __future__ import annotations

import os

import numpy as np

from wespeaker_avkd.utils.fileio import atomic_write

_TICKS = [0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4]  # 0.01 % .. 40 %


def plot_det(path: str | os.PathLike, p_fa: np.ndarray, p_miss: np.ndarray, eer: float, label: str = "") -> None:
    """Draw the DET curve (rates as fractions) on Φ⁻¹ axes, mark the EER point, save a PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    lo, hi = _TICKS[0] / 2, 0.5
    x = norm.ppf(np.clip(p_fa, lo, hi))
    y = norm.ppf(np.clip(p_miss, lo, hi))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(x, y, lw=1.5, label=label or None)
    e = norm.ppf(min(max(eer, lo), hi))
    ax.plot([e], [e], "o", color="red", label=f"EER {100 * eer:.2f}%")
    ax.plot([norm.ppf(lo), norm.ppf(hi)], [norm.ppf(lo), norm.ppf(hi)], ":", color="gray", lw=0.8)
    ticks = norm.ppf(_TICKS)
    labels = [f"{100 * t:g}" for t in _TICKS]
    for axis_ticks, axis_labels in ((ax.set_xticks, ax.set_xticklabels), (ax.set_yticks, ax.set_yticklabels)):
        axis_ticks(ticks)
        axis_labels(labels)
    ax.set_xlim(norm.ppf(lo), norm.ppf(hi))
    ax.set_ylim(norm.ppf(lo), norm.ppf(hi))
    ax.set_xlabel("False alarm rate (%)")
    ax.set_ylabel("Miss rate (%)")
    ax.grid(True, lw=0.4)
    ax.legend(loc="upper right")
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)
