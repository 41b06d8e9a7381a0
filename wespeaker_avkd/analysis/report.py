"""The study's report under exp/report (results.md, results.json, det.png, venn_<modality>.png).

Reads exp/seed<N>/<system>/scores/<part>/<list>.score for every seed and system. Tables follow the paper:
Table 1 single- and multi-modality systems, Table 2 visual students, Table 3 audio students, each with EER %
and minDCF (p_target 0.01, 0.05) per trial list as mean +- std over seeds, the EER with a 95 % two-way identity
bootstrap interval (analysis.bootstrap; method in docs/statistics.md), and every student's paired difference
to its baseline with a verdict, plain and Holm-Bonferroni-adjusted over all comparisons of the report. Then the
corrected-trials analysis (Figure 3) with the other modality's base rate, the student-teacher embedding
agreement (PCC, cosine distance), the GATE teacher's mean gate per modality, and DET curves. Per-seed analyses
(corrected trials, agreement, DET) use the first seed found.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from wespeaker_avkd.analysis import bootstrap, corrected, correlation, plots
from wespeaker_avkd.utils.errors import InputValueError
from wespeaker_avkd.utils.fileio import atomic_write
from wespeaker_avkd.utils.naming import student_name

logger = logging.getLogger("wespeaker_avkd.report")

P_TARGETS = bootstrap.P_TARGETS
OTHER = {"audio": "visual", "visual": "audio"}
PAPER_COMBOS = ("COS", "KL", "MMD", "COS+KL", "COS+MMD", "KL+MMD")
SHORT = {"better": "better", "worse": "worse", "no significant difference": "n.s."}


def system_names(modalities: Sequence[str], combos: Sequence[str]) -> list[str]:
    """Baselines, teacher, then every student, in table order."""
    return ["audio_baseline", "visual_baseline", "teacher"] + [student_name(m, c) for m in modalities
                                                                for c in combos]


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
        self.dir = os.path.join(seed_dir(exp, seed), name)
        self.scores: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        for t in trials:
            path = os.path.join(self.dir, scores_dir, part, f"{t}.score")
            if os.path.isfile(path):
                ts = read_score_file(path)
                self.scores[t] = ts
                try:
                    self.metrics[t] = compute_metrics(ts.scores, ts.labels, P_TARGETS)
                except ScoringError as err:  # e.g. a list of targets only: name the score file
                    raise ScoringError(f"{path}: {err}") from None

    def embeddings(self, subset: str) -> tuple[list[str], np.ndarray] | None:
        """(keys, (N, D)) of embeddings/<subset>/xvector.scp, or None when absent. For "train", a system that
        embedded only the training subset of its mean vector (embeddings/train_mean) gives that subset."""
        from wespeaker_avkd.scoring import load_embeddings

        for name in (subset, "train_mean") if subset == "train" else (subset,):
            path = os.path.join(self.dir, "embeddings", name, "xvector.scp")
            if os.path.isfile(path):
                return load_embeddings(path)
        return None


def _pairs(ts) -> list[tuple[str, str]]:
    """(enroll, test) of every trial."""
    return list(zip(ts.enroll, ts.test))


def _aligned(ref, other) -> tuple[np.ndarray, np.ndarray]:
    """other's (scores, labels) reordered to ref's trial order."""
    idx = corrected.align_trials(_pairs(ref), _pairs(other))
    return other.scores[idx], other.labels[idx]


# ----------------------------------------------------------------------------------------------------------------
# statistics over seeds
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


def list_statistics(name: str, runs: dict[str, dict[int, SystemResults]], utt2spk: dict[str, str],
                    num_boot: int, boot_seed: int, missing: list[dict[str, Any]],
                    scheme: str = "two-way") -> ListStats | None:
    """Bootstrap every (system, seed) scored on list `name` under one shared set of identity draws. Runs whose
    trials differ from the reference run's are added to `missing` with the reason."""
    available = [(n, s, r) for n, per_seed in runs.items() for s, r in per_seed.items() if name in r.scores]
    if not available:
        return None
    ref_name, ref_seed, ref_run = available[0]
    ref = ref_run.scores[name]
    ref_pairs = _pairs(ref)
    design = bootstrap.list_design(ref.enroll, ref.test, utt2spk, where=f"{ref_run.dir}/scores/{ref_run.part}/"
                                                                      f"{name}.score")
    sets: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
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
    boot, _ = bootstrap.bootstrap_list(sets, design, num_boot, bootstrap.list_rng(boot_seed, name), P_TARGETS,
                                       scheme=scheme)
    summaries: dict[str, dict[str, Any]] = {}
    for n, per_seed in boot.items():
        seeds, eer_rows = bootstrap.metric_rows(per_seed, "eer")
        record = {"eer": bootstrap.summarise_system(seeds, [points[n][s].eer for s in seeds], eer_rows),
                  "min_dcf": {}}
        for p in P_TARGETS:
            _, rows = bootstrap.metric_rows(per_seed, "min_dcf", p)
            values = [points[n][s].min_dcf[repr(float(p))] for s in seeds]
            record["min_dcf"][repr(float(p))] = bootstrap.summarise_system(seeds, values, rows)
        summaries[n] = record
    labels = ref.labels
    return ListStats(name, len(ref), int((labels == 1).sum()), int((labels == 0).sum()), design.num_identities,
                     summaries, boot, points)


