"""The study's names, defined once: modalities, Eq. 7 weight keys, KD student and tuning-run directories.

The recipe's planner (`wespeaker_avkd/recipe/`, its shell spells none of them), the report and
the tuning selection import them, so an experiment directory is named by one rule everywhere.
"""
from __future__ import annotations

# What a system embeds: one modality (a student or baseline) or both (the fusion teacher).
MODALITIES = ("audio", "visual", "fusion")

# KD loss (as written in a combo such as "COS+KL") -> its weight in the paper's Eq. 7:
# L = L_AAM + alpha L_KL + beta L_COS + gamma L_MMD.
EQ7_WEIGHT = {"KL": "alpha", "COS": "beta", "MMD": "gamma"}


def student_name(modality: str, combo: str) -> str:
    """Experiment dir name of a KD student: ('visual', 'COS+KL') -> 'visual_kd_cos_kl'."""
    return f"{modality}_kd_{combo.lower().replace('+', '_')}"


def tuning_run_name(modality: str, loss: str, weight: str) -> str:
    """Dir name of a dev-tuning run of one loss at one weight (as written on the command line): 'audio_kd_kl_w10'."""
    return f"{student_name(modality, loss)}_w{weight}"


# ---- systems of the study (report, tuning and plots read them from here) ------------------------------------
# The paper's six KD loss combinations (Tables 2 and 3), in table order.
PAPER_COMBOS = ("COS", "KL", "MMD", "COS+KL", "COS+MMD", "KL+MMD")
TEACHER = "teacher"  # experiment dir name of the audio-visual (fusion) teacher
SYSTEM_ROLES = ("baseline", "teacher", "student")


def baseline_name(modality: str) -> str:
    """Experiment dir name of a modality's baseline (AAM only, no KD): 'audio' -> 'audio_baseline'."""
    return f"{modality}_baseline"


def system_role(name: str) -> str | None:
    """Role of an experiment dir name: 'baseline', 'teacher', 'student' (a KD student of any combination, or a
    tuning run), None for a name the study does not give."""
    if name == TEACHER:
        return "teacher"
    for modality in MODALITIES:
        if name == baseline_name(modality):
            return "baseline"
        if name.startswith(student_name(modality, "")):
            return "student"
    return None
# ---- the recipe's experiment tree: exp/seed<N>/<system>, exp/tune/<tuning run>, exp/report[_<scores>] -------
TUNE_DIR = "tune"           # the dev-tuning runs and the chosen weights
KD_EXPORT_DIR = "kd_export"  # a teacher's exported embeddings, the students' KD targets


def seed_dir_name(seed: str | int) -> str:
    """Dir of one seed's systems: 1 -> 'seed1'."""
    return f"seed{seed}"
