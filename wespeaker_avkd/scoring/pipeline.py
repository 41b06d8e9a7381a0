"""What the scoring CLIs do: embeddings + trial lists -> score files; score file -> metrics, JSON, DET plot."""
from __future__ import annotations

import json
import os
import sys
from typing import Callable, Sequence

import numpy as np

from wespeaker_avkd._scorer import ScoringError
from wespeaker_avkd.data.kaldi_dir import TableError, read_table  # stdlib-only: the scorer stays torch-free
from wespeaker_avkd.scoring.asnorm import as_norm, speaker_mean_cohort
from wespeaker_avkd.scoring.embeddings import load_embeddings, load_mean_vector
from wespeaker_avkd.scoring.metrics import Metrics, compute_metrics, det_curve
from wespeaker_avkd.scoring.trials import KeyIndex, read_score_file, score_trials, write_score_file
from wespeaker_avkd.utils.fileio import atomic_write


def score_files(embeddings: str, trials: Sequence[str], output_dir: str, mean_vec: str | None = None,
                skip_missing: bool = False, cohort: str | None = None, cohort_utt2spk: str | None = None,
                top_k: int = 300, log: Callable[[str], None] = print) -> list[str]:
    """Score each trial list against an embedding table and write output_dir/<list name>.score; returns paths."""
    keys, emb = load_embeddings(embeddings)
    index = KeyIndex(keys)
    mean = load_mean_vector(mean_vec) if mean_vec else None
    if mean is not None and mean.shape[0] != emb.shape[1]:
        raise ScoringError(f"{mean_vec}: the mean vector has dimension {mean.shape[0]}, the embeddings in "
                           f"{embeddings} have {emb.shape[1]}")
    cohort_emb = None
    if cohort:
        ckeys, cohort_emb = load_embeddings(cohort)
        if cohort_utt2spk:
            cohort_emb = speaker_mean_cohort(ckeys, cohort_emb, read_table(cohort_utt2spk))
    paths = []
    for trial_path in trials:
        ts = score_trials(trial_path, index, emb, mean, skip_missing)
        if ts.num_skipped:
            log(f"WARNING: {trial_path}: skipped {ts.num_skipped} trial(s) with a key missing from {embeddings} "
                f"(first: {ts.first_skipped})")
        if cohort_emb is not None:
            ts = ts.with_scores(as_norm(ts.scores, ts.enroll_rows, ts.test_rows, emb, cohort_emb, top_k, mean))
        out = os.path.join(output_dir, os.path.basename(os.path.normpath(trial_path)) + ".score")
        write_score_file(out, ts)
        log(f"{trial_path}: {len(ts)} trials scored -> {out}")
        paths.append(out)
    return paths


def evaluate_score_file(score_path: str, p_targets: Sequence[float] = (0.01, 0.05), json_path: str | None = None,
                        det_path: str | None = None) -> Metrics:
    """Metrics of a labelled score file; optionally written as JSON and drawn as a DET curve."""
    ts = read_score_file(score_path)
    if (ts.labels < 0).any():
        raise ScoringError(f"{score_path}: the score file has no labels (enroll test score); metrics need "
                           "'target' or 'nontarget' on every line")
    try:
        m = compute_metrics(ts.scores, ts.labels, p_targets)
    except ScoringError as e:
        raise ScoringError(f"{score_path}: {e}") from None
    if json_path:
        with atomic_write(json_path) as f:
            json.dump(m.to_dict(), f, indent=2)
            f.write("\n")
    if det_path:
        from wespeaker_avkd.scoring.det_plot import plot_det

        p_fa, p_miss = det_curve(ts.scores, ts.labels)
        plot_det(det_path, p_fa, p_miss, m.eer, label=os.path.basename(score_path))
    return m


def run_cli(main: Callable[[], None]) -> None:
    """Run a CLI body; bad input exits 1 with the message on stderr and no traceback."""
    try:
        main()
    except (ScoringError, TableError, OSError, UnicodeDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
