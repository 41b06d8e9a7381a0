"""The report's last step: the computed numbers as results.md (tables and sections), results.json and the
figures (det.png, venn_<modality>.png)."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from wespeaker_avkd.analysis import plots, summaries
from wespeaker_avkd.analysis.collect import P_TARGETS, ReportSettings
from wespeaker_avkd.analysis.compute import (
    ALPHA,
    Comparisons,
    CorrectedModality,
    ListStats,
    ReportNumbers,
    multiple_comparisons,
)
from wespeaker_avkd.analysis.learning_curves import curves_markdown, plot_curves
from wespeaker_avkd.analysis.overlap import shared_targets_lines
from wespeaker_avkd.analysis.render_sections import dev_markdown, method_note, paired_cells, provenance_lines
from wespeaker_avkd.utils.fileio import atomic_write
from wespeaker_avkd.utils.naming import TEACHER, baseline_name, student_name


def _row(cells: Sequence[str]) -> str:
    """One markdown table row."""
    return "| " + " | ".join(cells) + " |"


def _pm(summary: summaries.SystemSummary, scale: float, digits: int) -> str:
    """'mean +- std' (std omitted with one seed)."""
    text = f"{scale * summary.mean:.{digits}f}"
    if np.isfinite(summary.std):
        text += f" ± {scale * summary.std:.{digits}f}"
    return text


def _seeds_note(summary: summaries.SystemSummary, num_seeds: int) -> str:
    """' (2/3 seeds)' when a system lacks seeds."""
    return "" if len(summary.seeds) == num_seeds else f" ({len(summary.seeds)}/{num_seeds} seeds)"


def _combo_label(combo: str) -> str:
    """The paper's row label of a KD combination: 'COS+KL' -> 'L_AAM + L_COS + L_KL'."""
    return f"L_AAM + L_{combo.replace('+', ' + L_')}"


def metrics_table(rows: Sequence[tuple[str, str]], lists: Sequence[ListStats], num_seeds: int) -> str:
    """Markdown: one row per (label, system); per list EER % mean +- std [95 % CI], minDCF0.01 and 0.05
    mean +- std; 'missing' where a system has no scores."""
    header = ["System"] + [f"{ls.name} {col}" for ls in lists for col in ("EER % [95 % CI]", "minDCF0.01",
                                                                          "minDCF0.05")]
    lines = [_row(header), "|" + "---|" * len(header)]
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
        lines.append(_row(cells))
    return "\n".join(lines)


def paired_table(mod: str, combos: Sequence[str], lists: Sequence[ListStats], comparisons: Comparisons) -> str:
    """Markdown: student minus baseline EER (points) per list: mean over seeds of the per-seed differences,
    95 % paired interval, verdict (Holm-adjusted verdict)."""
    header = ["Student"] + [f"{ls.name} {col}" for ls in lists for col in ("ΔEER [95 % CI]", "verdict (Holm)")]
    lines = [_row(header), "|" + "---|" * len(header)]
    for combo in combos:
        cells = [_combo_label(combo)]
        for ls in lists:
            cells += paired_cells(comparisons.get((mod, combo, ls.name)))
        lines.append(_row(cells))
    return "\n".join(lines)


def _scores_note(scores_dir: str) -> str:
    """The intro's sentence on where scores come from: empty for the plain cosine scores (<system>/scores)."""
    if scores_dir == "scores":
        return ""
    return (f" Scores read from `<system>/{scores_dir}/` (for `scores_asnorm`: the cosine scores after AS-norm "
            f"against each system's own cohort, see the recipe's README).")


def _intro(s: ReportSettings, numbers: ReportNumbers) -> list[str]:
    """The title, the method paragraph and the trial lists."""
    weighting = {"two-way": "m(a) m(b)", "one-way": "m(a) (its enrolment identity)",
                 "per-identity": "by m of each distinct identity it involves (m(a) for a target, m(a) m(b) for a "
                                 "nontarget)"}[s.boot_scheme]
    list_lines = [f"- {ls.name}: {ls.num_trials} trials ({ls.num_target} target, {ls.num_nontarget} nontarget), "
                  f"{ls.num_identities} identities" for ls in numbers.lists]
    return ["# Results", "",
            f"Part `{s.part}`, seeds found: {' '.join(map(str, numbers.seeds_found))} (asked: "
            f"{' '.join(map(str, s.seeds))}). EER in %, minDCF at p_target 0.01 and 0.05 (c_miss = c_fa = 1); "
            f"cosine scoring after subtracting each system's training mean vector. Cells: mean ± std over "
            f"seeds (std needs two seeds); EER with [95 % interval] of the mean over seeds from a {s.boot_scheme} "
            f"identity bootstrap ({s.num_boot} draws, seed {s.boot_seed}; identities drawn with replacement, trial "
            f"(a, b) weighted {weighting}, the same draws for every system and seed of a list); this interval "
            f"covers the test identities for the trained models only, the ± std the seeds. The paired comparisons "
            f"below include both. Method: docs/statistics.md.{_scores_note(s.scores_dir)}", "",
            *provenance_lines(numbers.provenance),
            "Trial lists:", *list_lines, "", *shared_targets_lines(numbers.shared_targets)]


