"""The study's report under exp/report (results.md, results.json, det.png, venn_<modality>.png).

Reads exp/seed<N>/<system>/scores/<part>/<list>.score for every seed and system. Tables follow the paper:
Table 1 single- and multi-modality systems, Table 2 visual students, Table 3 audio students, each with EER %
and minDCF (p_target 0.01, 0.05) per trial list as mean +- std over seeds, the EER with a 95 % identity
bootstrap interval (analysis.bootstrap, calibrated per-identity weighting; method in docs/statistics.md), and
every student's paired difference to its baseline with an interval that includes the seed variance, a verdict
(plain and Holm-Bonferroni-adjusted over all comparisons of the report) and the minimal detectable effect; the
targets shared between lists; the pair-vs-best-single and teacher-vs-best-student comparisons chosen on dev and
the dev seed-count section; the commit and command that made the report. Then the
corrected-trials analysis (Figure 3) with the other modality's base rate, the student-teacher embedding
agreement (PCC, cosine distance), the GATE teacher's mean gate per modality, and DET curves. Per-seed analyses
(corrected trials, agreement, DET) use the first seed found.

Three steps, one module each: analysis.collect (settings, score files, metrics, embeddings), analysis.compute
(the numbers; the teacher's gate in analysis.gate; the dev-chosen comparisons and the dev power section in
analysis.choices; the code's commit in analysis.provenance), analysis.render (markdown, json, figures).
"""
from __future__ import annotations

import logging

from wespeaker_avkd.analysis.choices import dev_sections
from wespeaker_avkd.analysis.collect import ReportSettings, collect_runs, system_names
from wespeaker_avkd.analysis.compute import compute_report
from wespeaker_avkd.analysis.learning_curves import collect_curves
from wespeaker_avkd.analysis.provenance import code_provenance
from wespeaker_avkd.analysis.render import write_report

logger = logging.getLogger("wespeaker_avkd.report")


def make_report(settings: ReportSettings, out_dir: str) -> str:
    """Collect the exp tree's results, compute the report's numbers, write them into out_dir; return the tables
    as markdown text."""
    from wespeaker_avkd.data.kaldi_dir import read_table

    names = system_names(settings.modalities, settings.combos)
    runs, missing = collect_runs(settings, names)
    utt2spk = read_table(settings.utt2spk_path)
    numbers = compute_report(settings, names, runs, missing, utt2spk)
    numbers.dev = dev_sections(settings, names, numbers.lists)
    numbers.provenance = code_provenance(settings.command)
    numbers.learning_curves = collect_curves(settings.exp, settings.seeds, names)
    tables_text = write_report(settings, numbers, out_dir)
    logger.info("report written to %s", out_dir)
    return tables_text
