"""config.yaml is the TrainConfig with every default: every shipped config writes and reads back equal, and the
typed diff names nested keys with both values."""
import dataclasses
import os

import pytest
import yaml

from wespeaker_avkd.config.serialize import config_diff, config_to_dict, dict_diff, save_train_config
from wespeaker_avkd.config.train_config import apply_overrides, load_config, load_saved_config, parse_config

RECIPE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "egs",
                      "voxceleb", "v_kd")


@pytest.mark.parametrize("conf_set", ["paper", "toy", "tiny"])
@pytest.mark.parametrize("system", ["audio", "visual", "teacher", "audio_kd"])
def test_every_shipped_config_reads_back_equal(conf_set, system, tmp_path, monkeypatch):
    monkeypatch.chdir(RECIPE)  # kd.yaml names conf/kd_weights.yaml relative to the recipe
    files = [os.path.join("conf", conf_set, f"{system.replace('_kd', '')}.yaml")]
    overrides = []
    if system.endswith("_kd"):
        files.append(os.path.join("conf", "kd.yaml"))
        overrides = [("kd.combo", "KL+MMD")]
    cfg = parse_config(apply_overrides(load_config(files), overrides))
    path = tmp_path / "config.yaml"
    save_train_config(cfg, path)
    assert load_saved_config(path) == cfg
    assert config_diff(load_saved_config(path), cfg) == []
    written = yaml.safe_load(open(path))
    assert list(written) == list(config_to_dict(cfg))  # the file holds exactly the serialised object
    assert "&" not in path.read_text()  # no yaml anchors: a shared default is written out where it applies


def test_diff_names_nested_keys_with_both_values():
    cfg = parse_config(load_config(os.path.join(RECIPE, "conf", "tiny", "audio.yaml")))
    other = dataclasses.replace(cfg, seed=cfg.seed + 1,
                                dataset_args=dataclasses.replace(cfg.dataset_args, num_frms=[10, 20]))
    assert config_diff(cfg, other) == [("seed", cfg.seed, cfg.seed + 1),
                                       ("dataset_args.num_frms", cfg.dataset_args.num_frms, [10, 20])]
    assert dict_diff({"a": {"b": 1}, "c": None}, {"a": {"b": 1, "d": 2}, "c": {"e": 3}}) == [
        ("a.d", None, 2), ("c", None, {"e": 3})]