def _student_tables(s: ReportSettings, numbers: ReportNumbers, num_cmp: int) -> list[str]:
    """Tables 2 (visual) and 3 (audio): each modality's baseline and students, then the paired differences."""
    lines: list[str] = []
    num_seeds = len(numbers.seeds_found)
    for number, mod in ((2, "visual"), (3, "audio")):
        if mod not in s.modalities:
            continue
        rows = [(f"{mod.capitalize()}-Baseline", baseline_name(mod))]
        rows += [(_combo_label(c), student_name(mod, c)) for c in s.combos]
        lines += [f"## Table {number}: {mod} students (AAM + KD loss)", "",
                  metrics_table(rows, numbers.lists, num_seeds), "",
                  f"Student minus {mod} baseline, EER points (negative = the student is better): mean over "
                  f"seeds of the per-seed differences, 95 % interval about the method (t interval whose standard "
                  f"error adds the seed variance of the per-seed differences to the identity-bootstrap variance, "
                  f"Welch df), verdict from the interval and, in brackets, after Holm-Bonferroni over all "
                  f"{num_cmp} comparisons of this report; p two-sided; MDE = minimal detectable effect at 80 % "
                  f"power (in brackets: at the strictest Holm step).", "",
                  paired_table(mod, s.combos, numbers.lists, numbers.comparisons), "",
                  *method_note([c for k, c in numbers.comparisons.items() if k[0] == mod])]
    return lines


def _missing_lines(missing: Sequence[dict[str, Any]]) -> list[str]:
    """The '### Missing' section: one line per (system, seed, reason) with its lists; [] when nothing is."""
    grouped: dict[tuple[str, int, str], list[str]] = {}
    for m in missing:
        grouped.setdefault((m["system"], m["seed"], m["reason"]), []).append(m["list"])
    lines = [f"- {name} seed {seed}, list(s) {' '.join(ls)}: {why}" for (name, seed, why), ls in grouped.items()]
    return ["### Missing", "", *lines, ""] if lines else []


def tables_markdown(s: ReportSettings, numbers: ReportNumbers) -> str:
    """Intro, Tables 1-3 with the paired differences, the multiple-comparisons note and the missing runs."""
    num_cmp = len(numbers.comparisons)
    mc = multiple_comparisons(num_cmp, len(s.modalities) * len(s.combos) * len(s.trials))
    table1 = [("Audio", baseline_name("audio")), ("Visual", baseline_name("visual")),
              ("Audio-Visual (GATE teacher)", TEACHER)]
    lines = _intro(s, numbers) + ["## Table 1: single- and multi-modality systems", "",
                                  metrics_table(table1, numbers.lists, len(numbers.seeds_found)), ""]
    lines += _student_tables(s, numbers, num_cmp)
    lines += dev_markdown(numbers.dev, [ls.name for ls in numbers.lists])
    lines += ["### Multiple comparisons", "",
              f"{num_cmp} student-vs-baseline comparisons ({mc['planned']} planned: {len(s.modalities)} modalities x "
              f"{len(s.combos)} KD combinations x {len(s.trials)} lists). At 95 % each, about "
              f"{mc['expected_by_chance']:.1f} of them would exclude 0 by chance alone even if no student differed "
              f"from its baseline; the Holm verdicts keep the chance of any false 'better'/'worse' at 5 %. The "
              f"t-based p-values (two seeds or more) are continuous: a verdict moves with the bootstrap seed only "
              f"through the small Monte-Carlo noise of the identity variance. A bootstrap p-value (one seed) moves "
              f"in steps of 2 / {s.num_boot} draws = {2.0 / s.num_boot:.4f}. The strictest Holm step needs "
              f"p <= {ALPHA / max(num_cmp, 1):.4f}.", ""]
    return "\n".join(lines + _missing_lines(numbers.missing))


CORRECTED_INTRO = (
    "A system accepts a trial when its score is at least that system's own EER threshold on the list. "
    "*corrected* = wrong for the modality's baseline and right for the KD student; *other right* = how "
    "many of those the other modality's baseline decided right; *broken* = right for the baseline, "
    "wrong for the student. Read *other right %* against the base rates: *other right, all %* = how "
    "often the other modality's baseline is right on all trials of the list, *other right | base wrong "
    "%* = on the trials the modality's baseline gets wrong (where any corrected trial comes from). "
    "Near its EER a baseline is right on about 1 - EER of the trials, so a high *other right %* alone "
    "says little.")