def paired(stats: ListStats, student: str, baseline: str) -> bootstrap.PairedSummary | None:
    """Student minus baseline EER on the seeds both have (None if they share none)."""
    if student not in stats.boot or baseline not in stats.boot:
        return None
    seeds = sorted(set(stats.boot[student]) & set(stats.boot[baseline]))
    if not seeds:
        return None
    sb = np.vstack([stats.boot[student][s].eer for s in seeds])
    bb = np.vstack([stats.boot[baseline][s].eer for s in seeds])
    return bootstrap.paired_difference(seeds, [stats.points[student][s].eer for s in seeds],
                                       [stats.points[baseline][s].eer for s in seeds], sb, bb)


# ----------------------------------------------------------------------------------------------------------------
# tables
def _pm(summary: bootstrap.SystemSummary, scale: float, digits: int) -> str:
    """'mean +- std' (std omitted with one seed)."""
    text = f"{scale * summary.mean:.{digits}f}"
    if np.isfinite(summary.std):
        text += f" ± {scale * summary.std:.{digits}f}"
    return text


def _seeds_note(summary: bootstrap.SystemSummary, num_seeds: int) -> str:
    """' (2/3 seeds)' when a system lacks seeds."""
    return "" if len(summary.seeds) == num_seeds else f" ({len(summary.seeds)}/{num_seeds} seeds)"


