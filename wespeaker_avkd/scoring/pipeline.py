"""What the scoring CLIs do: embeddings + trial lists -> score files; score file -> metrics, JSON, DET plot."""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence

from wespeaker_avkd._scorer import ScoringError
from wespeaker_avkd.data.kaldi_dir import read_table  # stdlib-only: the scorer stays torch-free
from wespeaker_avkd.scoring.asnorm import as_norm, speaker_mean_cohort
from wespeaker_avkd.scoring.embeddings import load_embeddings, load_mean_vector
from wespeaker_avkd.scoring.metrics import Metrics, compute_metrics, det_curve
from wespeaker_avkd.scoring.trials import KeyIndex, TrialScores, read_score_file, score_trials, write_score_file
from wespeaker_avkd.utils.fileio import atomic_write


def score_output_paths(trials: Sequence[str], output_dir: str) -> list[str]:
    """output_dir/<list name>.score for each trial list; refuses two lists whose outputs would be one file."""
    seen: dict[str, str] = {}
    paths = []
    for trial_path in trials:
        out = os.path.join(output_dir, os.path.basename(os.path.normpath(trial_path)) + ".score")
        if out in seen:
            raise ScoringError(f"trial lists {seen[out]} and {trial_path} would both be written to {out}; "
                               "give the lists different file names or score them into different output dirs")
        seen[out] = trial_path
        paths.append(out)
    return paths


@dataclasses.dataclass(frozen=True)
class ScoringJob:
    """One system to score: its embedding table, the dir its <list>.score/.json go to, an optional mean, and an
    optional AS-norm cohort (an embedding table, averaged per speaker when cohort_utt2spk is given)."""

    embeddings: str
    output_dir: str
    mean_vec: str | None = None
    cohort: str | None = None
    cohort_utt2spk: str | None = None

    def inputs(self) -> list[tuple[str, str]]:
        """(path, what) of every input file this job reads besides the trial lists."""
        named = ((self.embeddings, "embeddings"), (self.mean_vec, "mean vector"), (self.cohort, "cohort"),
                 (self.cohort_utt2spk, "cohort utt2spk"))
        return [(path, what) for path, what in named if path]


JOB_LINE = "embeddings<TAB>output_dir[<TAB>mean_vec[<TAB>cohort[<TAB>cohort_utt2spk]]]"


def read_jobs(path: str) -> list[ScoringJob]:
    """Parse a jobs file: lines JOB_LINE ('#' comments and blank lines skipped; an empty or '-' optional field
    means none; a cohort_utt2spk needs a cohort)."""
    if not os.path.isfile(path):
        raise ScoringError(f"{path}: no such jobs file")
    jobs = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")  # universal newlines, as iterating the file would split
    except UnicodeDecodeError as err:
        raise ScoringError(f"{path}: not UTF-8 text (byte {err.start}); a jobs file holds tab-separated "
                           "paths") from err
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [x.strip() for x in line.split("\t")]
        if not 2 <= len(fields) <= 5 or not fields[0] or not fields[1]:
            raise ScoringError(f"{path}:{n}: expected '{JOB_LINE}' (tab-separated), got {line!r}")
        optional: list[str | None] = [None if x in ("", "-") else x for x in fields[2:]]
        mean, cohort, cohort_utt2spk = optional + [None] * (3 - len(optional))
        if cohort_utt2spk and not cohort:
            raise ScoringError(f"{path}:{n}: a cohort utt2spk ({cohort_utt2spk}) needs a cohort in the fourth "
                               "field")
        jobs.append(ScoringJob(fields[0], fields[1], mean, cohort, cohort_utt2spk))
    if not jobs:
        raise ScoringError(f"{path}: the jobs file lists no system")
    return jobs


def plan_outputs(jobs: Sequence[ScoringJob], trials: Sequence[str]) -> list[list[str]]:
    """Score paths of every job; refuses, before anything is written, any two outputs that would be one file
    (same list name within a job, or two jobs writing into the same dir)."""
    owner: dict[str, str] = {}
    plans = []
    for job in jobs:
        paths = score_output_paths(trials, job.output_dir)
        for out in paths:
            key = os.path.realpath(out)
            if key in owner:
                raise ScoringError(f"the systems {owner[key]} and {job.embeddings} would both write {key}; give "
                                   "each system its own output dir")
            owner[key] = job.embeddings
        plans.append(paths)
    return plans


