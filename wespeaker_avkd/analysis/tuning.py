"""KD-weight selection on the dev part: read the sweep's dev EERs, choose each single loss's weight per modality,
write the weights file the students read (schema of conf/kd_weights.yaml) and a table of every dev result.

Sweep layout (run.sh stage 6): <sweep_dir>/<modality>_kd_<loss lower>_w<weight>/scores/dev/<list>.json, the
JSON of bin.compute_metrics --json. Criterion: the mean EER over the dev lists; ties go to the smaller weight.
Combinations (COS+KL, ...) take the weights chosen for their single losses.

Only dev results are ever read: every path goes through read_dev_metrics, which refuses any file that is not
.../scores/dev/<list>.json -- the eval lists must stay untouched until the final tables.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from wespeaker_avkd.utils.errors import NamedError
from wespeaker_avkd.utils.fileio import atomic_write
from wespeaker_avkd.utils.naming import EQ7_WEIGHT, PAPER_COMBOS, baseline_name, tuning_run_name

WEIGHT_KEYS = EQ7_WEIGHT  # paper Eq. 7: alpha L_KL + beta L_COS + gamma L_MMD
DEV_PART = "dev"

Reader = Callable[[str], dict[str, Any]]


class TuningError(NamedError, ValueError):
    """Bad or missing sweep input (the message names the files)."""


def dev_score_json(system_dir: str, trial: str) -> str:
    """<system_dir>/scores/dev/<trial>.json."""
    return os.path.join(system_dir, "scores", DEV_PART, f"{trial}.json")


def require_dev(path: str) -> str:
    """The normalised path when it is .../scores/dev/<list>.json; else TuningError (nothing is opened)."""
    norm = os.path.normpath(path)
    part_dir = os.path.dirname(norm)
    if os.path.basename(part_dir) != DEV_PART or os.path.basename(os.path.dirname(part_dir)) != "scores":
        raise TuningError(f"{path}: KD-weight selection reads dev results only (.../scores/{DEV_PART}/<list>.json);"
                          f" refusing a file of part '{os.path.basename(part_dir)}'")
    return norm


def read_dev_metrics(path: str) -> dict[str, Any]:
    """The compute_metrics JSON record of a dev score file (refuses any other part before opening)."""
    norm = require_dev(path)
    try:
        with open(norm, encoding="utf-8") as f:
            record = json.load(f)
    except json.JSONDecodeError as err:
        raise TuningError(f"{path}: not valid JSON ({err})") from None
    eer = record.get("eer") if isinstance(record, dict) else None
    if not isinstance(eer, (int, float)) or not math.isfinite(eer):
        raise TuningError(f"{path}: expected a compute_metrics --json record with a finite 'eer', got {eer!r}")
    return record


def sweep_dir_of(sweep_dir: str, modality: str, loss: str, weight: str) -> str:
    """<sweep_dir>/<modality>_kd_<loss lower>_w<weight> (weight as written on the command line)."""
    return os.path.join(sweep_dir, tuning_run_name(modality, loss, weight))


def collect_sweep(sweep_dir: str, modalities: Sequence[str], losses: Sequence[str], grid: Sequence[str],
                  dev_trials: Sequence[str], reader: Reader = read_dev_metrics
                  ) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """{modality: {loss: {weight: {list: dev EER}}}}; every missing sweep point is named in one TuningError."""
    bad = [loss for loss in losses if loss not in WEIGHT_KEYS]
    if bad:
        raise TuningError(f"unknown KD loss(es) {bad}; expected single losses {sorted(WEIGHT_KEYS)}")
    for w in grid:
        try:
            value = float(w)
        except ValueError:
            raise TuningError(f"grid weight {w!r} is not a number") from None
        if not value > 0 or not math.isfinite(value):
            raise TuningError(f"grid weight {w!r} must be positive and finite")
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    missing: list[str] = []
    for mod in modalities:
        for loss in losses:
            for w in grid:
                run = sweep_dir_of(sweep_dir, mod, loss, w)
                for t in dev_trials:
                    path = dev_score_json(run, t)
                    if not os.path.isfile(require_dev(path)):
                        missing.append(path)
                        continue
                    results.setdefault(mod, {}).setdefault(loss, {}).setdefault(w, {})[t] = float(
                        reader(path)["eer"])
    if missing:
        raise TuningError(f"{len(missing)} sweep point(s) have no dev result (train, extract and score them "
                          f"first): " + ", ".join(missing))
    return results


def mean_eer(per_list: Mapping[str, float]) -> float:
    """Mean over the dev lists."""
    return sum(per_list.values()) / len(per_list)


def choose_weights(results: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]]
                   ) -> dict[str, dict[str, str]]:
    """{modality: {loss: chosen weight}}: the smallest mean dev EER; ties to the smaller weight."""
    chosen: dict[str, dict[str, str]] = {}
    for mod, per_loss in results.items():
        for loss, per_weight in per_loss.items():
            chosen.setdefault(mod, {})[loss] = min(per_weight, key=lambda w: (mean_eer(per_weight[w]), float(w)))
    return chosen


def combo_weights(chosen: Mapping[str, Mapping[str, str]], combos: Sequence[str] = PAPER_COMBOS
                  ) -> dict[str, dict[str, dict[str, float]]]:
    """{modality: {combo: {alpha, beta, gamma}}}: each loss of a combination takes its chosen single weight."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for mod, per_loss in chosen.items():
        for combo in combos:
            parts = combo.split("+")
            absent = [p for p in parts if p not in per_loss]
            if absent:
                raise TuningError(f"combination {combo} needs the single loss(es) {absent}, not swept for {mod}")
            entry = {key: 0.0 for key in ("alpha", "beta", "gamma")}
            for p in parts:
                entry[WEIGHT_KEYS[p]] = float(per_loss[p])
            table.setdefault(mod, {})[combo] = entry
    return table


