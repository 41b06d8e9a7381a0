"""Stage 6's tuning runs: where each lives, and the end of their former reuse as eval-seed students.

The tuning trains at its own seed (--tune_seed, disjoint from the eval seeds), so no tuning run is ever an
eval-seed student: a student dir that is a symlink (left by earlier code that linked the first seed's
single-loss students to their tuning runs) is removed before stage 7 trains the student at its own seed."""
from __future__ import annotations

import os

from wespeaker_avkd.recipe.settings import RecipeSettings
from wespeaker_avkd.utils.naming import TUNE_DIR, student_name, tuning_run_name


def tune_dir(settings: RecipeSettings, modality: str, loss: str, weight: str) -> str:
    """exp/tune/<modality>_kd_<loss>_w<weight>: the dev-tuning run of one loss at one weight."""
    return f"{settings.exp}/{TUNE_DIR}/{tuning_run_name(modality, loss, weight)}"


def drop_tuning_links(settings: RecipeSettings) -> list[str]:
    """Remove every eval-seed student dir of --kd_combos that is a symlink (a reused tuning run); return the
    removed paths."""
    removed = []
    for seed in settings.seeds:
        for modality in settings.modalities:
            for combo in settings.combos:
                target = settings.system_dir(seed, student_name(modality, combo))
                if os.path.islink(target):
                    os.remove(target)
                    removed.append(target)
    return removed
