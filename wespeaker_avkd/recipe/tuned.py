"""Stage 7's reuse of the tuning runs: for the first seed, a single-loss student whose chosen weight is a
grid entry is the tuning run trained with it (the same config and seed), linked instead of trained again."""
from __future__ import annotations

import os
from collections.abc import Sequence

from wespeaker_avkd.recipe.settings import SINGLE_LOSSES, RecipeSettings
from wespeaker_avkd.utils.naming import EQ7_WEIGHT, TUNE_DIR, student_name, tuning_run_name
from wespeaker_avkd.utils.yaml_io import load_yaml


def chosen_entry(table: object, modality: str, loss: str, grid: Sequence[str]) -> str:
    """The grid entry (as written) equal to loss's Eq. 7 weight in table[modality][loss] when that entry sets
    only that weight (the others 0 or absent); '' otherwise."""
    entry = ((table or {}).get(modality) or {}).get(loss) if isinstance(table, dict) else None
    if not isinstance(entry, dict) or set(entry) - set(EQ7_WEIGHT.values()):
        return ""
    others = [float(entry.get(k) or 0.0) for k in EQ7_WEIGHT.values() if k != EQ7_WEIGHT[loss]]
    if any(others) or EQ7_WEIGHT[loss] not in entry:
        return ""
    weight = float(entry[EQ7_WEIGHT[loss]])
    return next((g for g in grid if float(g) == weight), "")


def tune_dir(settings: RecipeSettings, modality: str, loss: str, weight: str) -> str:
    """exp/tune/<modality>_kd_<loss>_w<weight>: the dev-tuning run of one loss at one weight."""
    return f"{settings.exp}/{TUNE_DIR}/{tuning_run_name(modality, loss, weight)}"


def link_tuned(settings: RecipeSettings) -> list[str]:
    """Link each first-seed single-loss student of --kd_combos to its tuning run when the weights chose a grid
    entry and that run finished; a link left by an earlier run is dropped first (relinked while it still
    matches). Students trained here and --overwrite true are left alone. Returns one message per link."""
    table, messages = None, []
    for modality in settings.modalities:
        for loss in (c for c in settings.combos if c in SINGLE_LOSSES):
            target = settings.system_dir(settings.first_seed, student_name(modality, loss))
            if os.path.islink(target):
                os.remove(target)
            if settings.overwrite or os.path.exists(target):
                continue
            if table is None:
                table = load_yaml(settings.kd_weights)   # bounded size and aliases, safe_load semantics
            weight = chosen_entry(table, modality, loss, settings.grid)
            tuned = tune_dir(settings, modality, loss, weight) if weight else ""
            if not tuned or not os.path.isfile(f"{tuned}/models/avg_model.pt"):
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(f"../{TUNE_DIR}/{os.path.basename(tuned)}", target)
            messages.append(f"{target} -> {tuned} (trained during tuning with the chosen weight {weight})")
    return messages
