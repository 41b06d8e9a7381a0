"""Checkpoint files: atomic save/load, RNG state, lookup of the newest epoch, averaging."""
import random

import numpy as np
import pytest
import torch

from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.utils.fingerprint import read_stamp


def test_rng_roundtrip():
    state = ckpt.capture_rng_state()
    a = (random.random(), np.random.rand(), torch.rand(3))
    ckpt.restore_rng_state(state)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_list_and_last_checkpoint_ignore_temporaries(tmp_path):
    for epoch in (1, 2, 10):
        ckpt.save_checkpoint(ckpt.checkpoint_path(tmp_path, epoch), {"epoch": epoch})
    (tmp_path / ".model_11.pt.abc.tmp").write_bytes(b"partial")
    (tmp_path / "avg_model.pt").write_bytes(b"x")
    assert list(ckpt.list_checkpoints(tmp_path)) == [1, 2, 10]
    assert ckpt.last_checkpoint(tmp_path).endswith("model_10.pt")
    assert ckpt.last_checkpoint(tmp_path / "none") is None
    assert ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path, 2))["epoch"] == 2


def test_average_state_dicts_against_manual_mean():
    nets = [torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)) for _ in range(3)]
    for i, net in enumerate(nets):
        net[1].num_batches_tracked.fill_(i + 5)
    states = [n.state_dict() for n in nets]
    avg = ckpt.average_state_dicts(states)
    for key in ("0.weight", "0.bias", "1.running_mean"):
        manual = sum(s[key].double() for s in states) / 3
        assert torch.allclose(avg[key].double(), manual, atol=1e-7)
    assert avg["1.num_batches_tracked"].item() == 7
    with pytest.raises(ValueError, match="different keys"):
        ckpt.average_state_dicts([states[0], {"x": torch.zeros(1)}])


def test_average_last(tmp_path):
    for epoch in range(1, 5):
        ckpt.save_checkpoint(ckpt.checkpoint_path(tmp_path, epoch),
                             {"w": torch.full((2,), float(epoch)),
                              "projection.weight": torch.full((1, 2), 10.0 * epoch)})
    out = tmp_path / "avg_model.pt"
    assert ckpt.average_last(tmp_path, 2, out) == [3, 4]
    avg = torch.load(out, weights_only=True)
    assert torch.allclose(avg["w"], torch.full((2,), 3.5))
    assert torch.allclose(avg["projection.weight"], torch.full((1, 2), 35.0))
    assert read_stamp(ckpt.average_stamp_path(out))["epochs"] == [3, 4]


def test_prune_keeps_newest_state_and_models(tmp_path):
    models = tmp_path / "models"
    for epoch in range(1, 6):
        ckpt.save_epoch(models, epoch, {"w": torch.zeros(1)}, {"epoch": epoch})
    ckpt.save_checkpoint(ckpt.train_state_path(models, 6), {"epoch": 6})  # crashed before model_6.pt
    ckpt.prune_checkpoints(models, 2)
    assert sorted(ckpt.list_checkpoints(models)) == [4, 5]
    assert sorted(ckpt.list_train_states(models)) == [5, 6]
    assert ckpt.resume_point(models) == 5
    assert [e for e in range(1, 13) if ckpt.should_save(e, 12, 5, 2)] == [5, 10, 11, 12]
