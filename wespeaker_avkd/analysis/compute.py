"""The report's numbers from the collected runs: per-list statistics over seeds with the identity bootstrap,
student-vs-baseline comparisons (Holm over all), corrected trials, student-teacher agreement, DET curves."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from wespeaker_avkd.analysis import bootstrap, corrected, correlation, overlap, summaries
from wespeaker_avkd.analysis.collect import P_TARGETS, ReportSettings, Runs, SystemResults
from wespeaker_avkd.analysis.gate import gate_records
from wespeaker_avkd.utils.naming import TEACHER, baseline_name, student_name

OTHER = {"audio": "visual", "visual": "audio"}  # a student modality -> the other modality
ALPHA = 0.05  # family-wise level of the Holm verdicts (the intervals: summaries.LEVEL)
Comparisons = dict[tuple[str, str, str], summaries.PairedSummary]  # (modality, combo, list) -> student - baseline


def _pairs(ts) -> list[tuple[str, str]]:
    """(enroll, test) of every trial."""
    return list(zip(ts.enroll, ts.test))


def _aligned(ref, other) -> tuple[np.ndarray, np.ndarray]:
    """other's (scores, labels) reordered to ref's trial order."""
    idx = corrected.align_trials(_pairs(ref), _pairs(other))
    return other.scores[idx], other.labels[idx]


@dataclasses.dataclass
class ListStats:
    """Everything the tables need for one trial list."""

    name: str
    num_trials: int
    num_target: int
    num_nontarget: int
    num_identities: int
    systems: dict[str, dict[str, Any]]          # name -> {"eer": SystemSummary, "min_dcf": {p: SystemSummary}}
    boot: dict[str, dict[int, bootstrap.BootMetrics]]
    points: dict[str, dict[int, Any]]           # name -> seed -> Metrics (full list)


ScoreSets = dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]  # system -> seed -> (scores, labels) of one list


def _aligned_sets(name: str, runs: Runs, missing: list[dict[str, Any]]
                  ) -> tuple[SystemResults, ScoreSets, dict[str, dict[int, Any]]] | None:
    """(reference run, {system: {seed: (scores in the reference order, labels)}}, {system: {seed: Metrics}}) of
    list `name`, or None when no run scored it; a run whose trials differ from the reference is added to
    `missing` with the reason."""
    available = [(n, s, r) for n, per_seed in runs.items() for s, r in per_seed.items() if name in r.scores]
    if not available:
        return None
    ref_name, ref_seed, ref_run = available[0]
    ref = ref_run.scores[name]
    ref_pairs = _pairs(ref)
    sets: ScoreSets = {}
    points: dict[str, dict[int, Any]] = {}
    for n, s, r in available:
        ts = r.scores[name]
        try:
            if len(ts) != len(ref):
                raise KeyError(f"{len(ts)} trials, the reference has {len(ref)}")
            idx = corrected.align_trials(ref_pairs, _pairs(ts))
            if not np.array_equal(ts.labels[idx], ref.labels):
                raise KeyError("target/nontarget labels differ")
        except KeyError as err:
            missing.append({"system": n, "seed": s, "list": name,
                            "reason": f"trials differ from {ref_name} seed {ref_seed}: {err.args[0]}"})
            continue
        sets.setdefault(n, {})[s] = (ts.scores[idx], ref.labels)
        points.setdefault(n, {})[s] = r.metrics[name]
    return ref_run, sets, points


def _system_summaries(boot: dict[str, dict[int, bootstrap.BootMetrics]], points: dict[str, dict[int, Any]]
               ) -> dict[str, dict[str, Any]]:
    """{system: {"eer": SystemSummary, "min_dcf": {repr(p): SystemSummary}}} over its seeds."""
    per_system: dict[str, dict[str, Any]] = {}
    for n, per_seed in boot.items():
        seeds, eer_rows = bootstrap.metric_rows(per_seed, "eer")
        record = {"eer": summaries.summarise_system(seeds, [points[n][s].eer for s in seeds], eer_rows),
                  "min_dcf": {}}
        for p in P_TARGETS:
            _, rows = bootstrap.metric_rows(per_seed, "min_dcf", p)
            values = [points[n][s].min_dcf[repr(float(p))] for s in seeds]
            record["min_dcf"][repr(float(p))] = summaries.summarise_system(seeds, values, rows)
        per_system[n] = record
    return per_system


def list_statistics(name: str, runs: Runs, utt2spk: dict[str, str], num_boot: int, boot_seed: int,
                    missing: list[dict[str, Any]], scheme: str = bootstrap.DEFAULT_SCHEME) -> ListStats | None:
    """Bootstrap every (system, seed) scored on list `name` under one shared set of identity draws. Runs whose
    trials differ from the reference run's are added to `missing` with the reason."""
    aligned = _aligned_sets(name, runs, missing)
    if aligned is None:
        return None
    ref_run, sets, points = aligned
    ref = ref_run.scores[name]
    design = bootstrap.list_design(ref.enroll, ref.test, utt2spk, where=ref_run.score_path(name))
    boot, _ = bootstrap.bootstrap_list(sets, design, num_boot, bootstrap.list_rng(boot_seed, name), P_TARGETS,
                                       scheme=scheme)
    labels = ref.labels
    return ListStats(name, len(ref), int((labels == 1).sum()), int((labels == 0).sum()), design.num_identities,
                     _system_summaries(boot, points), boot, points)


