"""Sections of results.md beside the tables: the cells of a paired comparison, the one-seed note, the code's
provenance, the dev-chosen comparisons (pair vs best single, teacher vs best student) and the dev power section."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wespeaker_avkd.analysis import summaries
from wespeaker_avkd.analysis.choices import MDE_SEEDS

SHORT = {"better": "better", "worse": "worse", "no significant difference": "n.s."}


def _p_text(c: summaries.PairedSummary) -> str:
    """'p=0.034'; 'p<0.001' for a small t-based p; for a bootstrap p (identity-only methods) 'p<1/B' when no
    draw crossed 0 (such a p-value moves in steps of 2 / draws)."""
    if c.method != summaries.METHOD_T and c.p_value == 0.0 and c.num_draws:
        return f"p<{1.0 / c.num_draws:.2g}"
    return "p<0.001" if c.p_value < 0.001 else f"p={c.p_value:.3f}"


def paired_cells(c: summaries.PairedSummary | None) -> list[str]:
    """The two cells of one paired comparison: 'diff [CI]' (EER points) and 'verdict (Holm), p, MDE'; a
    one-seed (identity-only) comparison is marked with a dagger."""
    if c is None:
        return ["missing", "-"]
    mark = "" if c.method == summaries.METHOD_T else " †"
    return [f"{100 * c.mean_diff:+.2f} [{100 * c.ci_low:+.2f}, {100 * c.ci_high:+.2f}]{mark}",
            f"{SHORT[c.verdict]} ({SHORT[c.holm_verdict] if c.holm_verdict else '-'}), {_p_text(c)}, "
            f"MDE {100 * c.mde:.2f} ({100 * c.mde_holm:.2f})"]


ONE_SEED_NOTE = ("† identities only, one seed: not a statement about the method (the seed variance cannot be "
                 "estimated; percentile interval of the identity bootstrap over the fixed trained models, "
                 "bootstrap p in steps of 2 / draws).")


def method_note(comparisons: Sequence[summaries.PairedSummary]) -> list[str]:
    """ONE_SEED_NOTE as a paragraph when some comparison rests on one seed, else []."""
    return [ONE_SEED_NOTE, ""] if any(c.method != summaries.METHOD_T for c in comparisons) else []


def provenance_lines(prov: dict[str, Any]) -> list[str]:
    """'Made by ...' lines: the code's commit (or why there is none) and the command."""
    lines = [f"Code: {prov.get('git', 'unknown')}."]
    if prov.get("command"):
        lines.append(f"Command: `{prov['command']}`")
    return lines + [""]


def _chosen_rows(comparisons: Sequence[Any], lists: Sequence[str]) -> list[str]:
    """One row per dev-chosen comparison: label, how it was chosen, then per list the paired cells."""
    rows = []
    for cmp in comparisons:
        cells = [cmp.label, cmp.why]
        for t in lists:
            cells += ["not tested", "-"] if not cmp.per_list else paired_cells(cmp.per_list.get(t))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def chosen_markdown(title: str, intro: str, comparisons: Sequence[Any], lists: Sequence[str]) -> list[str]:
    """A section of dev-chosen comparisons ([] without any)."""
    if not comparisons:
        return []
    cols = ("Δ [95 % CI]", "verdict (Holm)")
    header = ["Comparison", "chosen on dev"] + [f"{t} {col}" for t in lists for col in cols]
    cmps = [c for cmp in comparisons for c in cmp.per_list.values()]
    return [f"## {title}", "", intro, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *_chosen_rows(comparisons, lists), "", *method_note(cmps)]


def power_markdown(dev: Any) -> list[str]:
    """The dev power section: seed sd and identity sd of student - baseline EER differences, seeds needed."""
    lines = ["## Dev: seed variance and the number of seeds", ""]
    if not dev.power:
        return lines + [f"Not available: {dev.note or 'fewer than two seeds scored on dev'}.", ""]
    lines += ["Per modality and dev list, averaged over the students with two seeds or more: the sd over seeds of "
              "the per-seed student - baseline EER differences, the identity-bootstrap sd of their mean, and the "
              "number of seeds whose MDE (80 % power, two-sided 5 %) reaches the effect (identity variance held "
              "fixed: conservative). Choose the eval protocol's seed count from it.", "",
              "| Modality | dev list | students | seeds | seed sd (points) | identity sd (points) | seeds needed | "
              f"MDE with {' / '.join(map(str, MDE_SEEDS))} seeds (points) |", "|---|---|---|---|---|---|---|---|"]
    for mod, per_list in dev.power.items():
        for t, r in per_list.items():
            need = r["seeds_needed"]
            need_text = f"{need} for {100 * r['effect']:.0f} points" if need else "over 200 (identity noise too large?)"
            lines.append(f"| {mod} | {t} | {r['num_students']} | {r['seeds']} | {100 * r['seed_var'] ** 0.5:.2f} | "
                         f"{100 * r['v_id'] ** 0.5:.2f} | {need_text} | "
                         + " / ".join(f"{100 * v:.1f}" for v in r["mde_by_seeds"].values()) + " |")
    return lines + [""]


def dev_markdown(dev: Any, lists: Sequence[str]) -> list[str]:
    """Pair vs best single, teacher vs best student (chosen on dev, compared on eval) and the dev power section."""
    if dev is None:
        return []
    note = f" ({dev.note})" if dev.note else ""
    return chosen_markdown(
        "Pair student against its better single-loss student", "Pair minus the better (on dev) of its two "
        f"single-loss students, EER points, same method as above; Holm within this section. Dev lists used: "
        f"{' '.join(dev.dev_lists) or 'none'}{note}.", dev.pair_vs_single, lists) + chosen_markdown(
        "Teacher against the best student", "Teacher minus the best student of each modality (chosen on dev), EER "
        "points (negative = the teacher is better); Holm within this section.", dev.teacher_vs_best,
        lists) + power_markdown(dev)
