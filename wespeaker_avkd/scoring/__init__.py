"""Python face of the compiled scorer: embeddings, trials, cosine scores, EER, minDCF, DET, AS-norm.

Importable without torch. Heavy work (trial parsing, key lookup, cosine, sorting, metrics, score-file output)
runs in wespeaker_avkd._scorer (C++, OpenMP, GIL released).
"""
from wespeaker_avkd._scorer import KeyIndex, ScoringError
from wespeaker_avkd.scoring.asnorm import as_norm, cohort_stats, speaker_mean_cohort
from wespeaker_avkd.scoring.embeddings import load_embeddings, load_mean_vector
from wespeaker_avkd.scoring.metrics import Metrics, compute_metrics, det_curve, p_key
from wespeaker_avkd.scoring.trials import TrialScores, read_score_file, read_trial_rows, score_trials, write_score_file
from wespeaker_avkd.utils.errors import register_named

register_named(ScoringError)  # the scorer's input errors (they name the file and line): one line, exit 2

__all__ = [
    "KeyIndex", "ScoringError", "as_norm", "cohort_stats", "speaker_mean_cohort", "load_embeddings",
    "load_mean_vector", "Metrics", "compute_metrics", "det_curve", "p_key", "TrialScores", "read_score_file",
    "read_trial_rows", "score_trials", "write_score_file",
]