def paired(stats: ListStats, student: str, baseline: str) -> summaries.PairedSummary | None:
    """Student minus baseline EER on the seeds both have, about the method (summaries.method_difference: seed
    and identity variance; identity-only with one seed); None if they share no seed."""
    if student not in stats.boot or baseline not in stats.boot:
        return None
    seeds = sorted(set(stats.boot[student]) & set(stats.boot[baseline]))
    if not seeds:
        return None
    sb = np.vstack([stats.boot[student][s].eer for s in seeds])
    bb = np.vstack([stats.boot[baseline][s].eer for s in seeds])
    return summaries.method_difference(seeds, [stats.points[student][s].eer for s in seeds],
                                       [stats.points[baseline][s].eer for s in seeds], sb, bb)


def compare_students(lists: Sequence[ListStats], modalities: Sequence[str], combos: Sequence[str]) -> Comparisons:
    """Every student minus its baseline on every list, with the Holm verdicts over all of them applied."""
    comparisons: Comparisons = {}
    for mod in modalities:
        for combo in combos:
            for ls in lists:
                c = paired(ls, student_name(mod, combo), baseline_name(mod))
                if c is not None:
                    comparisons[(mod, combo, ls.name)] = c
    summaries.apply_holm(list(comparisons.values()))
    return comparisons


def multiple_comparisons(num_comparisons: int, planned: int) -> dict[str, Any]:
    """{num_comparisons, planned, alpha, expected_by_chance}: how many intervals exclude 0 by chance alone."""
    return {"num_comparisons": num_comparisons, "planned": planned, "alpha": ALPHA,
            "expected_by_chance": ALPHA * num_comparisons}


@dataclasses.dataclass
class CorrectedModality:
    """Corrected-trials counts of one student modality: counts[combo][list] (json-ready) and the best student
    on the Venn list as (EER, combo), None when no student was scored there."""

    modality: str
    other: str
    counts: dict[str, dict[str, dict[str, Any]]]
    best: tuple[float, str] | None


def _counts_record(base: SystemResults, student: SystemResults, other: SystemResults, t: str) -> dict[str, Any]:
    """The corrected-trials counts of one student on list t (json-ready, with the base rates)."""
    ref = base.scores[t]
    s_scores, _ = _aligned(ref, student.scores[t])
    o_scores, _ = _aligned(ref, other.scores[t])
    counts = corrected.corrected_counts(
        ref.labels, (ref.scores, base.metrics[t].eer_threshold),
        (s_scores, student.metrics[t].eer_threshold), (o_scores, other.metrics[t].eer_threshold))
    return dict(vars(counts), other_right_fraction=counts.other_right_fraction,
                other_right_rate=counts.other_right_rate,
                other_right_given_baseline_wrong=counts.other_right_given_baseline_wrong)


def corrected_trials(systems: dict[str, SystemResults], modalities: Sequence[str], combos: Sequence[str],
                     trials: Sequence[str], venn_trials: str) -> list[CorrectedModality]:
    """The corrected-trials analysis of one seed, per student modality whose two baselines were scored."""
    out = []
    for mod in modalities:
        if mod not in OTHER:
            continue
        base, other = systems.get(baseline_name(mod)), systems.get(baseline_name(OTHER[mod]))
        if base is None or other is None:
            continue
        result = CorrectedModality(mod, OTHER[mod], {}, None)
        for combo in combos:
            student = systems.get(student_name(mod, combo))
            if student is None:
                continue
            for t in trials:
                if t not in base.scores or t not in student.scores or t not in other.scores:
                    continue
                result.counts.setdefault(combo, {})[t] = _counts_record(base, student, other, t)
                eer = student.metrics[t].eer
                if t == venn_trials and (result.best is None or eer < result.best[0]):
                    result.best = (eer, combo)
        out.append(result)
    return out