def _venn(cm: CorrectedModality, venn_trials: str, out_dir: str) -> list[str]:
    """Draw venn_<modality>.png of the modality's best student; its paragraph ([] without a best student)."""
    if cm.best is None:
        return []
    mod, other, combo = cm.modality, cm.other, cm.best[1]
    counts = cm.counts[combo][venn_trials]
    plots.venn_plot(counts["venn"], [f"wrong: {mod} baseline", f"right: {mod} KD ({combo})",
                                     f"right: {other} baseline"],
                    f"{mod} student {combo} (best EER on {venn_trials}), trials {venn_trials}",
                    os.path.join(out_dir, f"venn_{mod}.png"))
    return [f"Venn diagram for the best {mod} student on {venn_trials} ({combo}): "
            f"![venn {mod}](venn_{mod}.png); {counts['corrected']} trials corrected, "
            f"{counts['corrected_other_right']} of them right for the {other} baseline "
            f"({100 * counts['other_right_fraction']:.0f} %, against a base rate of "
            f"{100 * counts['other_right_given_baseline_wrong']:.0f} % on the trials the {mod} "
            f"baseline gets wrong and {100 * counts['other_right_rate']:.0f} % on all trials).", ""]


def corrected_markdown(corrected: Sequence[CorrectedModality], venn_trials: str, out_dir: str, seed: int) -> str:
    """The corrected-trials section of one seed; draws venn_<modality>.png for each modality's best student."""
    lines = [f"## Trials corrected by KD (paper, Figure 3), seed {seed}", "", CORRECTED_INTRO, ""]
    for cm in corrected:
        lines += [f"### {cm.modality} students (other modality: {cm.other})", "",
                  "| Student | Trials | baseline wrong | student wrong | corrected | other right | % | "
                  "other right, all % | other right \\| base wrong % | broken |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for combo, per_list in cm.counts.items():
            for t, c in per_list.items():
                lines.append(f"| {combo} | {t} | {c['baseline_wrong']} | {c['student_wrong']} | "
                             f"{c['corrected']} | {c['corrected_other_right']} | "
                             f"{100 * c['other_right_fraction']:.0f} | {100 * c['other_right_rate']:.0f} | "
                             f"{100 * c['other_right_given_baseline_wrong']:.0f} | {c['broken']} |")
        lines.append("")
        lines += _venn(cm, venn_trials, out_dir)
    return "\n".join(lines)


AGREEMENT_INTRO = (
    "Against the fusion teacher's embeddings of the same utterances. *PCC (utt)*: for each utterance the "
    "Pearson correlation between the student's and the teacher's 512-d vectors (each centred over its "
    "dims), averaged over utterances; *PCC (flat)*: one Pearson correlation over all N x 512 values; "
    "*cos dist*: mean over utterances of 1 - cos(student, teacher), the COS loss. The paper reports "
    "PCC(visual, fused) = 0.079, PCC(audio, fused) = 0.007 for the baselines and a final cosine "
    "distance of 0.4217 (visual) / 0.583 (audio) for the COS students. *train* columns: the training "
    "utterances the system embedded (the whole set, or the mean-vector subset).")


def agreement_markdown(agreement: dict[str, dict[str, dict[str, float]]] | None, part: str, seed: int) -> str:
    """The student-teacher embedding agreement section of one seed ("" without a teacher)."""
    if agreement is None:
        return ""
    lines = [f"## Student-teacher embedding agreement, seed {seed}", "", AGREEMENT_INTRO, "",
             f"| System | {part} PCC (utt) | {part} PCC (flat) | {part} cos dist | train PCC (utt) | "
             "train cos dist |", "|---|---|---|---|---|---|"]
    for name, row in agreement.items():
        def cell(subset: str, key: str) -> str:
            value = row.get(subset, {}).get(key)
            return "-" if value is None else f"{value:.4f}"

        lines.append(f"| {name} | {cell(part, 'pcc_utterance')} | {cell(part, 'pcc_flattened')} | "
                     f"{cell(part, 'cosine_distance')} | {cell('train', 'pcc_utterance')} | "
                     f"{cell('train', 'cosine_distance')} |")
    return "\n".join(lines) + "\n"


def gate_markdown(gate: dict[str, Any], part: str) -> str:
    """The GATE teacher's mean gate per modality, per seed and over seeds ("" when no seed has a teacher)."""
    if not gate:
        return ""
    lines = ["## GATE teacher: mean gate per modality", "",
             f"The GATE teacher fuses e = z h_visual + (1 - z) h_audio with a per-dimension gate z in (0, 1); the "
             f"table gives z and 1 - z averaged over dimensions and over the {part} utterances.", "",
             "| Seed | visual (mean z) | audio (mean 1 - z) | utterances |", "|---|---|---|---|"]
    for seed, g in gate["per_seed"].items():
        lines.append(f"| {seed} | {g['visual']:.3f} | {g['audio']:.3f} | {g['num_utts']} |")
    if "mean" in gate:
        lines.append(f"| mean | {gate['mean']['visual']:.3f} | {gate['mean']['audio']:.3f} | |")
    for seed, why in gate["unavailable"].items():
        lines.append(f"\nSeed {seed}: gate not available ({why}).")
    return "\n".join(lines) + "\n"


def _settings_record(s: ReportSettings, numbers: ReportNumbers) -> dict[str, Any]:
    """results.json's settings."""
    settings = {"exp": s.exp, "part": s.part, "seeds_asked": list(s.seeds), "seeds_found": numbers.seeds_found,
                "trials": list(s.trials), "utt2spk": s.utt2spk_path, "num_boot": s.num_boot,
                "boot_seed": s.boot_seed, "boot_scheme": s.boot_scheme, "level": summaries.LEVEL,
                "p_targets": list(P_TARGETS), "first_seed": numbers.first_seed, "identity_weighting": s.boot_scheme,
                "paired_method": summaries.METHOD_T, "dev_part": s.dev_part, "mde_effect": s.mde_effect}
    if s.scores_dir != "scores":  # recorded only when not the default, so the default report stays as it was
        settings["scores_dir"] = s.scores_dir
    return settings


def results_record(s: ReportSettings, numbers: ReportNumbers) -> dict[str, Any]:
    """results.json: settings, list sizes, summaries, per-seed metrics, paired comparisons and the sections."""
    lists = numbers.lists
    return {
        # where the numbers come from (analysis/provenance.py): tools/publish_results.py reads these two
        "commit": numbers.provenance.get("commit"), "command": numbers.provenance.get("command"),
        "settings": _settings_record(s, numbers),
        "lists": {ls.name: {"num_trials": ls.num_trials, "num_target": ls.num_target,
                            "num_nontarget": ls.num_nontarget, "num_identities": ls.num_identities} for ls in lists},
        "summary": {ls.name: {n: {"eer": r["eer"].to_dict(),
                                  "min_dcf": {p: v.to_dict() for p, v in r["min_dcf"].items()}}
                              for n, r in ls.systems.items()} for ls in lists},
        "metrics": {n: {str(seed): {t: m.to_dict() for t, m in r.metrics.items()} for seed, r in per_seed.items()}
                    for n, per_seed in numbers.runs.items()},
        "paired": {f"{mod}/{combo}/{t}": c.to_dict() for (mod, combo, t), c in numbers.comparisons.items()},
        "multiple_comparisons": multiple_comparisons(len(numbers.comparisons),
                                                     len(s.modalities) * len(s.combos) * len(s.trials)),
        "missing": numbers.missing,
        "corrected_trials": {cm.modality: cm.counts for cm in numbers.corrected if cm.counts},
        "agreement": numbers.agreement or {}, "gate": numbers.gate, "venn_trials": s.venn_list,
        "shared_targets": numbers.shared_targets, "provenance": numbers.provenance,
        "dev_chosen": numbers.dev.to_dict() if numbers.dev is not None else None,
        "learning_curves": [c.to_dict() for c in numbers.learning_curves]}


def write_report(s: ReportSettings, numbers: ReportNumbers, out_dir: str) -> str:
    """Write results.md, results.json, det.png and venn_*.png into out_dir; return the tables' markdown."""
    first = numbers.first_seed
    tables_text = tables_markdown(s, numbers)
    corrected_md = corrected_markdown(numbers.corrected, s.venn_list, out_dir, first)
    plots.det_plot(numbers.curves, os.path.join(out_dir, "det.png"))
    curves_md = curves_markdown(numbers.learning_curves)
    if numbers.learning_curves:
        plot_curves(numbers.learning_curves, os.path.join(out_dir, "learning_curves.png"))
        curves_md += "\n![Learning curves on dev](learning_curves.png)\n"
    md = "\n".join([tables_text, curves_md, corrected_md, agreement_markdown(numbers.agreement, s.part, first),
                    gate_markdown(numbers.gate, s.part), f"## DET curves, seed {first}", "",
                    "![DET curves](det.png)", ""])
    with atomic_write(os.path.join(out_dir, "results.md")) as f:
        f.write(md)
    with atomic_write(os.path.join(out_dir, "results.json")) as f:
        json.dump(results_record(s, numbers), f, indent=1, default=float)
    return tables_text