def score_files(embeddings: str, trials: Sequence[str], output_dir: str, mean_vec: str | None = None,
                skip_missing: bool = False, cohort: str | None = None, cohort_utt2spk: str | None = None,
                top_k: int = 300, log: Callable[[str], None] = print,
                p_targets: Sequence[float] | None = None) -> list[str]:
    """Score each trial list against an embedding table and write output_dir/<list name>.score; returns paths.
    With p_targets, also output_dir/<list name>.json (compute_metrics' record) and a one-line summary each."""
    paths = score_output_paths(trials, output_dir)  # before anything is read or written
    return _score_job(ScoringJob(embeddings, output_dir, mean_vec, cohort, cohort_utt2spk), trials, paths,
                      skip_missing, top_k, log, p_targets)


def score_jobs(jobs: Sequence[ScoringJob], trials: Sequence[str], skip_missing: bool = False,
               log: Callable[[str], None] = print, p_targets: Sequence[float] | None = None,
               top_k: int = 300) -> list[str]:
    """Score the same trial lists for several systems in one process (AS-norm with top_k for the jobs that
    name a cohort); returns every score path written."""
    plans = plan_outputs(jobs, trials)
    for job in jobs:  # a missing input fails the whole call before the first system is scored
        for path, what in job.inputs():
            if not os.path.isfile(path):
                raise ScoringError(f"{path}: no such {what} file")
    out: list[str] = []
    for job, paths in zip(jobs, plans):
        out += _score_job(job, trials, paths, skip_missing, top_k, log, p_targets)
    return out


def _score_job(job: ScoringJob, trials: Sequence[str], paths: Sequence[str], skip_missing: bool, top_k: int,
               log: Callable[[str], None], p_targets: Sequence[float] | None) -> list[str]:
    """Score one system's lists into `paths` (planned by score_output_paths), AS-normed when the job names a
    cohort, with metrics when p_targets."""
    embeddings, mean_vec = job.embeddings, job.mean_vec
    keys, emb = load_embeddings(embeddings)
    index = KeyIndex(keys)
    mean = load_mean_vector(mean_vec) if mean_vec else None
    if mean is not None and mean.shape[0] != emb.shape[1]:
        raise ScoringError(f"{mean_vec}: the mean vector has dimension {mean.shape[0]}, the embeddings in "
                           f"{embeddings} have {emb.shape[1]}")
    cohort_emb = None
    if job.cohort:
        ckeys, cohort_emb = load_embeddings(job.cohort)
        if job.cohort_utt2spk:
            cohort_emb = speaker_mean_cohort(ckeys, cohort_emb, read_table(job.cohort_utt2spk))
    for trial_path, out in zip(trials, paths):
        ts = score_trials(trial_path, index, emb, mean, skip_missing)
        if ts.num_skipped:
            log(f"WARNING: {trial_path}: skipped {ts.num_skipped} trial(s) with a key missing from {embeddings} "
                f"(first: {ts.first_skipped})")
        if cohort_emb is not None:
            ts = ts.with_scores(as_norm(ts.scores, ts.enroll_rows, ts.test_rows, emb, cohort_emb, top_k, mean))
        metrics = _metrics(ts, trial_path, p_targets) if p_targets is not None else None  # before writing
        write_score_file(out, ts)
        log(f"{trial_path}: {len(ts)} trials scored -> {out}")
        if metrics is not None:
            _write_json(os.path.splitext(out)[0] + ".json", metrics)
            log(f"{out}: {metrics.summary()}")
    return list(paths)


def _metrics(ts: TrialScores, source: str, p_targets: Sequence[float]) -> Metrics:
    """Metrics of labelled trial scores; errors name `source`. Equal to evaluating the written score file,
    which stores each float32 score exactly."""
    if (ts.labels < 0).any():
        raise ScoringError(f"{source}: has no labels; metrics need 'target' or 'nontarget' on every line")
    try:
        return compute_metrics(ts.scores, ts.labels, p_targets)
    except ScoringError as e:
        raise ScoringError(f"{source}: {e}") from None


def _write_json(path: str, m: Metrics) -> None:
    """The compute_metrics JSON record, written atomically."""
    with atomic_write(path) as f:
        json.dump(m.to_dict(), f, indent=2)
        f.write("\n")


def evaluate_score_file(score_path: str, p_targets: Sequence[float] = (0.01, 0.05), json_path: str | None = None,
                        det_path: str | None = None) -> Metrics:
    """Metrics of a labelled score file; optionally written as JSON and drawn as a DET curve."""
    ts = read_score_file(score_path)
    m = _metrics(ts, score_path, p_targets)
    if json_path:
        _write_json(json_path, m)
    if det_path:
        from wespeaker_avkd.scoring.det_plot import plot_det

        p_fa, p_miss = det_curve(ts.scores, ts.labels)
        plot_det(det_path, p_fa, p_miss, m.eer, label=os.path.basename(score_path))
    return m