def embedding_agreement(systems: dict[str, SystemResults], names: Sequence[str], part: str
                        ) -> dict[str, dict[str, dict[str, float]]] | None:
    """{system: {subset: correlation.agreement}} of every non-teacher system against the teacher on `part` and
    the training set (subsets where both have embeddings); None without a teacher."""
    teacher = systems.get(TEACHER)
    if teacher is None:
        return None
    teacher_emb = {s: teacher.embeddings(s) for s in (part, "train")}
    record: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        res = systems.get(name)
        if res is None or name == TEACHER:
            continue
        row = {}
        for subset in (part, "train"):
            emb = res.embeddings(subset)
            if emb is not None and teacher_emb[subset] is not None:
                row[subset] = correlation.agreement(emb, teacher_emb[subset])
        if row:
            record[name] = row
    return record


def det_curves(systems: dict[str, SystemResults], trials: Sequence[str]) -> dict[str, dict[str, Any]]:
    """curves[list][system] = (p_fa, p_miss, eer) of every list some system was scored on."""
    from wespeaker_avkd.scoring import det_curve

    curves: dict[str, dict[str, Any]] = {t: {} for t in trials}
    for name, res in systems.items():
        for t, ts in res.scores.items():
            p_fa, p_miss = det_curve(ts.scores, ts.labels)
            curves[t][name] = (p_fa, p_miss, res.metrics[t].eer)
    return {t: c for t, c in curves.items() if c}


def list_targets(runs: Runs, trials: Sequence[str]) -> dict[str, dict]:
    """overlap.shared_targets of the lists (from the first run scored on each)."""
    found = {}
    for t in trials:
        run = next((r for per_seed in runs.values() for r in per_seed.values() if t in r.scores), None)
        if run is not None:
            ts = run.scores[t]
            found[t] = (ts.enroll, ts.test, ts.labels)
    return overlap.shared_targets(found)


def seeds_found(runs: Runs) -> list[int]:
    """Seeds with at least one scored system, ascending."""
    return sorted({s for per_seed in runs.values() for s in per_seed})


@dataclasses.dataclass
class ReportNumbers:
    """Everything the report shows, computed from the collected runs; per-seed analyses use the first seed."""

    runs: Runs
    missing: list[dict[str, Any]]
    lists: list[ListStats]
    comparisons: Comparisons
    corrected: list[CorrectedModality]
    agreement: dict[str, dict[str, dict[str, float]]] | None
    gate: dict[str, Any]
    curves: dict[str, dict[str, Any]]
    shared_targets: dict[str, dict] = dataclasses.field(default_factory=dict)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    dev: Any = None  # analysis.choices.DevSections (set by analysis.report), None when not computed
    learning_curves: list[Any] = dataclasses.field(default_factory=list)  # analysis.learning_curves.CurveSummary

    @property
    def seeds_found(self) -> list[int]:
        """Seeds with at least one scored system, ascending."""
        return seeds_found(self.runs)

    @property
    def first_seed(self) -> int:
        """The seed of the per-seed analyses."""
        return self.seeds_found[0]


def compute_report(settings: ReportSettings, names: Sequence[str], runs: Runs, missing: list[dict[str, Any]],
                   utt2spk: dict[str, str]) -> ReportNumbers:
    """Every number of the report (`missing` gains the runs whose trials differ from their list's reference)."""
    s = settings
    lists = [ls for ls in (list_statistics(t, runs, utt2spk, s.num_boot, s.boot_seed, missing, s.boot_scheme)
                           for t in s.trials) if ls]
    comparisons = compare_students(lists, s.modalities, s.combos)
    seeds = seeds_found(runs)
    first = seeds[0]
    systems = {n: per_seed[first] for n, per_seed in runs.items() if first in per_seed}
    return ReportNumbers(
        runs, missing, lists, comparisons,
        corrected_trials(systems, s.modalities, s.combos, s.trials, s.venn_list),
        embedding_agreement(systems, names, s.part),
        gate_records(s.exp, seeds, s.part) if s.with_gate else {},
        det_curves(systems, s.trials), list_targets(runs, s.trials))
