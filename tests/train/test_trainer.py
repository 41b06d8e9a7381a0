"""Trainer loop on a tiny test-only model and an in-memory loader: logs, checkpoints, exact resume, KD."""
import os

import numpy as np
import pytest
import torch
import yaml

from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.config.train_config import ConfigError
from wespeaker_avkd.train.trainer import run_training
from wespeaker_avkd.utils.fingerprint import read_stamp

from .fakes import fake_loaders, tiny_config, write_data_dir


def _weights(exp):
    return ckpt.load_model_state(os.path.join(exp, "models", "avg_model.pt"))


def test_train_writes_layout(tmp_path):
    loaders = fake_loaders()
    data = write_data_dir(tmp_path / "data")
    exp = str(tmp_path / "exp")
    trainer = run_training(tiny_config(data), exp, device="cpu", num_threads=1, progress=False, loaders=loaders)
    models = os.path.join(exp, "models")
    assert sorted(ckpt.list_checkpoints(models)) == [2, 3]  # num_avg 2: the averaged epochs are kept
    assert sorted(ckpt.list_train_states(models)) == [3]  # and the newest training state only
    for f in ("config.yaml", "spk2id", "train.log", "models/avg_model.pt", "models/config.yaml"):
        assert os.path.isfile(os.path.join(exp, f)), f
    assert os.listdir(os.path.join(exp, "tensorboard"))
    log = open(os.path.join(exp, "train.log")).read()
    assert "epoch 3 done" in log and "lr" in log and "margin" in log
    state = ckpt.load_checkpoint(ckpt.train_state_path(models, 3))
    assert state["epoch"] == 3 and state["global_step"] == 3 * trainer.epoch_iter
    assert set(state["rng"]) >= {"python", "numpy", "torch"}
    assert state["margin"] == pytest.approx(0.2)  # fixed from epoch 3 on
    m3 = ckpt.load_model_state(os.path.join(models, "model_3.pt"))
    # WeSpeaker's flat layout: the encoder's keys + projection.*, nothing else
    assert set(m3) == set(trainer.net.encoder.state_dict()) | {"projection.weight"}
    avg = _weights(exp)
    assert set(avg) == set(m3)
    m2 = ckpt.load_model_state(os.path.join(models, "model_2.pt"))["fc.weight"]
    assert torch.allclose(avg["fc.weight"], (m2 + m3["fc.weight"]) / 2, atol=1e-6)
    assert read_stamp(ckpt.average_stamp_path(os.path.join(models, "avg_model.pt")))["epochs"] == [2, 3]
    # beside avg_model.pt, the run's config in WeSpeaker's names (enable_amp for our amp)
    wespeaker_cfg = yaml.safe_load(open(os.path.join(models, "config.yaml")))
    assert wespeaker_cfg["model"] == "TinyTestNet" and wespeaker_cfg["enable_amp"] is False
    assert "amp" not in wespeaker_cfg


def test_resume_is_exact(tmp_path, monkeypatch):
    from .fakes import crash_in_epoch

    loaders = fake_loaders()
    data = write_data_dir(tmp_path / "data")
    ref, exp = str(tmp_path / "ref"), str(tmp_path / "exp")
    run_training(tiny_config(data), ref, device="cpu", num_threads=1, progress=False, loaders=loaders)
    final = ckpt.load_model_state(os.path.join(ref, "models", "model_3.pt"))
    undo_crash = crash_in_epoch(monkeypatch, 2, 3)
    with pytest.raises(KeyboardInterrupt):
        run_training(tiny_config(data), exp, device="cpu", num_threads=1, progress=False, loaders=loaders)
    assert ckpt.resume_point(os.path.join(exp, "models")) == 1
    assert not os.path.exists(os.path.join(exp, ".lock"))  # released on the way out
    undo_crash()
    run_training(tiny_config(data), exp, device="cpu", num_threads=1, progress=False, loaders=loaders)
    again = ckpt.load_model_state(os.path.join(exp, "models", "model_3.pt"))
    assert set(final) == set(again)
    for key in final:
        assert torch.equal(final[key], again[key]), key
    assert "resuming from" in open(os.path.join(exp, "train.log")).read()


def test_keep_checkpoints_and_save_interval_bound_the_disk(tmp_path):
    """12 tiny epochs: defaults keep num_avg model files + the newest state; keep_checkpoints keeps more;
    save_epoch_interval skips epochs except the last num_avg (averaging needs them)."""
    loaders = fake_loaders()
    data = write_data_dir(tmp_path / "data")
    seen = []
    for name, extra in (("default", {}), ("keep4", {"keep_checkpoints": 4}), ("every5", {"save_epoch_interval": 5})):
        exp = str(tmp_path / name)
        run_training(tiny_config(data, num_epochs=12, num_avg=2, log_batch_interval=100, tensorboard=False, **extra),
                     exp, device="cpu", num_threads=1, progress=False, loaders=loaders)
        models = os.path.join(exp, "models")
        seen.append((sorted(ckpt.list_checkpoints(models)), sorted(ckpt.list_train_states(models))))
        assert os.path.isfile(os.path.join(models, "avg_model.pt"))
    assert seen[0] == ([11, 12], [12])
    assert seen[1] == ([9, 10, 11, 12], [12])
    assert seen[2] == ([11, 12], [12])
    # storage keys may change between runs of one exp dir (they do not change the model): finished, no error
    run_training(tiny_config(data, num_epochs=12, num_avg=2, log_batch_interval=100, tensorboard=False,
                             keep_checkpoints=3), str(tmp_path / "default"), device="cpu", num_threads=1,
                 progress=False, loaders=loaders)
    log = open(os.path.join(tmp_path / "every5", "train.log")).read()
    assert "model_5.pt" in log and "model_6.pt" not in log  # 5 pruned later; epochs 6-9 never written