def metrics_table(rows: Sequence[tuple[str, str]], lists: Sequence[ListStats], num_seeds: int) -> str:
    """Markdown: one row per (label, system); per list EER % mean +- std [95 % CI], minDCF0.01 and 0.05
    mean +- std; 'missing' where a system has no scores."""
    header = ["System"] + [f"{ls.name} {col}" for ls in lists for col in ("EER % [95 % CI]", "minDCF0.01",
                                                                          "minDCF0.05")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, name in rows:
        cells = [label]
        for ls in lists:
            rec = ls.systems.get(name)
            if rec is None:
                cells += ["missing", "-", "-"]
                continue
            e = rec["eer"]
            cells.append(f"{_pm(e, 100, 2)} [{100 * e.ci_low:.2f}, {100 * e.ci_high:.2f}]"
                         f"{_seeds_note(e, num_seeds)}")
            cells += [_pm(rec["min_dcf"][repr(float(p))], 1, 4) for p in P_TARGETS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _p_text(c: bootstrap.PairedSummary) -> str:
    """'p=0.034', or 'p<0.001' when no draw crossed 0 (the p-value resolves to 1 / draws)."""
    return f"p<{1.0 / c.num_draws:.2g}" if c.p_value == 0.0 and c.num_draws else f"p={c.p_value:.3f}"


def paired_table(mod: str, combos: Sequence[str], lists: Sequence[ListStats],
                 comparisons: dict[tuple[str, str, str], bootstrap.PairedSummary]) -> str:
    """Markdown: student minus baseline EER (points) per list: mean over seeds of the per-seed differences,
    95 % paired interval, verdict (Holm-adjusted verdict)."""
    header = ["Student"] + [f"{ls.name} {col}" for ls in lists for col in ("ΔEER [95 % CI]", "verdict (Holm)")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for combo in combos:
        cells = [f"L_AAM + L_{combo.replace('+', ' + L_')}"]
        for ls in lists:
            c = comparisons.get((mod, combo, ls.name))
            if c is None:
                cells += ["missing", "-"]
                continue
            cells += [f"{100 * c.mean_diff:+.2f} [{100 * c.ci_low:+.2f}, {100 * c.ci_high:+.2f}]",
                      f"{SHORT[c.verdict]} ({SHORT[c.holm_verdict]}), {_p_text(c)}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# per-seed analyses (first seed)
def corrected_section(systems: dict[str, SystemResults], modalities: Sequence[str], combos: Sequence[str],
                      trials: Sequence[str], venn_trials: str, out_dir: str, seed: int) -> tuple[str, dict[str, Any]]:
    """Markdown + json of the corrected-trials analysis of one seed; venn_<modality>.png for the best student."""
    lines = [f"## Trials corrected by KD (paper, Figure 3), seed {seed}", "",
             "A system accepts a trial when its score is at least that system's own EER threshold on the list. "
             "*corrected* = wrong for the modality's baseline and right for the KD student; *other right* = how "
             "many of those the other modality's baseline decided right; *broken* = right for the baseline, "
             "wrong for the student. Read *other right %* against the base rates: *other right, all %* = how "
             "often the other modality's baseline is right on all trials of the list, *other right | base wrong "
             "%* = on the trials the modality's baseline gets wrong (where any corrected trial comes from). "
             "Near its EER a baseline is right on about 1 - EER of the trials, so a high *other right %* alone "
             "says little.", ""]
    record: dict[str, Any] = {}
    for mod in modalities:
        if mod not in OTHER:
            continue
        base, other = systems.get(f"{mod}_baseline"), systems.get(f"{OTHER[mod]}_baseline")
        if base is None or other is None:
            continue
        lines += [f"### {mod} students (other modality: {OTHER[mod]})", "",
                  "| Student | Trials | baseline wrong | student wrong | corrected | other right | % | "
                  "other right, all % | other right \\| base wrong % | broken |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        best: tuple[float, str] | None = None
        for combo in combos:
            student = systems.get(student_name(mod, combo))
            if student is None:
                continue
            for t in trials:
                if t not in base.scores or t not in student.scores or t not in other.scores:
                    continue
                ref = base.scores[t]
                s_scores, _ = _aligned(ref, student.scores[t])
                o_scores, _ = _aligned(ref, other.scores[t])
                counts = corrected.corrected_counts(
                    ref.labels, (ref.scores, base.metrics[t].eer_threshold),
                    (s_scores, student.metrics[t].eer_threshold), (o_scores, other.metrics[t].eer_threshold))
                record.setdefault(mod, {}).setdefault(combo, {})[t] = dict(
                    vars(counts), other_right_fraction=counts.other_right_fraction,
                    other_right_rate=counts.other_right_rate,
                    other_right_given_baseline_wrong=counts.other_right_given_baseline_wrong)
                lines.append(f"| {combo} | {t} | {counts.baseline_wrong} | {counts.student_wrong} | "
                             f"{counts.corrected} | {counts.corrected_other_right} | "
                             f"{100 * counts.other_right_fraction:.0f} | {100 * counts.other_right_rate:.0f} | "
                             f"{100 * counts.other_right_given_baseline_wrong:.0f} | {counts.broken} |")
                if t == venn_trials and (best is None or student.metrics[t].eer < best[0]):
                    best = (student.metrics[t].eer, combo)
        lines.append("")
        if best is not None:
            counts = record[mod][best[1]][venn_trials]
            png = os.path.join(out_dir, f"venn_{mod}.png")
            plots.venn_plot(counts["venn"], [f"wrong: {mod} baseline", f"right: {mod} KD ({best[1]})",
                                             f"right: {OTHER[mod]} baseline"],
                            f"{mod} student {best[1]} (best EER on {venn_trials}), trials {venn_trials}", png)
            lines += [f"Venn diagram for the best {mod} student on {venn_trials} ({best[1]}): "
                      f"![venn {mod}](venn_{mod}.png); {counts['corrected']} trials corrected, "
                      f"{counts['corrected_other_right']} of them right for the {OTHER[mod]} baseline "
                      f"({100 * counts['other_right_fraction']:.0f} %, against a base rate of "
                      f"{100 * counts['other_right_given_baseline_wrong']:.0f} % on the trials the {mod} "
                      f"baseline gets wrong and {100 * counts['other_right_rate']:.0f} % on all trials).", ""]
    return "\n".join(lines), record


def agreement_section(systems: dict[str, SystemResults], names: Sequence[str], part: str,
                      seed: int) -> tuple[str, dict[str, Any]]:
    """Markdown + json of the student-teacher embedding agreement of one seed on `part` and the training set."""
    teacher = systems.get("teacher")
    if teacher is None:
        return "", {}
    teacher_emb = {s: teacher.embeddings(s) for s in (part, "train")}
    lines = [f"## Student-teacher embedding agreement, seed {seed}", "",
             "Against the fusion teacher's embeddings of the same utterances. *PCC (utt)*: for each utterance the "
             "Pearson correlation between the student's and the teacher's 512-d vectors (each centred over its "
             "dims), averaged over utterances; *PCC (flat)*: one Pearson correlation over all N x 512 values; "
             "*cos dist*: mean over utterances of 1 - cos(student, teacher), the COS loss. The paper reports "
             "PCC(visual, fused) = 0.079, PCC(audio, fused) = 0.007 for the baselines and a final cosine "
             "distance of 0.4217 (visual) / 0.583 (audio) for the COS students. *train* columns: the training "
             "utterances the system embedded (the whole set, or the mean-vector subset).", "",
             f"| System | {part} PCC (utt) | {part} PCC (flat) | {part} cos dist | train PCC (utt) | "
             "train cos dist |", "|---|---|---|---|---|---|"]
    record: dict[str, Any] = {}
    for name in names:
        res = systems.get(name)
        if res is None or name == "teacher":
            continue
        row = {}
        for subset in (part, "train"):
            emb = res.embeddings(subset)
            if emb is not None and teacher_emb[subset] is not None:
                row[subset] = correlation.agreement(emb, teacher_emb[subset])
        if not row:
            continue
        record[name] = row

        def cell(subset: str, key: str) -> str:
            value = row.get(subset, {}).get(key)
            return "-" if value is None else f"{value:.4f}"

        lines.append(f"| {name} | {cell(part, 'pcc_utterance')} | {cell(part, 'pcc_flattened')} | "
                     f"{cell(part, 'cosine_distance')} | {cell('train', 'pcc_utterance')} | "
                     f"{cell('train', 'cosine_distance')} |")
    return "\n".join(lines) + "\n", record


def teacher_gate(exp: str, seed: int, part: str, batch: int = 4096) -> dict[str, Any]:
    """Mean GATE value of the teacher of one seed over the utterances of `part`: z is the weight of the visual
    projection (models/gate_fusion.py: e = z h_visual + (1 - z) h_audio), so {visual: mean z, audio: 1 - mean
    z, num_utts}. Inputs: the seed's baselines' embeddings of `part`, as the teacher was extracted."""
    import torch

    from wespeaker_avkd.inference.extract import load_trained
    from wespeaker_avkd.scoring import load_embeddings

    root = seed_dir(exp, seed)
    tables = {m: load_embeddings(os.path.join(root, f"{m}_baseline", "embeddings", part, "xvector.scp"))
              for m in ("audio", "visual")}
    ia, iv, keys = correlation.common_keys(tables["audio"][0], tables["visual"][0])
    if not keys:
        raise InputValueError(f"{root}: the audio and visual baselines' {part} embeddings share no utterance")
    _, net, _ = load_trained(os.path.join(root, "teacher"))
    fusion = net.encoder
    if not hasattr(fusion, "gate_values"):
        raise ValueError(f"the teacher's encoder {type(fusion).__name__} has no gate")
    total, count = 0.0, 0
    for lo in range(0, len(keys), batch):
        a = torch.from_numpy(tables["audio"][1][ia[lo:lo + batch]])
        v = torch.from_numpy(tables["visual"][1][iv[lo:lo + batch]])
        z = fusion.gate_values(a, v)
        if z is None:
            raise ValueError(f"the teacher's fusion {type(fusion).__name__} exposes no gate values")
        total += float(z.double().mean(dim=1).sum())
        count += z.shape[0]
    mean_z = total / count
    return {"visual": mean_z, "audio": 1.0 - mean_z, "num_utts": count}


def gate_section(exp: str, seeds: Sequence[int], part: str) -> tuple[str, dict[str, Any]]:
    """Markdown + json of the teacher's mean gate per modality, per seed and over seeds."""
    record: dict[str, Any] = {"per_seed": {}, "unavailable": {}}
    for seed in seeds:
        if not os.path.isdir(os.path.join(seed_dir(exp, seed), "teacher")):
            continue
        try:
            record["per_seed"][str(seed)] = teacher_gate(exp, seed, part)
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as err:
            record["unavailable"][str(seed)] = f"{type(err).__name__}: {err}"
    if not record["per_seed"] and not record["unavailable"]:
        return "", {}
    lines = ["## GATE teacher: mean gate per modality", "",
             f"The GATE teacher fuses e = z h_visual + (1 - z) h_audio with a per-dimension gate z in (0, 1); the "
             f"table gives z and 1 - z averaged over dimensions and over the {part} utterances.", "",
             "| Seed | visual (mean z) | audio (mean 1 - z) | utterances |", "|---|---|---|---|"]
    for seed, g in record["per_seed"].items():
        lines.append(f"| {seed} | {g['visual']:.3f} | {g['audio']:.3f} | {g['num_utts']} |")
    if record["per_seed"]:
        z = [g["visual"] for g in record["per_seed"].values()]
        record["mean"] = {"visual": float(np.mean(z)), "audio": float(1.0 - np.mean(z))}
        lines.append(f"| mean | {np.mean(z):.3f} | {1.0 - np.mean(z):.3f} | |")
    for seed, why in record["unavailable"].items():
        lines.append(f"\nSeed {seed}: gate not available ({why}).")
    return "\n".join(lines) + "\n", record


def _scores_note(scores_dir: str) -> str:
    """The intro's sentence on where scores come from: empty for the plain cosine scores (<system>/scores)."""
    if scores_dir == "scores":
        return ""
    return (f" Scores read from `<system>/{scores_dir}/` (for `scores_asnorm`: the cosine scores after AS-norm "
            f"against each system's own cohort, see the recipe's README).")


# ----------------------------------------------------------------------------------------------------------------
def build_report(exp: str, out_dir: str, seeds: Sequence[int] = (1,), part: str = "eval",
                 trials: Sequence[str] = ("O", "E", "H"), utt2spk: str | None = None,
                 modalities: Sequence[str] = ("visual", "audio"), combos: Sequence[str] = PAPER_COMBOS,
                 num_boot: int = 1000, boot_seed: int = 0, venn_trials: str | None = None,
                 with_gate: bool = True, boot_scheme: str = "two-way", scores_dir: str = "scores") -> str:
    """Write results.md, results.json, det.png and venn_*.png into out_dir; return the tables as text.

    utt2spk (default data/<part>/utt2spk) maps every trial utterance to its identity for the bootstrap.
    scores_dir: the folder of each system whose <part>/<list>.score are read (e.g. scores_asnorm)."""
    from wespeaker_avkd.data.kaldi_dir import read_table
    from wespeaker_avkd.scoring import det_curve

    utt2spk = utt2spk or os.path.join("data", part, "utt2spk")
    names = system_names(modalities, combos)
    runs: dict[str, dict[int, SystemResults]] = {}
    missing: list[dict[str, Any]] = []
    for seed in seeds:
        for n in names:
            res = SystemResults(exp, seed, n, part, trials, scores_dir) if os.path.isdir(
                os.path.join(seed_dir(exp, seed), n)) else None
            for t in trials:
                if res is None or t not in res.scores:
                    missing.append({"system": n, "seed": seed, "list": t, "reason": "no score file"})
            if res is not None and res.scores:
                runs.setdefault(n, {})[seed] = res
    if not runs:
        raise FileNotFoundError(f"{exp}: no scored system (expected {exp}/seed<N>/<system>/{scores_dir}/{part}/"
                                f"<list>.score for seeds {' '.join(map(str, seeds))})")
    seeds_found = sorted({s for per_seed in runs.values() for s in per_seed})
    first = seeds_found[0]
    venn_trials = venn_trials or ("E" if "E" in trials else trials[0])

    spk = read_table(utt2spk)
    lists = [ls for ls in (list_statistics(t, runs, spk, num_boot, boot_seed, missing, boot_scheme)
                           for t in trials) if ls]
    comparisons: dict[tuple[str, str, str], bootstrap.PairedSummary] = {}
    for mod in modalities:
        for combo in combos:
            for ls in lists:
                c = paired(ls, student_name(mod, combo), f"{mod}_baseline")
                if c is not None:
                    comparisons[(mod, combo, ls.name)] = c
    bootstrap.apply_holm(list(comparisons.values()))
    num_cmp = len(comparisons)
    planned = len(modalities) * len(combos) * len(trials)

    num_seeds = len(seeds_found)
    weighting = "m(a) m(b)" if boot_scheme == "two-way" else "m(a) (its enrolment identity)"
    list_lines = [f"- {ls.name}: {ls.num_trials} trials ({ls.num_target} target, {ls.num_nontarget} nontarget), "
                  f"{ls.num_identities} identities" for ls in lists]
    tables = ["# Results", "",
              f"Part `{part}`, seeds found: {' '.join(map(str, seeds_found))} (asked: "
              f"{' '.join(map(str, seeds))}). EER in %, minDCF at p_target 0.01 and 0.05 (c_miss = c_fa = 1); "
              f"cosine scoring after subtracting each system's training mean vector. Cells: mean ± std over "
              f"seeds (std needs two seeds); EER with [95 % interval] of the mean over seeds from a {boot_scheme} "
              f"identity bootstrap ({num_boot} draws, seed {boot_seed}; identities drawn with replacement, trial "
              f"(a, b) weighted {weighting}, the same draws for every system and seed of a list). Method: "
              f"docs/statistics.md.{_scores_note(scores_dir)}", "", "Trial lists:", *list_lines, "",
              "## Table 1: single- and multi-modality systems", "",
              metrics_table([("Audio", "audio_baseline"), ("Visual", "visual_baseline"),
                             ("Audio-Visual (GATE teacher)", "teacher")], lists, num_seeds), ""]
    for number, mod in ((2, "visual"), (3, "audio")):
        if mod not in modalities:
            continue
        rows = [(f"{mod.capitalize()}-Baseline", f"{mod}_baseline")]
        rows += [(f"L_AAM + L_{c.replace('+', ' + L_')}", student_name(mod, c)) for c in combos]
        tables += [f"## Table {number}: {mod} students (AAM + KD loss)", "", metrics_table(rows, lists, num_seeds),
                   "", f"Student minus {mod} baseline, EER points (negative = the student is better): mean over "
                   f"seeds of the per-seed differences, 95 % paired bootstrap interval, verdict from the interval "
                   f"and, in brackets, after Holm-Bonferroni over all {num_cmp} comparisons of this report.", "",
                   paired_table(mod, combos, lists, comparisons), ""]
    expected = 0.05 * num_cmp
    tables += ["### Multiple comparisons", "",
               f"{num_cmp} student-vs-baseline comparisons ({planned} planned: {len(modalities)} modalities x "
               f"{len(combos)} KD combinations x {len(trials)} lists). At 95 % each, about {expected:.1f} of them "
               f"would exclude 0 by chance alone even if no student differed from its baseline; the Holm verdicts "
               f"keep the chance of any false 'better'/'worse' at 5 %. With {num_boot} draws a p-value resolves "
               f"to {1.0 / num_boot:.4f}, and the strictest Holm step needs p <= {0.05 / max(num_cmp, 1):.4f}.", ""]
    grouped: dict[tuple[str, int, str], list[str]] = {}
    for m in missing:
        grouped.setdefault((m["system"], m["seed"], m["reason"]), []).append(m["list"])
    missing_lines = [f"- {name} seed {seed}, list(s) {' '.join(ls)}: {why}" for (name, seed, why), ls in
                     grouped.items()]
    if missing_lines:
        tables += ["### Missing", "", *missing_lines, ""]
    tables_text = "\n".join(tables)

    systems = {n: per_seed[first] for n, per_seed in runs.items() if first in per_seed}
    corrected_md, corrected_json = corrected_section(systems, modalities, combos, trials, venn_trials, out_dir,
                                                     first)
    agreement_md, agreement_json = agreement_section(systems, names, part, first)
    gate_md, gate_json = gate_section(exp, seeds_found, part) if with_gate else ("", {})

    curves: dict[str, dict[str, Any]] = {t: {} for t in trials}
    for name, res in systems.items():
        for t, ts in res.scores.items():
            p_fa, p_miss = det_curve(ts.scores, ts.labels)
            curves[t][name] = (p_fa, p_miss, res.metrics[t].eer)
    curves = {t: c for t, c in curves.items() if c}
    plots.det_plot(curves, os.path.join(out_dir, "det.png"))

    md = "\n".join([tables_text, corrected_md, agreement_md, gate_md, f"## DET curves, seed {first}", "",
                    "![DET curves](det.png)", ""])
    with atomic_write(os.path.join(out_dir, "results.md")) as f:
        f.write(md)
    settings = {"exp": exp, "part": part, "seeds_asked": list(seeds), "seeds_found": seeds_found,
                "trials": list(trials), "utt2spk": utt2spk, "num_boot": num_boot, "boot_seed": boot_seed,
                "boot_scheme": boot_scheme, "level": bootstrap.LEVEL, "p_targets": list(P_TARGETS), "first_seed": first}
    if scores_dir != "scores":  # recorded only when not the default, so the default report stays as it was
        settings["scores_dir"] = scores_dir
    record = {
        "settings": settings,
        "lists": {ls.name: {"num_trials": ls.num_trials, "num_target": ls.num_target,
                            "num_nontarget": ls.num_nontarget, "num_identities": ls.num_identities} for ls in lists},
        "summary": {ls.name: {n: {"eer": r["eer"].to_dict(),
                                  "min_dcf": {p: v.to_dict() for p, v in r["min_dcf"].items()}}
                              for n, r in ls.systems.items()} for ls in lists},
        "metrics": {n: {str(s): {t: m.to_dict() for t, m in r.metrics.items()} for s, r in per_seed.items()}
                    for n, per_seed in runs.items()},
        "paired": {f"{mod}/{combo}/{t}": c.to_dict() for (mod, combo, t), c in comparisons.items()},
        "multiple_comparisons": {"num_comparisons": num_cmp, "planned": planned, "alpha": 0.05,
                                 "expected_by_chance": expected},
        "missing": missing, "corrected_trials": corrected_json, "agreement": agreement_json, "gate": gate_json,
        "venn_trials": venn_trials}
    with atomic_write(os.path.join(out_dir, "results.json")) as f:
        json.dump(record, f, indent=1, default=float)
    logger.info("report written to %s", out_dir)
    return tables_text
