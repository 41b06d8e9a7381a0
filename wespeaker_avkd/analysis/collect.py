"""The report's first step: what it was asked (ReportSettings) and what the exp tree holds (score files, metrics,
embeddings of every seed and system: exp/seed<N>/<system>/<scores_dir>/<part>/<list>.score, embeddings/)."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from wespeaker_avkd.analysis.bootstrap import DEFAULT_SCHEME, P_TARGETS
from wespeaker_avkd.utils.naming import PAPER_COMBOS, TEACHER, baseline_name, student_name


@dataclasses.dataclass(frozen=True)
class ReportSettings:
    """What the report is asked for: the exp tree, part, seeds, lists, systems and the bootstrap's knobs."""

    exp: str
    part: str = "eval"
    seeds: Sequence[int] = (1,)
    trials: Sequence[str] = ("O", "E", "H")
    utt2spk: str = ""                  # utterance -> identity of the part ("" = data/<part>/utt2spk)
    modalities: Sequence[str] = ("visual", "audio")
    combos: Sequence[str] = PAPER_COMBOS
    num_boot: int = 1000
    boot_seed: int = 0
    venn_trials: str = ""              # list of the Venn figures ("" = E when asked, else the first list)
    with_gate: bool = True
    boot_scheme: str = DEFAULT_SCHEME  # identity weighting of a draw (bootstrap.SCHEMES; calibrated default)
    scores_dir: str = "scores"         # folder of each system holding <part>/<list>.score
    dev_part: str = "dev"              # the part on which pair/teacher comparisons choose systems ("" = none)
    dev_utt2spk: str = ""              # utterance -> identity of the dev part ("" = data/<dev_part>/utt2spk)
    mde_effect: float = 0.02           # the EER effect the dev section sizes the seed count for
    command: str = ""                  # the command line that made the report, recorded verbatim

    @property
    def utt2spk_path(self) -> str:
        """The utt2spk file read for the bootstrap."""
        return self.utt2spk or os.path.join("data", self.part, "utt2spk")

    @property
    def dev_utt2spk_path(self) -> str:
        """The dev part's utt2spk file."""
        return self.dev_utt2spk or os.path.join("data", self.dev_part, "utt2spk")

    @property
    def venn_list(self) -> str:
        """The trial list of the Venn figures."""
        return self.venn_trials or ("E" if "E" in self.trials else self.trials[0])


def system_names(modalities: Sequence[str], combos: Sequence[str]) -> list[str]:
    """Baselines, teacher, then every student, in table order."""
    return [baseline_name("audio"), baseline_name("visual"), TEACHER] + [
        student_name(m, c) for m in modalities for c in combos]


def seed_dir(exp: str, seed: int) -> str:
    """exp/seed<N>."""
    return os.path.join(exp, f"seed{seed}")


class SystemResults:
    """Scores and metrics of one system of one seed on every trial list of one part it was scored on."""

    def __init__(self, exp: str, seed: int, name: str, part: str, trials: Sequence[str],
                 scores_dir: str = "scores") -> None:
        from wespeaker_avkd.scoring import ScoringError, compute_metrics, read_score_file

        self.name = name
        self.seed = seed
        self.part = part
        self.scores_dir = scores_dir
        self.dir = os.path.join(seed_dir(exp, seed), name)
        self.scores: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        for t in trials:
            path = self.score_path(t)
            if os.path.isfile(path):
                ts = read_score_file(path)
                self.scores[t] = ts
                try:
                    self.metrics[t] = compute_metrics(ts.scores, ts.labels, P_TARGETS)
                except ScoringError as err:  # e.g. a list of targets only: name the score file
                    raise ScoringError(f"{path}: {err}") from None

    def score_path(self, trials: str) -> str:
        """<system dir>/<scores_dir>/<part>/<trials>.score."""
        return os.path.join(self.dir, self.scores_dir, self.part, f"{trials}.score")

    def embeddings(self, subset: str) -> tuple[list[str], np.ndarray] | None:
        """(keys, (N, D)) of embeddings/<subset>/xvector.scp, or None when absent. For "train", a system that
        embedded only the training subset of its mean vector (embeddings/train_mean) gives that subset."""
        from wespeaker_avkd.scoring import load_embeddings

        for name in (subset, "train_mean") if subset == "train" else (subset,):
            path = os.path.join(self.dir, "embeddings", name, "xvector.scp")
            if os.path.isfile(path):
                return load_embeddings(path)
        return None


Runs = dict[str, dict[int, SystemResults]]  # system name -> seed -> its results


def collect_runs(settings: ReportSettings, names: Sequence[str]) -> tuple[Runs, list[dict[str, Any]]]:
    """Every (system, seed) with at least one score file, and the missing (system, seed, list) records; no score
    file at all raises FileNotFoundError naming the expected layout."""
    s = settings
    runs: Runs = {}
    missing: list[dict[str, Any]] = []
    for seed in s.seeds:
        for n in names:
            res = SystemResults(s.exp, seed, n, s.part, s.trials, s.scores_dir) if os.path.isdir(
                os.path.join(seed_dir(s.exp, seed), n)) else None
            for t in s.trials:
                if res is None or t not in res.scores:
                    missing.append({"system": n, "seed": seed, "list": t, "reason": "no score file"})
            if res is not None and res.scores:
                runs.setdefault(n, {})[seed] = res
    if not runs:
        raise FileNotFoundError(f"{s.exp}: no scored system (expected {s.exp}/seed<N>/<system>/{s.scores_dir}/"
                                f"{s.part}/<list>.score for seeds {' '.join(map(str, s.seeds))})")
    return runs, missing
