"""KD-weight selection on the dev part: read the sweep's dev EERs, choose each single loss's weight per modality,
write the weights file the students read (schema of conf/kd_weights.yaml) and a table of every dev result.

Sweep layout (run.sh stage 6): <sweep_dir>/<modality>_kd_<loss lower>_w<weight>/scores/dev/<list>.json, the
JSON of bin.compute_metrics --json. Criterion: the mean EER over the dev lists; ties go to the smaller weight.
Combinations (COS+KL, ...) take the weights chosen for their single losses.

The grid grows (--extend; run.sh stage 6 runs it round by round): while a loss's best weight is at an edge of
the weights tried, the next round adds the log step beyond that edge (x10 above, /10 below), within the bounds
WEIGHT_BOUNDS and at most MAX_ROUNDS rounds (the first being --grid); the grid is a pure function of --grid and
the dev results on disk, so the planner, its round test and the selection agree on it.

Only dev results are ever read: every path goes through read_dev_metrics, which refuses any file that is not
.../scores/dev/<list>.json -- the eval lists must stay untouched until the final tables.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from wespeaker_avkd.utils.errors import NamedError
from wespeaker_avkd.utils.fileio import atomic_write
from wespeaker_avkd.utils.naming import EQ7_WEIGHT, PAPER_COMBOS, baseline_name, tuning_run_name

WEIGHT_KEYS = EQ7_WEIGHT  # paper Eq. 7: alpha L_KL + beta L_COS + gamma L_MMD
DEV_PART = "dev"

Reader = Callable[[str], dict[str, Any]]
WEIGHT_BOUNDS = (Decimal("0.001"), Decimal("10000"))  # the grid never grows beyond 1e-3 .. 1e4
MAX_ROUNDS = 5   # --grid, then at most 4 rounds of growth
# why a loss's grid stopped growing (dev_results.md and the planner's log say it in words)
TURN, AT_BOUND, AT_ROUND_LIMIT, PENDING, NOT_EXTENDED = "turn", "bound", "rounds", "pending", "not extended"


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


def check_grid(grid: Sequence[str]) -> None:
    """Every weight of `grid` a positive finite number; else TuningError naming it."""
    for w in grid:
        try:
            value = float(w)
        except ValueError:
            raise TuningError(f"grid weight {w!r} is not a number") from None
        if not value > 0 or not math.isfinite(value):
            raise TuningError(f"grid weight {w!r} must be positive and finite")


def collect_sweep(sweep_dir: str, modalities: Sequence[str], losses: Sequence[str],
                  grid: Sequence[str] | Mapping[str, Mapping[str, Sequence[str]]], dev_trials: Sequence[str],
                  reader: Reader = read_dev_metrics) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """{modality: {loss: {weight: {list: dev EER}}}} over `grid` (one for all, or {modality: {loss: weights}});
    every missing sweep point is named in one TuningError."""
    bad = [loss for loss in losses if loss not in WEIGHT_KEYS]
    if bad:
        raise TuningError(f"unknown KD loss(es) {bad}; expected single losses {sorted(WEIGHT_KEYS)}")
    grids = grid if isinstance(grid, Mapping) else {m: {loss: grid for loss in losses} for m in modalities}
    for per_loss in grids.values():
        for weights in per_loss.values():
            check_grid(weights)
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    missing: list[str] = []
    for mod in modalities:
        for loss in losses:
            for w in grids[mod][loss]:
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


@dataclasses.dataclass(frozen=True)
class GrownGrid:
    """One modality's and loss's grid after its rounds: every weight tried (ascending, as written), the rounds
    it took (1 = --grid alone), the last round's weights and why it stopped (TURN, AT_BOUND, AT_ROUND_LIMIT,
    PENDING: a weight of the last round has no dev result yet)."""

    weights: tuple[str, ...]
    rounds: int
    added: tuple[str, ...]
    status: str


def weight_step(weight: str, up: bool) -> str:
    """The next log-grid weight beyond `weight`: x10 (up) or /10, written without exponent ('100' -> '1000')."""
    try:
        value = Decimal(weight) * 10 if up else Decimal(weight) / 10
    except InvalidOperation:
        raise TuningError(f"grid weight {weight!r} is not a number") from None
    return format(value.normalize(), "f")


def grow_grid(grid: Sequence[str], mean_eer_of: Callable[[str], float | None],
              max_rounds: int = MAX_ROUNDS) -> GrownGrid:
    """Grow `grid` round by round while the best weight (smallest mean dev EER, ties to the smaller weight) is
    at an edge of the weights tried; `mean_eer_of(weight)` is None while that run has no dev result."""
    weights = tuple(sorted(grid, key=float))
    added, rounds = weights, 1
    while True:
        eers = {w: mean_eer_of(w) for w in weights}
        if any(v is None for v in eers.values()):
            return GrownGrid(weights, rounds, added, PENDING)
        best = min(weights, key=lambda w: (eers[w], float(w)))
        beyond = ([weight_step(weights[0], up=False)] if best == weights[0] else []) + (
            [weight_step(weights[-1], up=True)] if best == weights[-1] else [])
        if not beyond:
            return GrownGrid(weights, rounds, added, TURN)
        inside = [w for w in beyond if WEIGHT_BOUNDS[0] <= Decimal(w) <= WEIGHT_BOUNDS[1]]
        if not inside:
            return GrownGrid(weights, rounds, added, AT_BOUND)
        if rounds >= max_rounds:
            return GrownGrid(weights, rounds, added, AT_ROUND_LIMIT)
        weights, added, rounds = tuple(sorted((*weights, *inside), key=float)), tuple(inside), rounds + 1


def sweep_mean_eer(sweep_dir: str, modality: str, loss: str, dev_trials: Sequence[str],
                   reader: Reader = read_dev_metrics) -> Callable[[str], float | None]:
    """weight -> the mean dev EER of that tuning run, None while a list has no result."""
    def mean_of(weight: str) -> float | None:
        paths = [dev_score_json(sweep_dir_of(sweep_dir, modality, loss, weight), t) for t in dev_trials]
        if not all(os.path.isfile(require_dev(p)) for p in paths):
            return None
        return mean_eer({p: float(reader(p)["eer"]) for p in paths})
    return mean_of


def grown_grids(sweep_dir: str, modalities: Sequence[str], losses: Sequence[str], grid: Sequence[str],
                dev_trials: Sequence[str], max_rounds: int = MAX_ROUNDS, reader: Reader = read_dev_metrics
                ) -> dict[str, dict[str, GrownGrid]]:
    """{modality: {loss: GrownGrid}} after at most `max_rounds` rounds on the dev results under sweep_dir."""
    check_grid(grid)
    return {mod: {loss: grow_grid(grid, sweep_mean_eer(sweep_dir, mod, loss, dev_trials, reader), max_rounds)
                  for loss in losses} for mod in modalities}


def _unextended(weights: tuple[str, ...], best: str) -> GrownGrid:
    """A grid taken as given: TURN when its best weight is inside it, else NOT_EXTENDED."""
    return GrownGrid(weights, 1, weights, TURN if best not in (weights[0], weights[-1]) else NOT_EXTENDED)


def stop_note(grown: GrownGrid, best: str) -> str:
    """Why a loss's grid ends where it does, in words (dev_results.md)."""
    tried = f"tried {' '.join(grown.weights)} in {grown.rounds} round(s)"
    if grown.status == TURN:
        return f"{tried}; the dev EER turns at {best} (higher on both sides)"
    edge = "top" if best == grown.weights[-1] else "bottom"
    if grown.status == AT_BOUND:
        bounds = " .. ".join(format(b, "f") for b in WEIGHT_BOUNDS)
        return f"{tried}; best {best} at the {edge} edge: the next step is outside the bounds {bounds}, no turn"
    if grown.status == AT_ROUND_LIMIT:
        return f"{tried}; best {best} at the {edge} edge after the {MAX_ROUNDS}-round limit, no turn"
    return f"{tried}; best {best} at the {edge} edge (the grid was not extended), no turn"


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
              baselines: Mapping[str, Mapping[str, float]] | None = None,
              notes: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """Markdown: every (modality, loss, weight) with its dev EER % per list and the mean, the chosen row bold;
    below each modality's table every loss's weights tried and where its dev EER turns (`notes`)."""
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
        lines += [f"- {loss}: {note}" for loss, note in (notes or {}).get(mod, {}).items()]
        lines += [""] if notes and mod in notes else []
    return "\n".join(lines)


