"""Every shipped recipe config loads, has the trainer's keys, builds its network, and every KD combo resolves."""
import os

import pytest
import torch

from wespeaker_avkd.config.model_config import parse_model_config
from wespeaker_avkd.config.serialize import config_to_dict
from wespeaker_avkd.config.train_config import load_config, load_yaml, parse_config, resolve_kd_preset
from wespeaker_avkd.systems.builders import build_net, model_embed_dim

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(ROOT, "egs", "voxceleb", "v_kd", "conf")
SETS = ("paper", "toy", "tiny")
COMBOS = ("COS", "KL", "MMD", "COS+KL", "COS+MMD", "KL+MMD")


@pytest.mark.parametrize("conf_set", SETS)
@pytest.mark.parametrize("system", ("audio", "visual", "teacher"))
def test_config_builds(conf_set, system):
    cfg = config_to_dict(parse_config(load_config(os.path.join(CONF, conf_set, f"{system}.yaml"))))
    typed = parse_model_config(cfg)  # the model part of the config.yaml a run of it writes
    net = build_net(typed, 10)
    encoder, head = net.encoder, net.projection
    dim = model_embed_dim(typed.model.args, encoder)
    assert dim == 512 and head.weight.shape == (10, 512)  # the paper's 512-d embeddings everywhere
    assert head.scale == 32.0
    final_margin = cfg["margin_update"]["final_margin"]
    assert final_margin == (0.7 if system == "teacher" else 0.2)  # paper: AAM m=0.7 teacher, 0.2 students
    if conf_set == "paper" and system == "audio":
        assert cfg["model_args"]["m_channels"] == 32 and cfg["model_args"]["feat_dim"] == 40
        assert cfg["dataset_args"]["num_frms"] == [200, 400]
        assert cfg["dataset_args"]["feat_source"] == "wav"  # on-the-fly fbank, as WeSpeaker (no 130 GB of arks)
    if system == "teacher":
        assert cfg["model"] == "gate" and cfg["modality"] == "fusion"
        out = encoder.eval()(torch.randn(2, 512), torch.randn(2, 512))
        assert out.shape == (2, 512)


def student_kd_configs(conf_set: str) -> list[str]:
    """The kd configs run.sh gives a student of conf_set: conf/kd.yaml, then the set's own kd.yaml if any."""
    own = os.path.join(CONF, conf_set, "kd.yaml")
    return [os.path.join(CONF, "kd.yaml")] + ([own] if os.path.isfile(own) else [])


@pytest.mark.parametrize("conf_set", SETS)
@pytest.mark.parametrize("modality", ("audio", "visual"))
def test_kd_combos_resolve(conf_set, modality, monkeypatch):
    monkeypatch.chdir(os.path.join(ROOT, "egs", "voxceleb", "v_kd"))  # kd.yaml paths are recipe-relative
    kd = load_config(student_kd_configs(conf_set))["kd"]
    expected = {"COS": {"cos"}, "KL": {"kl"}, "MMD": {"mmd"}, "COS+KL": {"cos", "kl"}, "COS+MMD": {"cos", "mmd"},
                "KL+MMD": {"kl", "mmd"}}
    for combo in COMBOS:
        resolved = resolve_kd_preset(dict(kd, combo=combo), modality)
        active = {name for key, name in (("alpha", "kl"), ("beta", "cos"), ("gamma", "mmd"))
                  if resolved.get(key, 0.0)}
        assert active == expected[combo], combo
        assert resolved["temperature"] == 0.03125


@pytest.mark.parametrize("conf_set", SETS)
def test_one_shared_kd_block(conf_set):
    """Every shipped set uses conf/kd.yaml; a set's own kd.yaml exists only to change something (a copy of
    the shared block would drift from it unseen)."""
    own = os.path.join(CONF, conf_set, "kd.yaml")
    if os.path.isfile(own):
        shared = load_yaml(os.path.join(CONF, "kd.yaml"))["kd"]
        mine = load_yaml(own).get("kd") or {}
        assert any(shared.get(k) != v for k, v in mine.items()), f"{own} changes nothing of conf/kd.yaml"
