"""The README's results block, generated from a committed report's results.json and nothing else.

The block sits between the markers BEGIN and END of README.md; tools/publish_results.py writes it and
tests/test_readme_results.py checks that README.md holds exactly the block this module makes from the committed
egs/voxceleb/v_kd/results/results.json. Read from results.json: `commit`, `command`, `settings.seeds_found`,
`summary` ({list: {system: {"eer": {mean, std, ci_low, ci_high}}}}), `paired`
({"<modality>/<combo>/<list>": {mean_diff, ci_low, ci_high, verdict, holm_verdict, mde}}), `dev_chosen`
(the dev-chosen comparisons, same cells) and `provenance.dirty` (a report of uncommitted code is refused);
EERs are fractions, shown as %.
"""
from __future__ import annotations

import math
import subprocess
from collections.abc import Mapping
from typing import Any

from wespeaker_avkd.utils.errors import InputKeyError, InputValueError

BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"
RESULTS_DIR = "egs/voxceleb/v_kd/results"   # the committed copy of the report the README shows
VERDICT = {"better": "better", "worse": "worse", "no significant difference": "n.s.", "": "-"}


def _get(record: Mapping[str, Any], key: str, source: str) -> Any:
    """record[key], or an InputKeyError naming the file and the key."""
    if not isinstance(record, Mapping) or key not in record:
        raise InputKeyError(f"{source}: results.json has no '{key}' (expected the report's record with "
                            "'commit', 'command', 'summary' and 'paired')")
    return record[key]


def _pct(value: float, signed: bool = False) -> str:
    """A fraction as % with two decimals ('nan' shown as '-')."""
    if not isinstance(value, (int, float)) or math.isnan(value):
        return "-"
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def summary_table(summary: Mapping[str, Any], source: str) -> list[str]:
    """Markdown rows: one per system, per list EER % mean ± std [95 % CI] over seeds."""
    lists = list(summary)
    systems = list(dict.fromkeys(name for per_list in summary.values() for name in per_list))
    lines = ["| System | " + " | ".join(f"{t} EER % mean ± std [95 % CI]" for t in lists) + " |",
             "|---|" + "---|" * len(lists)]
    for name in systems:
        cells = [name]
        for t in lists:
            e = summary[t].get(name, {}).get("eer") if isinstance(summary[t], Mapping) else None
            if not isinstance(e, Mapping):
                cells.append("missing")
                continue
            cells.append(f"{_pct(_get(e, 'mean', source))} ± {_pct(_get(e, 'std', source))} "
                         f"[{_pct(_get(e, 'ci_low', source))}, {_pct(_get(e, 'ci_high', source))}]")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def paired_tables(paired: Mapping[str, Any], source: str) -> list[str]:
    """Markdown: per modality, one row per KD combination, per list ΔEER (points) [95 % CI], verdict (Holm)."""
    keyed: dict[str, dict[str, dict[str, Mapping[str, Any]]]] = {}
    for key, comparison in paired.items():
        parts = key.split("/")
        if len(parts) != 3:
            raise InputValueError(f"{source}: paired key {key!r} is not '<modality>/<combo>/<list>'")
        keyed.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = comparison
    lines: list[str] = []
    for mod, per_combo in keyed.items():
        lists = list(dict.fromkeys(t for per_list in per_combo.values() for t in per_list))
        lines += ["", f"{mod.capitalize()} students, student minus baseline:", "",
                  f"| {mod.capitalize()} student | "
                  + " | ".join(f"{t} ΔEER [95 % CI], verdict (Holm)" for t in lists) + " |",
                  "|---|" + "---|" * len(lists)]
        for combo, per_list in per_combo.items():
            cells = [combo]
            for t in lists:
                c = per_list.get(t)
                if c is None:
                    cells.append("missing")
                    continue
                cells.append(comparison_cell(c, source))
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def comparison_cell(c: Mapping[str, Any], source: str) -> str:
    """'ΔEER [95 % CI], verdict (Holm verdict), MDE x' of one paired record (points; MDE when recorded)."""
    verdict = VERDICT.get(_get(c, "verdict", source), _get(c, "verdict", source))
    holm = VERDICT.get(c.get("holm_verdict", ""), c.get("holm_verdict", ""))
    mde = f", MDE {_pct(c['mde'])}" if isinstance(c.get("mde"), (int, float)) and not math.isnan(c["mde"]) else ""
    return (f"{_pct(_get(c, 'mean_diff', source), True)} [{_pct(_get(c, 'ci_low', source), True)}, "
            f"{_pct(_get(c, 'ci_high', source), True)}], {verdict} ({holm}){mde}")


