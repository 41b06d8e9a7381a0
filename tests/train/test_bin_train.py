"""bin.train's --resume: it insists on resuming, so an exp dir with nothing to resume from is an error, not a
fresh training."""
import os

import pytest

from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.bin.train import main, nothing_to_resume
from wespeaker_avkd.train.trainer import run_training

from .fakes import fake_loaders, tiny_config, write_data_dir


@pytest.fixture()
def config_file(tmp_path):
    """A config bin.train can load (it is never trained: every case stops before training)."""
    path = tmp_path / "conf.yaml"
    path.write_text("model: TinyTestNet\nnum_epochs: 1\n")
    return str(path)


def test_resume_without_checkpoints_is_refused_and_writes_nothing(tmp_path, config_file, capsys):
    exp = tmp_path / "exp"
    assert main(["--config", config_file, "--exp_dir", str(exp), "--resume", "--no_progress"]) == 2
    err = capsys.readouterr().err
    assert f"nothing to resume from in {exp / 'models'}" in err and "no such directory" in err
    assert not exp.exists()  # no config.yaml, lock or log: the mistyped dir stays untouched
    (exp / "models").mkdir(parents=True)
    assert "(no checkpoint;" in nothing_to_resume(str(exp))


def test_resume_point_decides(tmp_path, config_file, capsys):
    exp = str(tmp_path / "exp")
    run_training(tiny_config(write_data_dir(tmp_path / "data"), num_epochs=2, num_avg=1, tensorboard=False), exp,
                 device="cpu", num_threads=1, progress=False, loaders=fake_loaders())
    assert nothing_to_resume(exp) is None  # model_2.pt + train_state_2.pt: --resume goes on to train
    states = ckpt.train_state_dir(os.path.join(exp, "models"))
    for name in os.listdir(states):
        if name.startswith("train_state_"):
            os.unlink(os.path.join(states, name))
    assert main(["--config", config_file, "--exp_dir", exp, "--resume"]) == 2
    assert "model files without a train_state_<N>.pt" in capsys.readouterr().err


def test_resume_and_overwrite_contradict(tmp_path, config_file, capsys):
    assert main(["--config", config_file, "--exp_dir", str(tmp_path / "e"), "--resume", "--overwrite"]) == 2
    assert "contradict" in capsys.readouterr().err
