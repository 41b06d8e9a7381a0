"""Comparisons whose systems are chosen on dev, and the dev section: the pair student against the better of its
two single-loss students, the teacher against the best student of each modality (both choices by the mean dev
EER over dev lists and seeds, never by eval), and per modality the dev seed variance of the paired student -
baseline differences, the identity variance and the number of seeds a 2-point MDE needs (analysis.power)."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from wespeaker_avkd.analysis import power, summaries
from wespeaker_avkd.analysis.compute import ListStats, paired
from wespeaker_avkd.utils.naming import TEACHER, baseline_name, student_name

NO_DEV = "no dev scores, not tested"
EFFECT = 0.02  # the effect (EER, 2 points) the dev section sizes the seed count for
MDE_SEEDS = (3, 5, 10)  # seed counts whose MDE the dev section prints


def dev_eer(dev_lists: Sequence[ListStats], system: str) -> float | None:
    """Mean over dev lists of the system's mean-over-seeds full-list EER; None when it has no dev scores."""
    values = [ls.systems[system]["eer"].mean for ls in dev_lists if system in ls.systems]
    return float(np.mean(values)) if values else None


@dataclasses.dataclass
class ChosenComparison:
    """One dev-chosen comparison (a minus b) on every eval list, or why it was not tested."""

    label: str
    a: str
    b: str
    why: str                                   # how b (or a) was chosen, or NO_DEV
    per_list: dict[str, summaries.PairedSummary]

    def to_dict(self) -> dict[str, Any]:
        """JSON record."""
        return {"label": self.label, "a": self.a, "b": self.b, "why": self.why,
                "per_list": {t: c.to_dict() for t, c in self.per_list.items()}}


def _compare(label: str, a: str, b: str, why: str, lists: Sequence[ListStats]) -> ChosenComparison:
    """a minus b on every eval list both were scored on."""
    per_list = {ls.name: c for ls in lists if (c := paired(ls, a, b)) is not None}
    return ChosenComparison(label, a, b, why, per_list)


def _holm(comparisons: Sequence[ChosenComparison]) -> None:
    """Holm over every tested (comparison, list) of one section."""
    summaries.apply_holm([c for cmp in comparisons for c in cmp.per_list.values()])


def pair_vs_single(lists: Sequence[ListStats], dev_lists: Sequence[ListStats], modalities: Sequence[str],
                   combos: Sequence[str]) -> list[ChosenComparison]:
    """Every pair student (e.g. COS+KL) minus the better on dev of its two single-loss students, Holm within."""
    out = []
    for mod in modalities:
        for combo in combos:
            singles = combo.split("+")
            if len(singles) != 2:
                continue
            pair = student_name(mod, combo)
            dev = {s: dev_eer(dev_lists, student_name(mod, s)) for s in singles}
            if any(v is None for v in dev.values()):
                out.append(ChosenComparison(f"{mod} {combo}", pair, "", NO_DEV, {}))
                continue
            best = min(singles, key=lambda s: dev[s])
            why = "better single on dev (" + ", ".join(f"{s} {100 * v:.2f} %" for s, v in dev.items()) + ")"
            out.append(_compare(f"{mod} {combo} - {best}", pair, student_name(mod, best), why, lists))
    _holm(out)
    return out


def teacher_vs_best(lists: Sequence[ListStats], dev_lists: Sequence[ListStats], modalities: Sequence[str],
                    combos: Sequence[str]) -> list[ChosenComparison]:
    """The teacher minus the best student on dev of each modality (negative = the teacher is better)."""
    out = []
    for mod in modalities:
        dev = {c: v for c in combos if (v := dev_eer(dev_lists, student_name(mod, c))) is not None}
        if not dev:
            out.append(ChosenComparison(f"teacher - best {mod} student", TEACHER, "", NO_DEV, {}))
            continue
        best = min(dev, key=lambda c: dev[c])
        out.append(_compare(f"teacher - {mod} {best}", TEACHER, student_name(mod, best),
                            f"best {mod} student on dev ({best}, {100 * dev[best]:.2f} %)", lists))
    _holm(out)
    return out