def select_kd_weights(sweep_dir: str, modalities: Sequence[str], losses: Sequence[str], grid: Sequence[str],
                      dev_trials: Sequence[str], out: str, table: str | None = None,
                      baseline_dir: str | None = None, combos: Sequence[str] = PAPER_COMBOS,
                      reader: Reader = read_dev_metrics, extend: bool = False) -> dict[str, dict[str, str]]:
    """Choose the weights on dev, write `out` (weights yaml), `table` (.md) and its .json; return the choice
    {modality: {loss: weight as written in grid}}. With `extend` every loss's grid is the one the rounds grew
    from `grid`. `reader` opens one dev JSON (a collaborator for tests)."""
    grown = grown_grids(sweep_dir, modalities, losses, grid, dev_trials, MAX_ROUNDS, reader) if extend else None
    results = collect_sweep(sweep_dir, modalities, losses, grid if grown is None else
                            {m: {loss: g.weights for loss, g in pl.items()} for m, pl in grown.items()}, dev_trials,
                            reader)
    chosen = choose_weights(results)
    if grown is None:   # the grid as given: does the dev EER turn inside it?
        grown = {m: {loss: _unextended(tuple(sorted(pw, key=float)), chosen[m][loss]) for loss, pw in pl.items()}
                 for m, pl in results.items()}
    notes = {m: {loss: stop_note(g, chosen[m][loss]) for loss, g in pl.items()} for m, pl in grown.items()}
    usable = [c for c in combos if all(p in losses for p in c.split("+"))]
    weights = combo_weights(chosen, usable)
    baselines = baseline_dev_eers(baseline_dir, modalities, dev_trials, reader) if baseline_dir else None
    header = ["KD loss weights chosen on the dev part by python -m wespeaker_avkd.bin.select_kd_weights",
              f"(sweep {sweep_dir}: each single loss's weight in {' '.join(grid)} per modality"
              f"{', grown while the best was at an edge' if extend else ''}; criterion: the "
              f"mean EER over the dev lists {' '.join(dev_trials)}, ties to the smaller weight; combinations take "
              "their single losses' weights). Every dev EER: the table beside this file.",
              "modality -> combo -> {alpha (KL), beta (COS), gamma (MMD)} (paper Eq. 7)."]
    write_weights_yaml(out, weights, header)
    if table:
        with atomic_write(table) as f:
            f.write(dev_table(results, chosen, dev_trials, baselines, notes) + "\n")
        record = {"criterion": "mean EER over the dev lists; ties to the smaller weight",
                  "dev_trials": list(dev_trials), "grid": list(grid), "results": results,
                  "mean_eer": {m: {loss: {w: mean_eer(v) for w, v in pw.items()} for loss, pw in pl.items()}
                               for m, pl in results.items()},
                  "chosen": chosen, "weights": weights, "baselines": baselines,
                  "grids": {m: {loss: {"weights": list(g.weights), "rounds": g.rounds, "note": notes[m][loss]}
                                for loss, g in pl.items()} for m, pl in grown.items()}}
        with atomic_write(os.path.splitext(table)[0] + ".json") as f:
            json.dump(record, f, indent=1)
    return chosen