def test_rerun_finished_is_noop_and_changed_config_refused(tmp_path):
    loaders = fake_loaders()
    data = write_data_dir(tmp_path / "data")
    exp = str(tmp_path / "exp")
    run_training(tiny_config(data, num_epochs=2), exp, device="cpu", num_threads=1, progress=False, loaders=loaders)
    mtime = os.path.getmtime(os.path.join(exp, "models", "model_2.pt"))
    run_training(tiny_config(data, num_epochs=2), exp, device="cpu", num_threads=1, progress=False, loaders=loaders)
    assert os.path.getmtime(os.path.join(exp, "models", "model_2.pt")) == mtime
    changed = tiny_config(data, num_epochs=2, model_args={"feat_dim": 6, "embed_dim": 4})
    with pytest.raises(ConfigError, match="model_args"):
        run_training(changed, exp, device="cpu", num_threads=1, progress=False, loaders=loaders)
    run_training(changed, exp, device="cpu", num_threads=1, progress=False, overwrite=True, loaders=loaders)
    assert _weights(exp)["fc.weight"].shape == (4, 6)


def _teacher_export(path, num_class=4, dim=8):
    from wespeaker_avkd.data.kaldi_dir import make_spk2id, write_spk2id

    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.save(path / "projection_weight.npy", rng.normal(size=(num_class, dim)).astype(np.float32))
    (path / "xvector.scp").write_text("")  # the fake loader produces the teacher embeddings itself
    write_spk2id(path / "spk2id", make_spk2id([f"spk{i}" for i in range(num_class)]))
    return str(path)


def test_kd_student_logs_every_term(tmp_path):
    loaders = fake_loaders(teacher_dim=8)
    data = write_data_dir(tmp_path / "data")
    teacher = _teacher_export(tmp_path / "kd_export")
    weights = tmp_path / "w.yaml"
    weights.write_text("audio:\n  KL+MMD: {alpha: 1.0, gamma: 0.5}\n")
    cfg = tiny_config(data, num_epochs=1, kd={"teacher_dir": teacher, "weights_file": str(weights),
                                             "combo": "KL+MMD", "temperature": 0.03125})
    exp = str(tmp_path / "student")
    run_training(cfg, exp, device="cpu", num_threads=1, progress=False, loaders=loaders)
    log = open(os.path.join(exp, "train.log")).read()
    for term in ("aam", "kl", "mmd", "loss"):
        assert f" {term} " in log, term
    state = ckpt.load_checkpoint(ckpt.train_state_path(os.path.join(exp, "models"), 1))
    assert state["kd_adapter"] == {}  # no adapter: nothing of the teacher in the student's checkpoint
    assert not any("teacher" in k for k in ckpt.load_model_state(os.path.join(exp, "models", "model_1.pt")))
    import yaml

    saved = yaml.safe_load(open(os.path.join(exp, "config.yaml")))
    weights = {name: term["weight"] for name, term in saved["kd"]["losses"].items()}  # the resolved terms
    assert weights == {"kl": 1.0, "cos": 0.0, "mmd": 0.5} and saved["kd"]["combo"] == "KL+MMD"


def test_kd_adapter_is_trained_and_saved(tmp_path):
    loaders = fake_loaders(teacher_dim=8)
    data = write_data_dir(tmp_path / "data")
    teacher = _teacher_export(tmp_path / "kd_export")
    cfg = tiny_config(data, num_epochs=2, model_args={"feat_dim": 6, "embed_dim": 5},
                      kd={"teacher_dir": teacher, "alpha": 1.0, "beta": 1.0, "adapter": True})
    exp = str(tmp_path / "student")
    run_training(cfg, exp, device="cpu", num_threads=1, progress=False, loaders=loaders)
    one = str(tmp_path / "student_1epoch")
    run_training(dict(cfg, num_epochs=1), one, device="cpu", num_threads=1, progress=False, loaders=loaders)
    s1 = ckpt.load_checkpoint(ckpt.train_state_path(os.path.join(one, "models"), 1))["kd_adapter"]
    s2 = ckpt.load_checkpoint(ckpt.train_state_path(os.path.join(exp, "models"), 2))["kd_adapter"]
    assert list(s1) == ["adapter.weight"] and s1["adapter.weight"].shape == (8, 5)
    assert not torch.equal(s1["adapter.weight"], s2["adapter.weight"])


def test_kd_objective_is_a_collaborator(tmp_path):
    """The trainer builds its KD objective through the kd_builder it is given (no teacher export on disk here)."""
    from wespeaker_avkd.losses.kd_objective import build_kd_objective

    seen = []

    def kd_builder(kd, student_dim):
        seen.append((kd.teacher_dir, kd.terms["cos"]["weight"], student_dim))
        return build_kd_objective({"beta": 1.0}, None, student_dim, 8), "teacher.scp"

    data = write_data_dir(tmp_path / "data")
    cfg = tiny_config(data, num_epochs=1, kd={"teacher_dir": str(tmp_path / "nowhere"), "beta": 1.0})
    exp = str(tmp_path / "student")
    run_training(cfg, exp, device="cpu", num_threads=1, progress=False, loaders=fake_loaders(teacher_dim=8),
                 kd_builder=kd_builder)
    assert seen == [(str(tmp_path / "nowhere"), 1.0, 8)]
    assert " cos " in open(os.path.join(exp, "train.log")).read()