def write_weights_yaml(path: str, table: Mapping[str, Mapping[str, Mapping[str, float]]],
                       header: Sequence[str]) -> None:
    """The weights file (conf/kd_weights.yaml schema, one flow mapping per combo), atomically."""
    lines = [f"# {h}" if h else "#" for h in header]
    for mod, combos in table.items():
        lines.append(f"{mod}:")
        width = max(len(c) for c in combos) + 1
        for combo, entry in combos.items():
            body = ", ".join(f"{k}: {float(entry[k])!r}" for k in ("alpha", "beta", "gamma"))
            lines.append(f"  {(combo + ':').ljust(width)} {{{body}}}")
    with atomic_write(path) as f:
        f.write("\n".join(lines) + "\n")


def baseline_dev_eers(baseline_dir: str, modalities: Sequence[str], dev_trials: Sequence[str],
                      reader: Reader = read_dev_metrics) -> dict[str, dict[str, float]]:
    """{modality: {list: dev EER}} of <baseline_dir>/<baseline_name(modality)>; a missing file raises TuningError."""
    out: dict[str, dict[str, float]] = {}
    for mod in modalities:
        for t in dev_trials:
            path = dev_score_json(os.path.join(baseline_dir, baseline_name(mod)), t)
            if not os.path.isfile(require_dev(path)):
                raise TuningError(f"{path}: the {mod} baseline has no dev result (score it on dev first)")
            out.setdefault(mod, {})[t] = float(reader(path)["eer"])
    return out


def dev_table(results: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]],
              chosen: Mapping[str, Mapping[str, str]], dev_trials: Sequence[str],
              baselines: Mapping[str, Mapping[str, float]] | None = None) -> str:
    """Markdown: every (modality, loss, weight) with its dev EER % per list and the mean; the chosen row bold."""
    lines = ["# KD-weight selection on dev", "",
             "Dev EER % of every sweep point; criterion: mean EER over the dev lists " + ", ".join(dev_trials)
             + " (ties: the smaller weight). Chosen weights in **bold**.", ""]
    header = ["Modality", "Loss", "Weight"] + [f"{t} EER %" for t in dev_trials] + ["mean EER %"]
    for mod, per_loss in results.items():
        lines += [f"## {mod}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        if baselines and mod in baselines:
            b = baselines[mod]
            lines.append("| " + " | ".join([mod, "baseline (no KD)", "-"] + [f"{100 * b[t]:.2f}" for t in dev_trials]
                                           + [f"{100 * mean_eer(b):.2f}"]) + " |")
        for loss, per_weight in per_loss.items():
            for w in sorted(per_weight, key=float):
                cells = [mod, loss, w] + [f"{100 * per_weight[w][t]:.2f}" for t in dev_trials]
                cells.append(f"{100 * mean_eer(per_weight[w]):.2f}")
                if chosen[mod][loss] == w:
                    cells = [f"**{c}**" for c in cells]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def select_kd_weights(sweep_dir: str, modalities: Sequence[str], losses: Sequence[str], grid: Sequence[str],
                      dev_trials: Sequence[str], out: str, table: str | None = None,
                      baseline_dir: str | None = None, combos: Sequence[str] = PAPER_COMBOS,
                      reader: Reader = read_dev_metrics) -> dict[str, dict[str, str]]:
    """Choose the weights on dev, write `out` (weights yaml), `table` (.md) and its .json; return the choice
    {modality: {loss: weight as written in grid}}. `reader` opens one dev JSON (a collaborator for tests)."""
    results = collect_sweep(sweep_dir, modalities, losses, grid, dev_trials, reader)
    chosen = choose_weights(results)
    usable = [c for c in combos if all(p in losses for p in c.split("+"))]
    weights = combo_weights(chosen, usable)
    baselines = baseline_dev_eers(baseline_dir, modalities, dev_trials, reader) if baseline_dir else None
    header = ["KD loss weights chosen on the dev part by python -m wespeaker_avkd.bin.select_kd_weights",
              f"(sweep {sweep_dir}: each single loss's weight in {' '.join(grid)} per modality; criterion: the "
              f"mean EER over the dev lists {' '.join(dev_trials)}, ties to the smaller weight; combinations take "
              "their single losses' weights). Every dev EER: the table beside this file.",
              "modality -> combo -> {alpha (KL), beta (COS), gamma (MMD)} (paper Eq. 7)."]
    write_weights_yaml(out, weights, header)
    if table:
        with atomic_write(table) as f:
            f.write(dev_table(results, chosen, dev_trials, baselines) + "\n")
        record = {"criterion": "mean EER over the dev lists; ties to the smaller weight",
                  "dev_trials": list(dev_trials), "grid": list(grid), "results": results,
                  "mean_eer": {m: {loss: {w: mean_eer(v) for w, v in pw.items()} for loss, pw in pl.items()}
                               for m, pl in results.items()},
                  "chosen": chosen, "weights": weights, "baselines": baselines}
        with atomic_write(os.path.splitext(table)[0] + ".json") as f:
            json.dump(record, f, indent=1)
    return chosen
