"""Config loading, deep merge, command-line overrides, KD presets and WeSpeaker configs."""
import copy
import os
import re

import pytest
import torch
import yaml

from wespeaker_avkd.config.serialize import config_to_dict
from wespeaker_avkd.config.train_config import (
    ConfigError,
    apply_overrides,
    deep_merge,
    load_config,
    parse_config,
    parse_override_args,
    resolve_kd_preset,
    save_config,
)
from wespeaker_avkd.systems.builders import make_encoder


def _write(path, data):
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_parse_override_forms():
    pairs = parse_override_args(["--num_epochs", "2", "kd.alpha=1.5", "--a.b=[1, 2]", "+new.key=x"])
    assert pairs == [("num_epochs", "2"), ("kd.alpha", "1.5"), ("a.b", "[1, 2]"), ("+new.key", "x")]


def test_parse_override_missing_value():
    with pytest.raises(ConfigError, match="no value"):
        parse_override_args(["--num_epochs"])
    with pytest.raises(ConfigError, match="cannot read override"):
        parse_override_args(["num_epochs"])


def test_apply_overrides_types_and_nesting():
    cfg = {"num_epochs": 10, "dataset_args": {"num_frms": [200, 400], "fbank_args": {"dither": 1.0}}}
    out = apply_overrides(cfg, [("num_epochs", "2"), ("dataset_args.num_frms", "[100, 150]"),
                                ("dataset_args.fbank_args.dither", "0.0")])
    assert out["num_epochs"] == 2 and isinstance(out["num_epochs"], int)
    assert out["dataset_args"]["num_frms"] == [100, 150]
    assert out["dataset_args"]["fbank_args"]["dither"] == 0.0
    assert cfg["num_epochs"] == 10  # the input is not modified


def test_apply_overrides_unknown_key_is_error_unless_plus():
    cfg = {"kd": {"alpha": 1.0}}
    with pytest.raises(ConfigError, match="no key 'alhpa' under kd"):
        apply_overrides(cfg, [("kd.alhpa", "2")])
    out = apply_overrides(cfg, [("+kd.adapter", "true"), ("+extra.deep.key", "3")])
    assert out["kd"]["adapter"] is True and out["extra"]["deep"]["key"] == 3


def test_load_config_merges_files(tmp_path):
    a = _write(tmp_path / "a.yaml", {"x": 1, "d": {"p": 1, "q": 2}})
    b = _write(tmp_path / "b.yaml", {"d": {"q": 3}, "y": [1]})
    assert load_config([a, b]) == {"x": 1, "d": {"p": 1, "q": 3}, "y": [1]}
    assert deep_merge({"d": {"p": 1}}, {"d": 5}) == {"d": 5}


def test_load_config_errors_name_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "none.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: expected a mapping"):
        load_config(str(bad))


def test_kd_preset(tmp_path):
    weights = _write(tmp_path / "w.yaml", {"visual": {"KL+MMD": {"alpha": 1.0, "gamma": 0.5}},
                                           "audio": {"COS": {"beta": 2.0}}})
    kd = {"teacher_dir": "t", "temperature": 0.03125, "combo": "KL+MMD", "weights_file": weights}
    out = resolve_kd_preset(kd, "visual")
    assert out == {"teacher_dir": "t", "temperature": 0.03125, "alpha": 1.0, "gamma": 0.5, "combo": "KL+MMD"}
    with pytest.raises(ConfigError, match="no combo 'KL'"):
        resolve_kd_preset(dict(kd, combo="KL"), "audio")
    assert resolve_kd_preset({"alpha": 1.0}, "audio") == {"alpha": 1.0}
    # a weight written in the kd block (a command-line override) wins over the preset
    assert resolve_kd_preset(dict(kd, gamma=3.0), "visual")["gamma"] == 3.0
    assert resolve_kd_preset(None, "audio") is None


def test_save_config_roundtrip(tmp_path):
    cfg = {"b": 1, "a": {"z": [1, 2], "y": "s"}}
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(str(tmp_path / "c.yaml")) == cfg
    assert list(load_config(str(tmp_path / "c.yaml"))) == ["b", "a"]  # key order kept


