"""Corrected-trials analysis (paper, Figure 3): trials a baseline gets wrong and a KD student gets right.

A system decides "target" when score >= its own EER threshold. For a student S of modality m with baseline B
and the other modality's baseline O on one trial list:
  corrected   = wrong(B) & right(S)
  of those, how many right(O)   (the paper: 4,877 of 5,737 for the visual student on Vox1-E)
  broken      = right(B) & wrong(S)
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from wespeaker_avkd.utils.errors import InputKeyError


def decisions_correct(scores: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """(M,) bool: is the accept/reject decision at `threshold` (accept when score >= threshold) right."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in shape")
    return (scores >= threshold) == (labels == 1)


def align_trials(reference: Sequence[tuple[str, str]], other: Sequence[tuple[str, str]]) -> np.ndarray:
    """Index array idx with other[idx[i]] == reference[i]; a trial missing from `other` raises KeyError."""
    if list(reference) == list(other):
        return np.arange(len(reference))
    position = {pair: i for i, pair in enumerate(other)}
    try:
        return np.fromiter((position[pair] for pair in reference), dtype=np.int64, count=len(reference))
    except KeyError as err:
        raise InputKeyError(f"trial {err.args[0]} is scored by one system but not by the other") from None


@dataclasses.dataclass
class CorrectedCounts:
    """Counts of the corrected-trials analysis on one trial list."""

    num_trials: int
    baseline_wrong: int
    student_wrong: int
    corrected: int            # wrong for the baseline, right for the student
    corrected_other_right: int  # ... and right for the other modality's baseline
    broken: int               # right for the baseline, wrong for the student
    venn: dict[str, int]      # region counts keyed by membership bits of (A baseline wrong, B student right,
                              # C other right), e.g. "110" = corrected by KD and wrong for the other baseline

    @property
    def other_right_fraction(self) -> float:
        """Share of corrected trials the other modality's baseline got right (85 % in the paper)."""
        return self.corrected_other_right / self.corrected if self.corrected else float("nan")

    @property
    def other_right_rate(self) -> float:
        """Base rate: share of all trials the other modality's baseline gets right."""
        right = sum(n for key, n in self.venn.items() if key[2] == "1")
        return right / self.num_trials if self.num_trials else float("nan")

    @property
    def other_right_given_baseline_wrong(self) -> float:
        """Base rate where corrections come from: share of the baseline's wrong trials the other one gets right."""
        right = sum(n for key, n in self.venn.items() if key[0] == "1" and key[2] == "1")
        return right / self.baseline_wrong if self.baseline_wrong else float("nan")


def corrected_counts(labels: np.ndarray, baseline: tuple[np.ndarray, float], student: tuple[np.ndarray, float],
                     other: tuple[np.ndarray, float]) -> CorrectedCounts:
    """Counts from aligned (scores, threshold) of the baseline, the student and the other modality's baseline."""
    right_b = decisions_correct(baseline[0], labels, baseline[1])
    right_s = decisions_correct(student[0], labels, student[1])
    right_o = decisions_correct(other[0], labels, other[1])
    corrected = ~right_b & right_s
    sets = (~right_b, right_s, right_o)
    venn = {}
    for bits in range(8):  # every region, "000" (outside all three circles) included
        key = "".join("1" if bits >> (2 - k) & 1 else "0" for k in range(3))
        mask = np.ones_like(right_b)
        for k, member in enumerate(key):
            mask &= sets[k] if member == "1" else ~sets[k]
        venn[key] = int(mask.sum())
    return CorrectedCounts(
        num_trials=int(len(labels)), baseline_wrong=int((~right_b).sum()), student_wrong=int((~right_s).sum()),
        corrected=int(corrected.sum()), corrected_other_right=int((corrected & right_o).sum()),
        broken=int((right_b & ~right_s).sum()), venn=venn)
