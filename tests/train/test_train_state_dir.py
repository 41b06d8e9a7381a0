"""The training state lives in <exp>/train_state/, beside models/, so models/ is a WeSpeaker model dir; an exp dir
of an earlier version (states inside models/) resumes, and its states are moved out once."""
import os
import shutil

import pytest
import torch

from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.bin.train import nothing_to_resume
from wespeaker_avkd.train.trainer import run_training

from .fakes import crash_in_epoch, fake_loaders, tiny_config, write_data_dir

# What a WeSpeaker model dir holds: epoch files, the average, the config (and our average's stamp, a .json).
WESPEAKER_MODEL_FILES = {"avg_model.pt", "avg_model.pt.stamp.json", "config.yaml"}


def _train(data, exp, **extra):
    return run_training(tiny_config(data, tensorboard=False, **extra), exp, device="cpu", num_threads=1,
                        progress=False, loaders=fake_loaders())


def _to_old_layout(exp):
    """Put the exp dir's training states back where earlier versions wrote them (models/train_state_N.pt)."""
    models = os.path.join(exp, "models")
    states = ckpt.train_state_dir(models)
    for name in os.listdir(states):
        os.replace(os.path.join(states, name), os.path.join(models, name))
    os.rmdir(states)


def test_models_dir_holds_only_wespeakers_files(tmp_path):
    exp = str(tmp_path / "exp")
    _train(write_data_dir(tmp_path / "data"), exp)
    models = os.path.join(exp, "models")
    assert set(os.listdir(models)) == WESPEAKER_MODEL_FILES | {"model_2.pt", "model_3.pt"}
    assert os.listdir(os.path.join(exp, "train_state")) == ["train_state_3.pt"]
    assert ckpt.train_state_path(models, 3) == os.path.join(os.path.abspath(exp), "train_state", "train_state_3.pt")
    assert ckpt.resume_point(models) == 3


def test_old_layout_exp_dir_resumes_and_its_states_move_out(tmp_path, monkeypatch):
    """A crash in epoch 2 of an old-layout exp dir: --resume sees its state in models/, the resumed run moves it
    to train_state/ and ends with the same weights as an uninterrupted run."""
    data = write_data_dir(tmp_path / "data")
    whole = str(tmp_path / "whole")
    _train(data, whole)
    exp = str(tmp_path / "exp")
    undo_crash = crash_in_epoch(monkeypatch, 2, 2)
    with pytest.raises(KeyboardInterrupt):
        _train(data, exp)
    undo_crash()
    _to_old_layout(exp)
    models = os.path.join(exp, "models")
    assert sorted(ckpt.legacy_train_states(models)) == [1]
    assert nothing_to_resume(exp) is None and ckpt.resume_point(models) == 1  # the old place is read
    _train(data, exp)
    assert ckpt.legacy_train_states(models) == {}
    assert not [n for n in os.listdir(models) if n.startswith("train_state_")]
    assert sorted(ckpt.list_train_states(models)) == [3]
    assert "resuming from" in open(os.path.join(exp, "train.log")).read()
    want = ckpt.load_model_state(os.path.join(whole, "models", "avg_model.pt"))
    got = ckpt.load_model_state(os.path.join(models, "avg_model.pt"))
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)


def test_finished_old_layout_run_and_converter_move_states_out(tmp_path, converter):
    data = write_data_dir(tmp_path / "data")
    exp = str(tmp_path / "exp")
    _train(data, exp)
    other = str(tmp_path / "other")
    shutil.copytree(exp, other)
    for path in (exp, other):
        _to_old_layout(path)
    _train(data, exp)  # finished: nothing trains, the state is moved out
    assert sorted(os.listdir(os.path.join(exp, "train_state"))) == ["train_state_3.pt"]
    assert converter.main(["--models_dir", os.path.join(other, "models")]) == 0
    assert sorted(os.listdir(os.path.join(other, "train_state"))) == ["train_state_3.pt"]
    assert ckpt.legacy_train_states(os.path.join(other, "models")) == {}


def test_a_state_in_both_places_is_refused_naming_both(tmp_path):
    models = tmp_path / "exp" / "models"
    ckpt.save_epoch(models, 1, {"w": torch.zeros(1)}, {"epoch": 1})
    ckpt.save_checkpoint(models / "train_state_1.pt", {"epoch": 1})
    with pytest.raises(ckpt.CheckpointLayoutError, match=r"models/train_state_1\.pt and .*train_state/train_state_1"):
        ckpt.migrate_train_states(models)
    assert os.path.isfile(models / "train_state_1.pt")  # nothing moved or deleted


def test_overwrite_removes_the_training_states_too(tmp_path):
    data = write_data_dir(tmp_path / "data")
    exp = str(tmp_path / "exp")
    _train(data, exp, num_epochs=4, num_avg=1)
    run_training(tiny_config(data, tensorboard=False, num_epochs=2, num_avg=1), exp, device="cpu", num_threads=1,
                 progress=False, loaders=fake_loaders(), overwrite=True)
    assert sorted(ckpt.list_train_states(os.path.join(exp, "models"))) == [2]  # no state of the old run's epoch 4
