"""Checkpoints never run code: every loader uses the weights-only unpickler and refuses anything else by name."""
import os
import random

import numpy as np
import pytest
import torch

from wespeaker_avkd.train import checkpoint as ckpt


class _Payload:
    """Pickles to 'call exec(code)': the full unpickler runs it, the weights-only one must refuse it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def _hostile_checkpoint(tmp_path, name="model_1.pt"):
    """A checkpoint file shaped like ours whose pickle would create tmp_path/pwned under torch.load(weights_only=False)."""
    marker = tmp_path / "pwned"
    path = tmp_path / name
    torch.save({"model": {"w": torch.zeros(2)}, "projection": {"weight": torch.zeros(1, 2)}, "epoch": 1,
                "extra": _Payload(marker)}, path)
    return str(path), marker


def _assert_refused(fn, path, marker):
    with pytest.raises(ckpt.UnsafeCheckpointError) as err:
        fn()
    assert path in str(err.value) and "convert_checkpoint" in str(err.value)
    assert not marker.exists()


def test_hostile_checkpoint_is_refused_and_runs_nothing(tmp_path):
    path, marker = _hostile_checkpoint(tmp_path)
    _assert_refused(lambda: ckpt.load_checkpoint(path), path, marker)
    _assert_refused(lambda: ckpt.average_last(tmp_path, 1, tmp_path / "avg_model.pt"), path, marker)
    assert not (tmp_path / "avg_model.pt").exists()
    # the file really is hostile: the old loader runs the payload (proves the test can fail)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_hostile_model_init_is_refused(tmp_path):
    from wespeaker_avkd.train.builders import EmbeddingNet, load_model_init

    path, marker = _hostile_checkpoint(tmp_path, "init.pt")
    net = EmbeddingNet(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    _assert_refused(lambda: load_model_init(net, path), path, marker)


def test_hostile_avg_model_is_refused_by_extraction_and_export(tmp_path):
    from wespeaker_avkd.train.extract import export_teacher, load_trained
    from wespeaker_avkd.train.config import save_config

    exp = tmp_path / "exp"
    (exp / "models").mkdir(parents=True)
    path, marker = _hostile_checkpoint(exp / "models", "avg_model.pt")
    marker = exp / "models" / "pwned"
    save_config({"modality": "audio", "model": "ResNet34"}, exp / "config.yaml")
    (exp / "spk2id").write_text("a 0\n")
    _assert_refused(lambda: load_trained(str(exp)), path, marker)
    scp = tmp_path / "x.scp"
    scp.write_text("")
    _assert_refused(lambda: export_teacher(str(exp), str(scp)), path, marker)


def test_old_format_checkpoint_points_to_the_converter(tmp_path):
    """A checkpoint of the previous layout (numpy RNG state as an ndarray) needs the full unpickler: refused."""
    path = tmp_path / "model_3.pt"
    torch.save({"model": {}, "rng": {"numpy": np.random.get_state()}}, path)
    with pytest.raises(ckpt.UnsafeCheckpointError, match="convert_checkpoint --trust_pickle"):
        ckpt.load_checkpoint(path)


def test_rng_state_survives_the_weights_only_loader(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # a cached gaussian in numpy's state
    ckpt.save_checkpoint(tmp_path / "model_1.pt", {"rng": ckpt.capture_rng_state()})
    expected = (random.random(), np.random.randn(), torch.rand(2))
    ckpt.restore_rng_state(ckpt.load_checkpoint(tmp_path / "model_1.pt")["rng"])
    again = (random.random(), np.random.randn(), torch.rand(2))
    assert expected[0] == again[0] and expected[1] == again[1] and torch.equal(expected[2], again[2])


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "model_1.pt"
    ckpt.save_checkpoint(path, {"model": {"w": torch.zeros(1000)}})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match=str(path)):
        ckpt.load_checkpoint(path)


def test_average_is_keyed_by_content_and_num_avg(tmp_path):
    """Another num_avg, or a checkpoint rewritten with other weights, re-averages; the same inputs keep the file."""
    for epoch in range(1, 4):
        ckpt.save_checkpoint(ckpt.checkpoint_path(tmp_path, epoch),
                             {"model": {"w": torch.full((2,), float(epoch))}, "projection": {}, "epoch": epoch})
    out = tmp_path / "avg_model.pt"
    assert ckpt.average_last(tmp_path, 2, out, force=False) == [2, 3]
    mtime = os.stat(out).st_mtime_ns
    assert ckpt.average_last(tmp_path, 2, out, force=False) == [2, 3]
    assert os.stat(out).st_mtime_ns == mtime  # same inputs: kept
    assert ckpt.average_last(tmp_path, 3, out, force=False) == [1, 2, 3]
    assert torch.allclose(ckpt.load_checkpoint(out)["model"]["w"], torch.full((2,), 2.0))
    # same epochs and num_avg, other content (e.g. a retrained epoch 3): re-averaged
    ckpt.save_checkpoint(ckpt.checkpoint_path(tmp_path, 3),
                         {"model": {"w": torch.full((2,), 9.0)}, "projection": {}, "epoch": 3})
    ckpt.average_last(tmp_path, 3, out, force=False)
    assert torch.allclose(ckpt.load_checkpoint(out)["model"]["w"], torch.full((2,), 4.0))
