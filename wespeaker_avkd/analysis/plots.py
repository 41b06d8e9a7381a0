"""Figures of the report: DET curves of every system, Venn-style diagram of corrected trials."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from wespeaker_avkd.scoring.det_plot import Curve, plot_det_panels, pyplot, save_png
from wespeaker_avkd.utils.naming import system_role

LINE_STYLES = {"student": "-", "baseline": "--"}  # any other system (the teacher): dotted


def system_style(system: str) -> str:
    """Line style of a system in the report's DET figure: students solid, baselines dashed, the teacher dotted."""
    return LINE_STYLES.get(system_role(system) or "", ":")


def det_plot(curves: Mapping[str, Mapping[str, Curve]], path: str) -> None:
    """The report's DET figure: one panel per trial list; curves[list][system] = (p_fa, p_miss, eer) fractions."""
    plot_det_panels(curves, path, style=system_style)


def venn_plot(regions: Mapping[str, int], labels: Sequence[str], title: str, path: str) -> None:
    """Three-circle Venn diagram; regions maps membership bits "ABC" (e.g. "110") to counts."""
    plt = pyplot()
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
    save_png(fig, path)


def ensure_dir(path: str) -> str:
    """Create the parent folder of `path`; return path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return path
