"""Checkpoints never run code: every loader uses the weights-only unpickler and refuses anything else by name."""
import os
import random

import numpy as np
import pytest
import torch

from wespeaker_avkd import checkpoint as ckpt


class _Payload:
    """Pickles to 'call exec(code)': the full unpickler runs it, the weights-only one must refuse it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def _hostile_checkpoint(tmp_path, name="model_1.pt"):
    """A checkpoint file shaped like ours whose pickle would create tmp_path/pwned under
    torch.load(weights_only=False)."""
    marker = tmp_path / "pwned"
    path = tmp_path / name
    torch.save({"model": {"w": torch.zeros(2)}, "projection": {"weight": torch.zeros(1, 2)}, "epoch": 1,
                "extra": _Payload(marker)}, path)
    return str(path), marker


def _assert_refused(fn, path, marker):
    with pytest.raises(ckpt.UnsafeCheckpointError) as err:
        fn()
    assert path in str(err.value) and "tools/convert_checkpoint.py" in str(err.value)
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
    from wespeaker_avkd.models.embedding_net import EmbeddingNet
    from wespeaker_avkd.systems.builders import load_model_init

    path, marker = _hostile_checkpoint(tmp_path, "init.pt")
    net = EmbeddingNet(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    _assert_refused(lambda: load_model_init(net, path), path, marker)


def test_hostile_avg_model_is_refused_by_extraction_and_export(tmp_path):
    from wespeaker_avkd.config.train_config import save_config
    from wespeaker_avkd.inference.extract import load_trained
    from wespeaker_avkd.inference.kd_export import export_teacher

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
    with pytest.raises(ckpt.UnsafeCheckpointError, match="tools/convert_checkpoint.py --src"):
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
                             {"w": torch.full((2,), float(epoch))})
    out = tmp_path / "avg_model.pt"
    assert ckpt.average_last(tmp_path, 2, out, force=False) == [2, 3]
    mtime = os.stat(out).st_mtime_ns
    assert ckpt.average_last(tmp_path, 2, out, force=False) == [2, 3]
    assert os.stat(out).st_mtime_ns == mtime  # same inputs: kept
    assert ckpt.average_last(tmp_path, 3, out, force=False) == [1, 2, 3]
    assert torch.allclose(ckpt.load_model_state(out)["w"], torch.full((2,), 2.0))
    # same epochs and num_avg, other content (e.g. a retrained epoch 3): re-averaged
    ckpt.save_checkpoint(ckpt.checkpoint_path(tmp_path, 3),
                         {"w": torch.full((2,), 9.0)})
    ckpt.average_last(tmp_path, 3, out, force=False)
    assert torch.allclose(ckpt.load_model_state(out)["w"], torch.full((2,), 4.0))


def _tiny_net(num_class=3, embed_dim=4):
    from wespeaker_avkd.models.embedding_net import EmbeddingNet
    from wespeaker_avkd.registry import PROJECTIONS

    encoder = torch.nn.Sequential(torch.nn.Linear(6, embed_dim), torch.nn.BatchNorm1d(embed_dim))
    head = PROJECTIONS.build("arc_margin", embed_dim=embed_dim, num_class=num_class, margin=0.2, scale=32.0)
    return EmbeddingNet(encoder, head)


def test_flat_layout_is_what_a_wespeaker_style_model_loads_strictly(tmp_path):
    """WeSpeaker adds the head as model.projection and loads the file into that one module: every tensor
    must match (strict=True here, where WeSpeaker would only log what is missing or unexpected)."""
    import copy

    net = _tiny_net()
    path = tmp_path / "avg_model.pt"
    ckpt.save_checkpoint(path, ckpt.flat_model_state(net.encoder.state_dict(), net.projection.state_dict()))
    wespeaker_model = copy.deepcopy(net.encoder)
    wespeaker_model.add_module("projection", copy.deepcopy(net.projection))
    for p in wespeaker_model.parameters():
        torch.nn.init.zeros_(p)
    result = wespeaker_model.load_state_dict(torch.load(path, weights_only=True), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(wespeaker_model.projection.weight, net.projection.weight)
    # and back: a DDP-saved file (module. prefix) loads into ours through the one loader
    ckpt.save_checkpoint(tmp_path / "ddp.pt", {f"module.{k}": v for k, v in wespeaker_model.state_dict().items()})
    other = _tiny_net()
    assert ckpt.load_into_net(other, tmp_path / "ddp.pt") == {}
    assert torch.equal(other.encoder[0].weight, net.encoder[0].weight)


def test_strict_by_default_trunk_only_when_asked(tmp_path):
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append  # the package logger may not propagate (the trainer's setup_logging)
    logger = logging.getLogger(ckpt.__name__)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        _check_policies(tmp_path, records)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _check_policies(tmp_path, records):
    net = _tiny_net(num_class=3)
    path = tmp_path / "model_1.pt"
    ckpt.save_checkpoint(path, ckpt.flat_model_state(net.encoder.state_dict(), net.projection.state_dict()))
    five = _tiny_net(num_class=5)  # another speaker set
    with pytest.raises(ValueError, match=r"projection key 'weight' has shape \(3, 4\)"):
        ckpt.load_into_net(five, path)
    aside = ckpt.load_into_net(five, path, policy="trunk")
    assert list(aside) == ["projection.weight"] and any("set aside" in r.getMessage() for r in records)
    assert torch.equal(five.encoder[0].weight, net.encoder[0].weight)
    wider = _tiny_net(embed_dim=8)
    with pytest.raises(ValueError, match="encoder key '0.weight'"):
        ckpt.load_into_net(wider, path, policy="trunk")  # the trunk itself is never loaded partially
    ckpt.save_checkpoint(tmp_path / "extra.pt", dict(torch.load(path, weights_only=True), extra=torch.zeros(1)))
    with pytest.raises(KeyError, match=r"unexpected \['extra'\]"):
        ckpt.load_into_net(_tiny_net(), tmp_path / "extra.pt")


def test_converter_turns_an_old_nested_epoch_file_into_model_and_state(tmp_path, capsys, converter):
    net = _tiny_net()
    old = tmp_path / "models" / "model_4.pt"
    old.parent.mkdir()
    random.seed(5)
    np.random.seed(6)
    torch.save({"model": net.encoder.state_dict(), "projection": net.projection.state_dict(), "kd_adapter": {},
                "optimizer": {"state": {}, "param_groups": []}, "scheduler": {"current_iter": 40}, "scaler": None,
                "margin": 0.2, "epoch": 4, "global_step": 40,
                "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}},
               old)
    expected_draw = np.random.rand()
    with pytest.raises((ckpt.CheckpointLayoutError, ckpt.UnsafeCheckpointError), match="convert_checkpoint"):
        ckpt.load_model_state(old)
    assert converter.main(["--models_dir", str(old.parent)]) == 0  # weights-only, numpy arrays allowed
    other = _tiny_net()
    ckpt.load_into_net(other, old)
    assert torch.equal(other.projection.weight, net.projection.weight)
    state = ckpt.load_checkpoint(ckpt.train_state_path(old.parent, 4))
    assert state["epoch"] == 4 and state["scheduler"] == {"current_iter": 40}
    ckpt.restore_rng_state(state["rng"])
    assert np.random.rand() == expected_draw
    assert ckpt.resume_point(old.parent) == 4


def test_converter_refuses_a_hostile_file_and_runs_nothing(tmp_path, capsys, converter):
    """The converter reads old files weights-only too (numpy arrays allowed): a file whose pickle would run code
    is refused, names itself, and the code never runs."""
    path, marker = _hostile_checkpoint(tmp_path)
    assert converter.main(["--src", path, "--dst", str(tmp_path / "out.pt")]) == 2
    assert path in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


def test_every_load_policy_shares_one_strict_check(tmp_path):
    """Every policy of the one loader refuses a mismatch with the same message form: the file, the module, the
    first missing and unexpected names (a long list cut), nothing copied."""
    path = tmp_path / "other.pt"
    ckpt.save_checkpoint(path, {f"module.k{i}": torch.ones(1) for i in range(10)})  # DDP-saved, all foreign
    for load in [lambda net, p=p: ckpt.load_into_net(net, path, p) for p in ("strict", "trunk")] + [
            lambda net, p=p: ckpt.load_into_net(net.encoder, path, p) for p in ("encoder_only", "wespeaker")]:
        net = _tiny_net()
        before = {k: v.clone() for k, v in net.state_dict().items()}
        with pytest.raises(KeyError) as err:
            load(net)
        message = str(err.value)
        assert str(path) in message and "keys do not match Sequential: missing ['0.bias', '0.weight'" in message
        assert "unexpected ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'] ..." in message  # module. stripped
        assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_converting_an_old_exp_dir_adds_the_wespeaker_config(tmp_path, converter):
    """An old exp dir converted in place gets models/config.yaml (WeSpeaker's names) beside avg_model.pt, made
    from the exp's own config.yaml, as training writes it now."""
    import yaml

    from wespeaker_avkd.config.train_config import save_config

    net = _tiny_net()
    models = tmp_path / "exp" / "models"
    models.mkdir(parents=True)
    torch.save({"model": net.encoder.state_dict(), "projection": net.projection.state_dict()}, models / "avg_model.pt")
    save_config({"modality": "audio", "model": "ResNet34", "amp": True, "model_args": {"m_channels": 32},
                 "dataset_args": {"num_frms": [150, 150]}, "train_data": "data/train", "num_epochs": 2,
                 "scheduler_args": {"initial_lr": 0.1, "final_lr": 0.01}},  # a complete (old) training config
                tmp_path / "exp" / "config.yaml")
    assert converter.convert_models_dir(models) == [str(models / "avg_model.pt")]
    written = yaml.safe_load((models / "config.yaml").read_text())
    assert written["enable_amp"] is True and written["dataset_args"]["num_frms"] == 150
    assert written["model_args"] == {"feat_dim": 40, "embed_dim": 512, "pooling_func": "TSTP", "two_emb_layer": False}
    other = _tiny_net()
    ckpt.load_into_net(other, models / "avg_model.pt")
    assert torch.equal(other.projection.weight, net.projection.weight)