def dev_power(dev_lists: Sequence[ListStats], modalities: Sequence[str], combos: Sequence[str],
              effect: float = EFFECT) -> dict[str, dict[str, Any]]:
    """{modality: {list: {seed_var, v_id, num_students, seeds, effect, seeds_needed, mde_by_seeds {n: MDE}}}}:
    the dev seed variance and the identity variance of student - baseline EER differences, averaged over the
    students with >= 2 seeds, the seeds needed to detect `effect` at 80 % power (None: not reachable; a list
    is absent with fewer than 2 seeds) and the MDE with each of MDE_SEEDS seeds."""
    out: dict[str, dict[str, Any]] = {}
    for mod in modalities:
        for ls in dev_lists:
            cmps = [c for combo in combos if (c := paired(ls, student_name(mod, combo), baseline_name(mod)))
                    and c.method == summaries.METHOD_T]
            if not cmps:
                continue
            seed_var = float(np.mean([c.seed_var for c in cmps]))
            v_id = float(np.mean([c.v_id for c in cmps]))
            out.setdefault(mod, {})[ls.name] = {
                "seed_var": seed_var, "v_id": v_id, "num_students": len(cmps),
                "seeds": max(len(c.seeds) for c in cmps), "effect": effect,
                "seeds_needed": power.seeds_needed(seed_var, v_id, effect),
                "mde_by_seeds": {str(n): power.seeds_mde(seed_var, v_id, n) for n in MDE_SEEDS}}
    return out


@dataclasses.dataclass
class DevSections:
    """The dev-chosen comparisons and the dev power section; `note` says why something is absent."""

    pair_vs_single: list[ChosenComparison]
    teacher_vs_best: list[ChosenComparison]
    power: dict[str, dict[str, Any]]
    dev_lists: list[str]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON record."""
        return {"pair_vs_single": [c.to_dict() for c in self.pair_vs_single],
                "teacher_vs_best": [c.to_dict() for c in self.teacher_vs_best],
                "power": self.power, "dev_lists": self.dev_lists, "note": self.note}


def dev_statistics(settings: Any, names: Sequence[str]) -> tuple[list[ListStats], str]:
    """The dev lists' statistics (same bootstrap settings, dev part and utt2spk), and a note when there are none
    (no dev part asked, no dev score file, or no dev utt2spk)."""
    import os

    from wespeaker_avkd.analysis.collect import collect_runs
    from wespeaker_avkd.analysis.compute import list_statistics
    from wespeaker_avkd.data.kaldi_dir import read_table

    s = settings
    if not s.dev_part:
        return [], "no dev part asked"
    dev_settings = dataclasses.replace(s, part=s.dev_part, utt2spk=s.dev_utt2spk_path)
    try:
        runs, _ = collect_runs(dev_settings, names)
    except FileNotFoundError:
        return [], f"no dev scores (<system>/{s.scores_dir}/{s.dev_part}/<list>.score)"
    if not os.path.isfile(dev_settings.utt2spk_path):
        return [], f"no dev utt2spk ({dev_settings.utt2spk_path})"
    utt2spk = read_table(dev_settings.utt2spk_path)
    ignored: list[dict[str, Any]] = []
    lists = [ls for t in s.trials if (ls := list_statistics(t, runs, utt2spk, s.num_boot, s.boot_seed, ignored,
                                                              s.boot_scheme))]
    return lists, ""


def dev_sections(settings: Any, names: Sequence[str], lists: Sequence[ListStats]) -> DevSections:
    """Everything chosen or sized on dev, compared on the eval lists `lists`."""
    dev_lists, note = dev_statistics(settings, names)
    s = settings
    return DevSections(pair_vs_single(lists, dev_lists, s.modalities, s.combos),
                       teacher_vs_best(lists, dev_lists, s.modalities, s.combos),
                       dev_power(dev_lists, s.modalities, s.combos, s.mde_effect), [ls.name for ls in dev_lists], note)