# ------------------------------------------------------------------ WeSpeaker configs (typed schema)
WESPEAKER_RESNET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "wespeaker_resnet.yaml")
UNSUPPORTED = ["exp_dir", "gpus"]  # a WeSpeaker run's own keys, set aside: --exp_dir and torchrun decide here
# WeSpeaker's train.py takes the data on its command line: train_data, and the RIR / noise sets of aug_prob
CLI_DATA = {"train_data": "data/train", "reverb_data": "data/rirs/wav.scp", "noise_data": "data/musan/wav.scp"}


def _without(cfg, dotted_keys):
    cfg = copy.deepcopy(dict(cfg))
    for key in dotted_keys:
        node = cfg
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        del node[last]
    return cfg


def test_wespeaker_resnet_config_run_keys_are_set_aside():
    """WeSpeaker's exp_dir and gpus are read (its run.sh overrides both on the command line) and not recorded."""
    cfg = config_to_dict(parse_config(dict(load_config(WESPEAKER_RESNET), **CLI_DATA)))
    assert not set(UNSUPPORTED) & set(cfg)


def test_wespeaker_resnet_config_without_them_is_accepted_as_the_same_experiment():
    typed = parse_config(dict(_without(load_config(WESPEAKER_RESNET), UNSUPPORTED), **CLI_DATA))
    assert typed.modality == "audio"  # WeSpeaker configs are audio configs
    assert typed.dataset_args.num_frms == [200, 200]  # scalar num_frms = fixed 200-frame chunks
    assert typed.save_epoch_interval == 5 and typed.num_avg == 10
    # the four arguments as written, ResNet's other arguments at their defaults (recorded in config.yaml)
    assert typed.model.args == {"feat_dim": 40, "embed_dim": 256, "m_channels": 32, "pooling_func": "TSTP",
                                "two_emb_layer": False, "block": None, "num_blocks": None}
    assert typed.dataset_args.fbank_args["num_mel_bins"] == 40 and typed.dataset_args.shuffle is True
    assert typed.dataset_args.speed_perturb is True and typed.dataset_args.aug_prob == 0.6
    assert typed.margin_update.update_margin is True and typed.keep_checkpoints is None
    written = {"momentum": 0.9, "nesterov": True, "weight_decay": 0.0001}
    assert {k: typed.optimizer.args[k] for k in written} == written
    assert typed.optimizer.args["dampening"] == 0  # torch.optim.SGD's own default, recorded
    encoder = make_encoder(typed.modality, typed.model, typed.plugins)
    assert encoder(torch.randn(2, 50, 40)).shape == (2, 256)


def test_wespeaker_synonyms(tmp_path):
    base = dict(_without(load_config(WESPEAKER_RESNET), UNSUPPORTED), **CLI_DATA)
    cfg = parse_config(dict(base, enable_amp=True))
    assert cfg.amp is True and "enable_amp" not in config_to_dict(cfg)
    assert parse_config(dict(base, enable_amp=False, amp=False)).amp is False
    with pytest.raises(ConfigError, match=r"'enable_amp': says True but 'amp' says False"):
        parse_config(dict(base, enable_amp=True, amp=False))
    with pytest.raises(ConfigError, match=r"'enable_amp': expected true or false"):
        parse_config(dict(base, enable_amp="yes"))
    assert parse_config(dict(base, keep_checkpoints=12)).keep_checkpoints == 12
    assert parse_config(base).keep_checkpoints is None  # default: what averaging needs (checkpoint code)
    del base["save_epoch_interval"]
    assert parse_config(base).save_epoch_interval == 1


def test_bad_modality_is_refused_naming_the_file(tmp_path):
    """The modality is checked before the KD preset is expanded; the error names the file and the choices."""
    path = tmp_path / "student.yaml"
    path.write_text("modality: voice\nmodel: ResNet34\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: config key 'modality': must be one of")):
        parse_config(load_config(str(path)))
