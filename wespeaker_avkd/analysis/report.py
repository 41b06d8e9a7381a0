"""Stage 8: the study's report under exp/report (results.md, results.json, det.png, venn_<modality>.png).

Tables follow the paper: Table 1 single- and multi-modality systems, Table 2 visual students, Table 3 audio
students, each with EER % and minDCF (p_target 0.01, 0.05) on every trial list; then the corrected-trials
analysis (Figure 3), the student-teacher embedding agreement (PCC, cosine distance) and DET curves.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from wespeaker_avkd.analysis import correlation, corrected, plots
from wespeaker_avkd.utils.fileio import atomic_write

logger = logging.getLogger("wespeaker_avkd.report")

P_TARGETS = (0.01, 0.05)
OTHER = {"audio": "visual", "visual": "audio"}
PAPER_COMBOS = ("COS", "KL", "MMD", "COS+KL", "COS+MMD", "KL+MMD")


def student_name(modality: str, combo: str) -> str:
    """exp dir name of a KD student: ('visual', 'COS+KL') -> 'visual_kd_cos_kl' (as run.sh names it)."""
    return f"{modality}_kd_{combo.lower().replace('+', '_')}"


class SystemResults:
    """Scores and metrics of one system on every trial list it was scored on."""

    def __init__(self, exp: str, name: str, trials: Sequence[str]) -> None:
        from wespeaker_avkd.scoring import compute_metrics, read_score_file

        self.name = name
        self.dir = os.path.join(exp, name)
        self.scores: Dict[str, Any] = {}
        self.metrics: Dict[str, Any] = {}
        for t in trials:
            path = os.path.join(self.dir, "scores", f"{t}.score")
            if os.path.isfile(path):
                ts = read_score_file(path)
                self.scores[t] = ts
                self.metrics[t] = compute_metrics(ts.scores, ts.labels, P_TARGETS)

    def embeddings(self, subset: str) -> Optional[Tuple[List[str], np.ndarray]]:
        """(keys, (N, D)) of embeddings/<subset>/xvector.scp, or None when absent. For "train", a student that
        embedded only the training subset of its mean vector (embeddings/train_mean) gives that subset."""
        from wespeaker_avkd.scoring import load_embeddings

        for name in (subset, "train_mean") if subset == "train" else (subset,):
            path = os.path.join(self.dir, "embeddings", name, "xvector.scp")
            if os.path.isfile(path):
                return load_embeddings(path)
        return None


def _metric_cells(res: Optional[SystemResults], trials: Sequence[str]) -> List[str]:
    """EER %, minDCF 0.01, minDCF 0.05 per trial list ('-' when not scored)."""
    cells = []
    for t in trials:
        m = res.metrics.get(t) if res is not None else None
        if m is None:
            cells += ["-", "-", "-"]
        else:
            cells += [f"{100 * m.eer:.3f}"] + [f"{m.min_dcf[repr(float(p))]:.4f}" for p in P_TARGETS]
    return cells


def metrics_table(rows: Sequence[Tuple[str, Optional[SystemResults]]], trials: Sequence[str]) -> str:
    """Markdown table: one row per (label, system), EER % / minDCF0.01 / minDCF0.05 per trial list."""
    header = ["System"] + [f"{t} {col}" for t in trials for col in ("EER%", "minDCF0.01", "minDCF0.05")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, res in rows:
        lines.append("| " + " | ".join([label] + _metric_cells(res, trials)) + " |")
    return "\n".join(lines)


def _aligned(ref, other) -> Tuple[np.ndarray, np.ndarray]:
    """other's (scores) reordered to ref's trial order."""
    idx = corrected.align_trials(list(zip(ref.enroll, ref.test)), list(zip(other.enroll, other.test)))
    return other.scores[idx], other.labels[idx]


def corrected_section(systems: Dict[str, SystemResults], modalities: Sequence[str], combos: Sequence[str],
                      trials: Sequence[str], venn_trials: str, out_dir: str) -> Tuple[str, Dict[str, Any]]:
    """Markdown + json of the corrected-trials analysis; draws venn_<modality>.png for the best student."""
    lines = ["## Trials corrected by KD (paper, Figure 3)", "",
             "A system accepts a trial when its score is at least that system's own EER threshold on the list. "
             "*corrected* = wrong for the modality's baseline and right for the KD student; *other right* = how "
             "many of those the other modality's baseline decided right; *broken* = right for the baseline, "
             "wrong for the student.", ""]
    record: Dict[str, Any] = {}
    for mod in modalities:
        if mod not in OTHER:
            continue
        base, other = systems.get(f"{mod}_baseline"), systems.get(f"{OTHER[mod]}_baseline")
        if base is None or other is None:
            continue
        lines += [f"### {mod} students (other modality: {OTHER[mod]})", "",
                  "| Student | Trials | baseline wrong | student wrong | corrected | other right | % | broken |",
                  "|---|---|---|---|---|---|---|---|"]
        best: Optional[Tuple[float, str]] = None
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
                    vars(counts), other_right_fraction=counts.other_right_fraction)
                lines.append(f"| {combo} | {t} | {counts.baseline_wrong} | {counts.student_wrong} | "
                             f"{counts.corrected} | {counts.corrected_other_right} | "
                             f"{100 * counts.other_right_fraction:.0f} | {counts.broken} |")
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
                      f"{counts['corrected_other_right']} of them right for the {OTHER[mod]} baseline.", ""]
    return "\n".join(lines), record


def agreement_section(systems: Dict[str, SystemResults], names: Sequence[str]) -> Tuple[str, Dict[str, Any]]:
    """Markdown + json of the student-teacher embedding agreement on the eval and train sets."""
    teacher = systems.get("teacher")
    if teacher is None:
        return "", {}
    teacher_emb = {s: teacher.embeddings(s) for s in ("eval", "train")}
    lines = ["## Student-teacher embedding agreement", "",
             "Against the fusion teacher's embeddings of the same utterances. *PCC (utt)*: for each utterance the "
             "Pearson correlation between the student's and the teacher's 512-d vectors (each centred over its "
             "dims), averaged over utterances; *PCC (flat)*: one Pearson correlation over all N x 512 values; "
             "*cos dist*: mean over utterances of 1 - cos(student, teacher), the COS loss. The paper reports "
             "PCC(visual, fused) = 0.079, PCC(audio, fused) = 0.007 for the baselines and a final cosine "
             "distance of 0.4217 (visual) / 0.583 (audio) for the COS students. *train* columns: the training "
             "utterances the system embedded (the whole set, or the students' mean-vector subset).", "",
             "| System | eval PCC (utt) | eval PCC (flat) | eval cos dist | train PCC (utt) | train cos dist |",
             "|---|---|---|---|---|---|"]
    record: Dict[str, Any] = {}
    for name in names:
        res = systems.get(name)
        if res is None or name == "teacher":
            continue
        row = {}
        for subset in ("eval", "train"):
            emb = res.embeddings(subset)
            if emb is not None and teacher_emb[subset] is not None:
                row[subset] = correlation.agreement(emb, teacher_emb[subset])
        if not row:
            continue
        record[name] = row

        def cell(subset: str, key: str) -> str:
            value = row.get(subset, {}).get(key)
            return "-" if value is None else f"{value:.4f}"

        lines.append(f"| {name} | {cell('eval', 'pcc_utterance')} | {cell('eval', 'pcc_flattened')} | "
                     f"{cell('eval', 'cosine_distance')} | {cell('train', 'pcc_utterance')} | "
                     f"{cell('train', 'cosine_distance')} |")
    return "\n".join(lines) + "\n", record


def build_report(exp: str, out_dir: str, trials: Sequence[str] = ("O", "E", "H"),
                 modalities: Sequence[str] = ("visual", "audio"), combos: Sequence[str] = PAPER_COMBOS,
                 venn_trials: Optional[str] = None) -> str:
    """Write results.md, results.json, det.png and venn_*.png into out_dir; return the tables as text."""
    from wespeaker_avkd.scoring import det_curve

    os.makedirs(out_dir, exist_ok=True)
    names = ["audio_baseline", "visual_baseline", "teacher"] + [student_name(m, c) for m in modalities
                                                                   for c in combos]
    systems = {n: SystemResults(exp, n, trials) for n in names if os.path.isdir(os.path.join(exp, n))}
    systems = {n: r for n, r in systems.items() if r.metrics}
    if not systems:
        raise FileNotFoundError(f"{exp}: no scored system (expected {exp}/<system>/scores/<trials>.score)")
    venn_trials = venn_trials or ("E" if "E" in trials else trials[0])

    tables = ["# Results", "", f"EER in %, minDCF at p_target 0.01 and 0.05 (c_miss = c_fa = 1), cosine scoring "
              f"with the training-set mean subtracted; trial lists {', '.join(trials)}.", "",
              "## Table 1: single- and multi-modality systems", "",
              metrics_table([("Audio", systems.get("audio_baseline")), ("Visual", systems.get("visual_baseline")),
                             ("Audio-Visual (GATE teacher)", systems.get("teacher"))], trials), ""]
    for number, mod in ((2, "visual"), (3, "audio")):
        if mod not in modalities:
            continue
        rows = [(f"{mod.capitalize()}-Baseline", systems.get(f"{mod}_baseline"))]
        rows += [(f"L_AAM + L_{c.replace('+', ' + L_')}", systems.get(student_name(mod, c))) for c in combos]
        tables += [f"## Table {number}: {mod} students (AAM + KD loss)", "", metrics_table(rows, trials), ""]
    tables_text = "\n".join(tables)

    corrected_md, corrected_json = corrected_section(systems, modalities, combos, trials, venn_trials, out_dir)
    agreement_md, agreement_json = agreement_section(systems, names)

    curves = {t: {} for t in trials}
    for name, res in systems.items():
        for t, ts in res.scores.items():
            p_fa, p_miss = det_curve(ts.scores, ts.labels)
            curves[t][name] = (p_fa, p_miss, res.metrics[t].eer)
    curves = {t: c for t, c in curves.items() if c}
    plots.det_plot(curves, os.path.join(out_dir, "det.png"))

    md = "\n".join([tables_text, corrected_md, agreement_md, "## DET curves", "", "![DET curves](det.png)", ""])
    with atomic_write(os.path.join(out_dir, "results.md")) as f:
        f.write(md)
    record = {"metrics": {n: {t: m.to_dict() for t, m in r.metrics.items()} for n, r in systems.items()},
              "corrected_trials": corrected_json, "agreement": agreement_json, "venn_trials": venn_trials}
    with atomic_write(os.path.join(out_dir, "results.json")) as f:
        json.dump(record, f, indent=1, default=float)
    logger.info("report written to %s", out_dir)
    return tables_text