def chosen_tables(dev_chosen: Mapping[str, Any] | None, source: str) -> list[str]:
    """Markdown: the dev-chosen comparisons (each pair minus its better single; the teacher minus the best
    student), one row per comparison, per list the cell of comparison_cell; nothing when not in the report."""
    if not isinstance(dev_chosen, Mapping):
        return []
    lines: list[str] = []
    for key, title in (("pair_vs_single", "Pair minus its better single-loss student (chosen on dev)"),
                       ("teacher_vs_best", "Teacher minus the best student of each modality (chosen on dev)")):
        rows = dev_chosen.get(key) or []
        if not rows:
            continue
        lists = list(dict.fromkeys(t for r in rows for t in (r.get("per_list") or {})))
        lines += ["", f"{title}:", "", "| Comparison | " + " | ".join(f"{t} ΔEER [95 % CI], verdict (Holm)"
                                                                       for t in lists) + " |",
                  "|---|" + "---|" * len(lists)]
        for r in rows:
            per_list = r.get("per_list") or {}
            cells = [f"{_get(r, 'label', source)} ({r.get('why', '')})"]
            cells += [comparison_cell(per_list[t], source) if t in per_list else "not tested" for t in lists]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _check_clean(record: Mapping[str, Any], source: str) -> None:
    """Refuse a report made from code that differs from its commit (results.json's provenance.dirty)."""
    dirty = (record.get("provenance") or {}).get("dirty") if isinstance(record.get("provenance"), Mapping) else None
    changed = sorted(d for d, v in (dirty or {}).items() if v) if isinstance(dirty, Mapping) else []
    if changed:
        raise InputValueError(f"{source}: the report was made from uncommitted changes in {', '.join(changed)}/ "
                              "(provenance.dirty): commit, rerun the report, then publish")


def results_block(record: Mapping[str, Any], source: str = f"{RESULTS_DIR}/results.json") -> str:
    """The README block (markers included) made from one results.json record (refused when the report was made
    from uncommitted code)."""
    commit, command = _get(record, "commit", source), _get(record, "command", source)
    _check_clean(record, source)
    seeds = (record.get("settings") or {}).get("seeds_found") if isinstance(record.get("settings"), Mapping) else None
    lines = [BEGIN,
             f"<!-- generated by tools/publish_results.py from {source}; do not edit by hand -->", "",
             f"Report of commit `{commit}`, made by `{command}`"
             + (f" (seeds {', '.join(map(str, seeds))})" if seeds else "") + f"; the full report: [{RESULTS_DIR}/"
             f"results.md]({RESULTS_DIR}/results.md).", "",
             *summary_table(_get(record, "summary", source), source),
             *paired_tables(_get(record, "paired", source), source),
             *chosen_tables(record.get("dev_chosen"), source), "", END]
    return "\n".join(lines)


def block_span(text: str, source: str) -> tuple[int, int]:
    """Start of BEGIN and end of END in `text` (each exactly once, in that order); else InputValueError."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise InputValueError(f"{source}: expected the markers '{BEGIN}' and then '{END}', once each")
    return text.index(BEGIN), text.index(END) + len(END)


def replace_block(text: str, block: str, source: str = "README.md") -> str:
    """`text` with its marked block replaced by `block`."""
    start, end = block_span(text, source)
    return text[:start] + block + text[end:]


def current_block(text: str, source: str = "README.md") -> str:
    """The marked block of `text`, markers included."""
    start, end = block_span(text, source)
    return text[start:end]


# The code that produces results: a published report's commit must have the same code as the commit the README
# is read at (the results folder and every .md file may differ).
CODE_PATHSPEC = ("wespeaker_avkd", "egs/voxceleb/v_kd", f":(exclude){RESULTS_DIR}", ":(exclude,glob)**/*.md")


def code_change_since(repo: str, commit: str, head: str = "HEAD") -> str:
    """'' when `commit` is in `head`'s history and the code (CODE_PATHSPEC) is the same at both; otherwise the
    reason, in words. Needs git and a checkout at `repo`."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, timeout=60)
    if not isinstance(commit, str) or not commit or git("cat-file", "-e", f"{commit}^{{commit}}").returncode:
        return f"results.json's commit {commit!r} is no commit of this repository"
    if git("merge-base", "--is-ancestor", commit, head).returncode:
        return f"results.json's commit {commit} is not in the history of {head}"
    changed = git("diff", "--name-only", commit, head, "--", *CODE_PATHSPEC)
    if changed.returncode:
        return f"git diff {commit} {head} failed: {changed.stderr.strip()}"
    files = changed.stdout.split()
    return f"the code changed since {commit}: {', '.join(files)}" if files else ""
