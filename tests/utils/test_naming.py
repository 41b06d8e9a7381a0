"""The study's system names: every name the report and the recipe build has one role, the roles are told apart
by the naming rules (not by substrings), and the baseline and teacher names are the recipe's dir names."""
import pytest

from wespeaker_avkd.utils.naming import (
    EQ7_WEIGHT,
    PAPER_COMBOS,
    TEACHER,
    baseline_name,
    student_name,
    system_role,
    tuning_run_name,
)


def test_every_study_name_has_its_role():
    for mod in ("audio", "visual"):
        assert system_role(baseline_name(mod)) == "baseline"
        for combo in PAPER_COMBOS:
            assert system_role(student_name(mod, combo)) == "student"
        for loss in EQ7_WEIGHT:
            assert system_role(tuning_run_name(mod, loss, "10")) == "student"
    assert system_role(TEACHER) == "teacher"


def test_the_names_are_the_recipes_dir_names():
    assert (baseline_name("audio"), baseline_name("visual"), TEACHER) == ("audio_baseline", "visual_baseline",
                                                                          "teacher")
    assert student_name("visual", "COS+KL") == "visual_kd_cos_kl"


@pytest.mark.parametrize("name", ["kd_teacher", "audio_baseline_kd", "baseline", "teachers", "speech_kd_cos", ""])
def test_roles_are_not_read_from_substrings(name):
    """A name merely containing 'kd', 'baseline' or 'teacher' is none of the study's systems."""
    assert system_role(name) is None
