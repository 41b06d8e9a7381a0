"""The training jobs of stages 3 (baselines), 5 (fusion teacher), 6 (KD-weight tuning on dev) and 7 (KD
students), in run order, each after the checks of the inputs it builds on."""
from __future__ import annotations

import os

from wespeaker_avkd.recipe.jobfile import MissingInputError, need
from wespeaker_avkd.recipe.settings import (
    AUG,
    PAIR,
    SHARED_KD,
    SINGLE_LOSSES,
    TUNING_WEIGHTS,
    RecipeSettings,
    config_flags,
    modality_configs,
    trainer,
)
from wespeaker_avkd.recipe.tuned import drop_tuning_links, tune_dir
from wespeaker_avkd.utils.errors import InputValueError
from wespeaker_avkd.utils.naming import EQ7_WEIGHT, KD_EXPORT_DIR, TEACHER, baseline_name, student_name


def check_confs(settings: RecipeSettings) -> None:
    """Before any work: every system's config of the conf set, the shared kd block, the augmentation config
    (--aug true) and the extra --config exist."""
    for system in (*PAIR, TEACHER):
        if not os.path.isfile(f"{settings.conf_dir}/{system}.yaml"):
            raise MissingInputError(f"{settings.conf_dir}/{system}.yaml is missing (--conf_dir)")
    if not os.path.isfile(SHARED_KD):
        raise MissingInputError(f"{SHARED_KD} is missing (the students' kd block)")
    if settings.aug and not os.path.isfile(AUG):
        raise MissingInputError(f"{AUG} is missing (--aug true)")
    if settings.config and not os.path.isfile(settings.config):
        raise MissingInputError(f"--config {settings.config}: no such file")


def need_aug_sets(settings: RecipeSettings) -> None:
    """With --aug true, stage 1's noise and RIR sets must exist."""
    if settings.aug:
        need(f"{settings.data}/musan/wav.scp", 1)
        need(f"{settings.data}/rirs/wav.scp", 1)


def teacher_export(settings: RecipeSettings, seed: str) -> str:
    """exp/seed<seed>/teacher/kd_export: the KD targets of that seed's students."""
    return f"{settings.system_dir(seed, TEACHER)}/{KD_EXPORT_DIR}"


def _run_args(settings: RecipeSettings, exp_dir: str, seed: str) -> list[str]:
    """Where a training writes, what it trains on, the dev part of its learning curve (dev_eval) and its seed."""
    return ["--exp_dir", exp_dir, "--train_data", f"{settings.data}/train", "--dev_eval.data", f"{settings.data}/dev",
            "--seed", seed]


def baseline_jobs(settings: RecipeSettings) -> list[list[str]]:
    """Stage 3: the audio and visual baselines of every training seed (the tuning seed's with --tune true)."""
    if settings.data_type == "shard":
        need(f"{settings.data}/train/shard.list", 2)
    need_aug_sets(settings)
    return [[*trainer(settings), *modality_configs(settings, mod, kd=False),
             *_run_args(settings, settings.system_dir(seed, baseline_name(mod)), seed)]
            for seed in settings.train_seeds for mod in PAIR]


def teacher_jobs(settings: RecipeSettings) -> list[list[str]]:
    """Stage 5: the GATE fusion teacher of every training seed, on that seed's frozen baseline embeddings."""
    for seed in settings.train_seeds:
        for mod in PAIR:
            for part in settings.parts_of(seed):
                need(f"{settings.system_dir(seed, baseline_name(mod))}/embeddings/{part}/xvector.scp", 4)
    jobs = []
    for seed in settings.train_seeds:
        inputs = [w for mod in PAIR for w in (f"--embedding_dirs.{mod}",
                                              f"{settings.system_dir(seed, baseline_name(mod))}/embeddings")]
        jobs.append([*trainer(settings), "--config", f"{settings.conf_dir}/{TEACHER}.yaml", *config_flags(settings),
                     *_run_args(settings, settings.system_dir(seed, TEACHER), seed), *inputs])
    return jobs


def tuning_jobs(settings: RecipeSettings) -> list[list[str]]:
    """Stage 6 (one round): one student per modality, single KD loss and weight of the round, at the tuning
    seed and distilled from that seed's teacher, the other weights 0."""
    if not settings.tune:
        raise InputValueError("stage 6 tunes the KD weights only with --tune true (and its --tune_seed)")
    export = teacher_export(settings, settings.tune_seed)
    need(f"{export}/xvector.scp", 5)
    for part in (settings.mean_part, "dev"):
        need(f"{settings.data}/{part}/utt2spk", "1-2")
    for trials in settings.trials:
        need(f"{settings.data}/dev/trials/{trials}", 1)
    need_aug_sets(settings)
    return [[*trainer(settings), *modality_configs(settings, mod, kd=True),
             *_run_args(settings, tune_dir(settings, mod, loss, weight), settings.tune_seed),
             "--kd.combo", loss, "--kd.teacher_dir", export, "--kd.weights_file", TUNING_WEIGHTS,
             f"+kd.{EQ7_WEIGHT[loss]}={weight}"]
            for mod in settings.modalities for loss in SINGLE_LOSSES for weight in settings.weights_of(mod, loss)]


def need_student_inputs(settings: RecipeSettings) -> None:
    """Stage 7's inputs: the weights file and every seed's teacher export."""
    need(settings.kd_weights, "6 (with --tune true), or pass --kd_weights")
    for seed in settings.seeds:
        need(f"{teacher_export(settings, seed)}/xvector.scp", 5)


def student_jobs(settings: RecipeSettings) -> list[list[str]]:
    """Stage 7: every eval seed's KD students, one per modality and --kd_combos combination (each trained at its
    own seed: a student dir linked to a tuning run by earlier code is removed first)."""
    need_student_inputs(settings)
    drop_tuning_links(settings)
    need_aug_sets(settings)
    return [[*trainer(settings), *modality_configs(settings, mod, kd=True),
             *_run_args(settings, settings.system_dir(seed, student_name(mod, combo)), seed),
             "--kd.combo", combo, "--kd.teacher_dir", teacher_export(settings, seed),
             "--kd.weights_file", settings.kd_weights]
            for seed in settings.seeds for mod in settings.modalities for combo in settings.combos]


TRAINING_STAGES = {3: baseline_jobs, 5: teacher_jobs, 6: tuning_jobs, 7: student_jobs}


def training_jobs(settings: RecipeSettings, stage: int) -> list[list[str]]:
    """The training jobs of `stage` (3, 5, 6 or 7)."""
    if stage not in TRAINING_STAGES:
        raise InputValueError(f"stage {stage} trains nothing (training stages: {sorted(TRAINING_STAGES)})")
    return TRAINING_STAGES[stage](settings)
