"""The learning curves of the report: every system's dev EER per epoch (learning_curve.tsv, written by the
trainer's dev_eval) with its training accuracy and AAM loss, and whether the curve has flattened.

A curve is judged on its dev EER averaged over the dev lists (the lists share utterances, so the mean is one
curve, not three). With the last WINDOW evaluated epochs L and the WINDOW before them P, the change is
mean(L) - mean(P). Its noise comes from the curve itself: sigma, the epoch-to-epoch fluctuation, estimated from
the successive differences of the last 2 * WINDOW points (std(diff) / sqrt(2), which a steady trend barely
inflates); the difference of two means of WINDOW points then has standard error sigma * sqrt(2 / WINDOW).
The curve is flat when |change| <= 2 standard errors: training longer would move the dev EER by less than the
epoch-to-epoch noise. Fewer than 2 * WINDOW evaluated epochs: not judged.
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from wespeaker_avkd.utils.curve_file import MISSING, curve_path, eer_column, eer_lists, read_curve

WINDOW = 3


@dataclasses.dataclass
class CurveSummary:
    """One system's learning curve at one seed: the evaluated epochs, their dev EER (mean over the lists, %),
    the last epoch's training accuracy and AAM loss, and the flatness judgement (see the module docstring)."""

    system: str
    seed: int
    lists: list[str]
    epochs: list[int]
    dev_eer: list[float]
    train_acc: float
    aam_loss: float
    change: float | None = None
    noise: float | None = None
    flat: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON record."""
        return dataclasses.asdict(self)


def _float(text: str) -> float:
    """A curve cell as a float (NaN for '-')."""
    return float("nan") if text == MISSING else float(text)


def flatness(values: Sequence[float], window: int = WINDOW) -> tuple[float, float, bool] | None:
    """(change, noise sigma, flat) of a curve's last 2 * window points (module docstring); None when shorter."""
    if len(values) < 2 * window:
        return None
    tail = np.asarray(values[-2 * window:], dtype=np.float64)
    change = float(tail[window:].mean() - tail[:window].mean())
    sigma = float(np.std(np.diff(tail), ddof=1) / math.sqrt(2.0))
    return change, sigma, abs(change) <= 2.0 * sigma * math.sqrt(2.0 / window)


def summarise_curve(system: str, seed: int, rows: Sequence[Mapping[str, str]]) -> CurveSummary | None:
    """The summary of one learning_curve.tsv's rows; None when it has no dev EER column."""
    if not rows:
        return None
    lists = eer_lists(rows[0])
    if not lists:
        return None
    epochs, eers = [], []
    for row in rows:
        values = [_float(row[eer_column(name)]) for name in lists]
        if all(math.isfinite(v) for v in values):
            epochs.append(int(row["epoch"]))
            eers.append(float(np.mean(values)))
    last = rows[-1]
    summary = CurveSummary(system, seed, lists, epochs, eers, _float(last.get("acc", MISSING)),
                           _float(last.get("aam", MISSING)))
    judged = flatness(eers)
    if judged is not None:
        summary.change, summary.noise, summary.flat = judged
    return summary


def collect_curves(exp: str, seeds: Sequence[int], names: Sequence[str]) -> list[CurveSummary]:
    """The summaries of every <exp>/seed<N>/<system>/learning_curve.tsv that exists, in (system, seed) order."""
    out = []
    for name in names:
        for seed in seeds:
            path = curve_path(os.path.join(exp, f"seed{seed}", name))
            summary = summarise_curve(name, seed, read_curve(path))
            if summary is not None:
                out.append(summary)
    return out


def _verdict(s: CurveSummary) -> str:
    """'flat', 'still moving' or 'too few epochs'."""
    if s.flat is None:
        return f"too few epochs (< {2 * WINDOW} measured)"
    return "flat" if s.flat else "still moving"


def curves_markdown(curves: Sequence[CurveSummary]) -> str:
    """The report's learning-curve section: one row per system and seed."""
    if not curves:
        return ""
    lines = ["## Learning curves on dev", "",
             f"Dev EER % (mean over the dev lists {'/'.join(curves[0].lists)}) after each evaluated epoch, from each "
             f"system's learning_curve.tsv. Change: mean of the last {WINDOW} evaluated epochs minus the "
             f"{WINDOW} before; noise: the epoch-to-epoch fluctuation of the curve (sigma); flat when |change| <= 2 "
             f"sigma sqrt(2/{WINDOW}). Figure: learning_curves.png.", "",
             "| System | seed | epochs | final train acc | final AAM loss | dev EER % first -> last | change "
             "[noise sigma] | verdict |", "|---|---|---|---|---|---|---|---|"]
    for s in curves:
        change = "-" if s.change is None else f"{s.change:+.2f} [{s.noise:.2f}]"
        span = f"{s.dev_eer[0]:.2f} -> {s.dev_eer[-1]:.2f}" if s.dev_eer else "-"
        lines.append(f"| {s.system} | {s.seed} | {s.epochs[-1] if s.epochs else '-'} | {s.train_acc:.3f} | "
                     f"{s.aam_loss:.3f} | {span} | {change} | {_verdict(s)} |")
    moving = [f"{s.system} (seed {s.seed})" for s in curves if s.flat is False]
    lines += ["", "Every curve is flat at its end." if not moving else
              f"Still moving at the end: {', '.join(moving)}; their numbers describe an unfinished training.", ""]
    return "\n".join(lines)


def plot_curves(curves: Sequence[CurveSummary], path: str) -> None:
    """learning_curves.png: dev EER per epoch, one panel per modality family (name prefix), one line per
    system and seed."""
    from wespeaker_avkd.scoring.det_plot import pyplot, save_png

    plt = pyplot()
    groups: dict[str, list[CurveSummary]] = {}
    for s in curves:
        groups.setdefault(s.system.split("_")[0], []).append(s)
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4), squeeze=False)
    for ax, (group, members) in zip(axes[0], sorted(groups.items())):
        for s in members:
            ax.plot(s.epochs, s.dev_eer, marker=".", label=f"{s.system} s{s.seed}")
        ax.set_title(f"{group}: dev EER % per epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel("dev EER %")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    save_png(fig, path)  # closes the figure
