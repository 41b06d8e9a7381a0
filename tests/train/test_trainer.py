"""Trainer loop on a tiny test-only model and an in-memory loader: logs, checkpoints, exact resume, KD."""
import os

import numpy as np
import pytest
import torch

from .fakes import install_fake_loaders, tiny_config, write_data_dir
from wespeaker_avkd.train import checkpoint as ckpt
from wespeaker_avkd.train.config import ConfigError
from wespeaker_avkd.train.trainer import run_training


def _weights(exp):
    return ckpt.load_checkpoint(os.path.join(exp, "models", "avg_model.pt"))


def test_train_writes_layout(tmp_path, monkeypatch):
    install_fake_loaders(monkeypatch)
    data = write_data_dir(tmp_path / "data")
    exp = str(tmp_path / "exp")
    trainer = run_training(tiny_config(data), exp, device="cpu", num_threads=1, progress=False)
    assert sorted(ckpt.list_checkpoints(os.path.join(exp, "models"))) == [1, 2, 3]
    for f in ("config.yaml", "spk2id", "train.log", "models/avg_model.pt"):
        assert os.path.isfile(os.path.join(exp, f)), f
    assert os.listdir(os.path.join(exp, "tensorboard"))
    log = open(os.path.join(exp, "train.log")).read()
    assert "epoch 3 done" in log and "lr" in log and "margin" in log
    state = ckpt.load_checkpoint(os.path.join(exp, "models", "model_3.pt"))
    assert state["epoch"] == 3 and state["global_step"] == 3 * trainer.epoch_iter
    assert set(state["rng"]) >= {"python", "numpy", "torch"}
    assert state["margin"] == pytest.approx(0.2)  # fixed from epoch 3 on
    avg = _weights(exp)
    assert avg["epochs"] == [2, 3]
    m2 = ckpt.load_checkpoint(os.path.join(exp, "models", "model_2.pt"))["model"]["fc.weight"]
    assert torch.allclose(avg["model"]["fc.weight"], (m2 + state["model"]["fc.weight"]) / 2, atol=1e-6)


def test_resume_is_exact(tmp_path, monkeypatch):
    install_fake_loaders(monkeypatch)
    data = write_data_dir(tmp_path / "data")
    exp = str(tmp_path / "exp")
    run_training(tiny_config(data), exp, device="cpu", num_threads=1, progress=False)
    models = os.path.join(exp, "models")
    final = ckpt.load_checkpoint(os.path.join(models, "model_3.pt"))
    # as if the run had died during epoch 2: only model_1.pt is left
    for name in ("model_2.pt", "model_3.pt", "avg_model.pt"):
        os.remove(os.path.join(models, name))
    run_training(tiny_config(data), exp, device="cpu", num_threads=1, progress=False)
    again = ckpt.load_checkpoint(os.path.join(models, "model_3.pt"))
    for key in final["model"]:
        assert torch.equal(final["model"][key], again["model"][key]), key
    assert torch.equal(final["projection"]["weight"], again["projection"]["weight"])
    assert final["global_step"] == again["global_step"]
    assert "resuming from" in open(os.path.join(exp, "train.log")).read()


def test_rerun_finished_is_noop_and_changed_config_refused(tmp_path, monkeypatch):
    install_fake_loaders(monkeypatch)
    data = write_data_dir(tmp_path / "data")
    exp = str(tmp_path / "exp")
    run_training(tiny_config(data, num_epochs=2), exp, device="cpu", num_threads=1, progress=False)
    mtime = os.path.getmtime(os.path.join(exp, "models", "model_2.pt"))
    run_training(tiny_config(data, num_epochs=2), exp, device="cpu", num_threads=1, progress=False)
    assert os.path.getmtime(os.path.join(exp, "models", "model_2.pt")) == mtime
    changed = tiny_config(data, num_epochs=2, model_args={"feat_dim": 6, "embed_dim": 4})
    with pytest.raises(ConfigError, match="model_args"):
        run_training(changed, exp, device="cpu", num_threads=1, progress=False)
    run_training(changed, exp, device="cpu", num_threads=1, progress=False, overwrite=True)
    assert _weights(exp)["model"]["fc.weight"].shape == (4, 6)


def _teacher_export(path, num_class=4, dim=8):
    from wespeaker_avkd.data.kaldi_dir import make_spk2id, write_spk2id

    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.save(path / "projection_weight.npy", rng.normal(size=(num_class, dim)).astype(np.float32))
    (path / "xvector.scp").write_text("")  # the fake loader produces the teacher embeddings itself
    write_spk2id(path / "spk2id", make_spk2id([f"spk{i}" for i in range(num_class)]))
    return str(path)


def test_kd_student_logs_every_term(tmp_path, monkeypatch):
    install_fake_loaders(monkeypatch, teacher_dim=8)
    data = write_data_dir(tmp_path / "data")
    teacher = _teacher_export(tmp_path / "kd_export")
    weights = tmp_path / "w.yaml"
    weights.write_text("audio:\n  KL+MMD: {alpha: 1.0, gamma: 0.5}\n")
    cfg = tiny_config(data, num_epochs=1, kd={"teacher_dir": teacher, "weights_file": str(weights),
                                             "combo": "KL+MMD", "temperature": 0.03125})
    exp = str(tmp_path / "student")
    run_training(cfg, exp, device="cpu", num_threads=1, progress=False)
    log = open(os.path.join(exp, "train.log")).read()
    for term in ("aam", "kl", "mmd", "loss"):
        assert f" {term} " in log, term
    state = ckpt.load_checkpoint(os.path.join(exp, "models", "model_1.pt"))
    assert state["kd_adapter"] == {}  # no adapter: nothing of the teacher in the student's checkpoint
    assert not any("teacher" in k for k in state["model"]) and not any("teacher" in k for k in state["projection"])
    import yaml

    saved = yaml.safe_load(open(os.path.join(exp, "config.yaml")))
    assert saved["kd"]["alpha"] == 1.0 and saved["kd"]["gamma"] == 0.5 and saved["kd"]["combo"] == "KL+MMD"


def test_kd_adapter_is_trained_and_saved(tmp_path, monkeypatch):
    install_fake_loaders(monkeypatch, teacher_dim=8)
    data = write_data_dir(tmp_path / "data")
    teacher = _teacher_export(tmp_path / "kd_export")
    cfg = tiny_config(data, num_epochs=2, model_args={"feat_dim": 6, "embed_dim": 5},
                      kd={"teacher_dir": teacher, "alpha": 1.0, "beta": 1.0, "adapter": True})
    exp = str(tmp_path / "student")
    run_training(cfg, exp, device="cpu", num_threads=1, progress=False)
    s1 = ckpt.load_checkpoint(os.path.join(exp, "models", "model_1.pt"))["kd_adapter"]
    s2 = ckpt.load_checkpoint(os.path.join(exp, "models", "model_2.pt"))["kd_adapter"]
    assert list(s1) == ["adapter.weight"] and s1["adapter.weight"].shape == (8, 5)
    assert not torch.equal(s1["adapter.weight"], s2["adapter.weight"])
