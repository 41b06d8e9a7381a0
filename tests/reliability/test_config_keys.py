"""Every key of a training config is read or refused: unknown keys (with a "did you mean" and the file that
set them), wrong types, out-of-range values, keys of one form that the other form does not read."""
import os
import textwrap

import pytest
import yaml

from wespeaker_avkd.config.train_config import ConfigError, apply_overrides, load_config, parse_config
from wespeaker_avkd.losses.kd_objective import build_kd_objective, kd_term_specs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(ROOT, "egs", "voxceleb", "v_kd", "conf", "toy")


def _conf(tmp_path, system, extra=None, kd=False):
    """The toy recipe config of `system` (with the KL student's kd block) plus an extra yaml file."""
    paths = [os.path.join(CONF, f"{system}.yaml")]
    if kd:
        (tmp_path / "kd.yaml").write_text(yaml.safe_dump({"kd": {"teacher_dir": "t", "alpha": 1.0,
                                                                 "temperature": 0.03125}}))
        paths.append(str(tmp_path / "kd.yaml"))
    if extra is not None:
        (tmp_path / "extra.yaml").write_text(yaml.safe_dump(extra))
        paths.append(str(tmp_path / "extra.yaml"))
    return load_config(paths)


def refused(tmp_path, system, extra, match, kd=False):
    with pytest.raises(ConfigError, match=match) as err:
        parse_config(_conf(tmp_path, system, extra, kd))
    return str(err.value)


def test_shipped_configs_pass(tmp_path):
    for system in ("audio", "visual", "teacher"):
        parse_config(_conf(tmp_path, system))
    parse_config(_conf(tmp_path, "audio", kd=True))


@pytest.mark.parametrize("system,extra,key,hint", [
    ("audio", {"num_epocs": 3}, "num_epocs", "num_epochs"),
    ("audio", {"dataloader_args": {"batch_sizes": 8}}, "dataloader_args.batch_sizes", "batch_size"),
    ("audio", {"eval_dataloader_args": {"num_worker": 1}}, "eval_dataloader_args.num_worker", "num_workers"),
    ("audio", {"dataset_args": {"num_frm": [1, 2]}}, "dataset_args.num_frm", "num_frms"),
    ("audio", {"dataset_args": {"fbank_args": {"num_mel_bin": 40}}}, "dataset_args.fbank_args.num_mel_bin",
     "num_mel_bins"),
    ("visual", {"dataset_args": {"image_sise": 48}}, "dataset_args.image_sise", "image_size"),
    ("visual", {"dataset_args": {"num_frms": [1, 2]}}, "dataset_args.num_frms", None),  # audio only
    ("audio", {"model_args": {"m_channel": 8}}, "model_args.m_channel", "m_channels"),
    ("visual", {"model_args": {"embed_dims": 8}}, "model_args.embed_dims", "embed_dim"),
    ("teacher", {"model_args": {"bottlenek": 4}}, "model_args.bottlenek", "bottleneck"),
    ("teacher", {"model_args": {"aug_probb": 0.1}}, "model_args.aug_probb", "aug_prob"),  # FusionBase kwarg
    ("audio", {"projection_args": {"scal": 30}}, "projection_args.scal", "scale"),
    ("audio", {"margin_update": {"final_margn": 0.2}}, "margin_update.final_margn", "final_margin"),
    ("audio", {"optimizer_args": {"weight_decy": 0.1}}, "optimizer_args.weight_decy", "weight_decay"),
    ("audio", {"scheduler_args": {"warm_up_epochs": 1}}, "scheduler_args.warm_up_epochs", "warm_up_epoch"),
    ("teacher", {"embedding_dirs": {"audi": "x"}}, "embedding_dirs.audi", "audio"),
])
def test_unknown_key_named_with_file_and_suggestion(tmp_path, system, extra, key, hint):
    msg = refused(tmp_path, system, extra, f"config key '{key}': is not known")
    assert msg.startswith(str(tmp_path / "extra.yaml") + ": ")
    if hint:
        assert f"did you mean '{hint}'?" in msg


@pytest.mark.parametrize("kd_extra,key,hint", [
    ({"gama": 1.0}, "kd.gama", "gamma"),
    ({"temprature": 0.1}, "kd.temprature", "temperature"),
    ({"mmd": {"kernel_nums": 3}}, "kd.mmd.kernel_nums", "kernel_num"),
    ({"kl": {"t_square": True}}, "kd.kl.t_square", "t_squared"),
    ({"teacher_dri": "x"}, "kd.teacher_dri", "teacher_dir"),
])
def test_unknown_kd_key(tmp_path, kd_extra, key, hint):
    msg = refused(tmp_path, "audio", {"kd": kd_extra}, f"config key '{key}': is not known", kd=True)
    assert f"did you mean '{hint}'?" in msg and msg.startswith(str(tmp_path / "extra.yaml"))


def test_gama_no_longer_drops_the_mmd_term():
    """The loss side refuses it too (build_kd_objective is also called directly)."""
    with pytest.raises(ConfigError, match=r"'kd.gama': is not known \(did you mean 'gamma'\?\)"):
        build_kd_objective({"alpha": 1.0, "gama": 1.0}, None, 8, 8)
    assert set(build_kd_objective({"gamma": 1.0}, None, 8, 8).terms) == {"mmd"}


def test_losses_form_checks_each_loss():
    specs = kd_term_specs({"losses": {"wide": {"type": "mmd", "weight": 0.5, "kernel_mul": 4.0}}})
    assert specs == {"wide": {"type": "mmd", "weight": 0.5, "kernel_mul": 4.0}}
    with pytest.raises(ConfigError, match=r"'kd.losses.wide.kernel_mull': is not known \(did you mean 'kernel_mul'"):
        kd_term_specs({"losses": {"wide": {"type": "mmd", "kernel_mull": 4.0}}})
    with pytest.raises(ConfigError, match=r"'kd.losses.x.type': unknown KD loss 'mdd' \(did you mean 'mmd'"):
        kd_term_specs({"losses": {"x": {"type": "mdd"}}})
    with pytest.raises(ConfigError, match=r"'kd.losses.kl.weight': must be >= 0, got -1"):
        kd_term_specs({"losses": {"kl": {"weight": -1}}})
    # the shorthand keys are not read beside `losses`: refused, all named
    with pytest.raises(ConfigError, match=r"not read when kd.losses is given.*'kd.alpha'.*'kd.temperature'"):
        kd_term_specs({"losses": {"kl": {}}, "alpha": 1.0, "temperature": 0.1})


@pytest.mark.parametrize("system,extra,match", [
    ("audio", {"num_epochs": 0}, r"'num_epochs': must be a positive integer, got 0"),
    ("audio", {"num_epochs": 2.5}, r"'num_epochs': expected an integer, got 2.5"),
    ("audio", {"num_epochs": "10"}, r"'num_epochs': expected an integer, got '10'"),
    ("audio", {"num_avg": True}, r"'num_avg': expected an integer, got True"),
    ("audio", {"dataloader_args": {"batch_size": -4}}, r"'dataloader_args.batch_size': must be a positive integer"),
    ("audio", {"dataloader_args": {"drop_last": "yes"}}, r"'dataloader_args.drop_last': expected true or false"),
    ("audio", {"scheduler_args": {"initial_lr": 0}}, r"'scheduler_args.initial_lr': must be > 0, got 0"),
    ("audio", {"scheduler_args": {"final_lr": -1e-4}}, r"'scheduler_args.final_lr': must be > 0"),
    ("audio", {"scheduler_args": {"warm_from_zero": 1}}, r"'scheduler_args.warm_from_zero': expected true or false"),
    ("audio", {"dataset_args": {"num_frms": [300, 200]}}, r"'dataset_args.num_frms': \[min, max\] needs min <= max"),
    ("audio", {"dataset_args": {"num_frms": [0, 200]}}, r"'dataset_args.num_frms.0': must be a positive integer"),
    ("audio", {"dataset_args": {"feat_source": "fbank"}}, r"'dataset_args.feat_source': must be one of"),
    ("audio", {"dataset_args": {"fbank_args": {"frame_shift": 0}}}, r"fbank_args.frame_shift': must be > 0"),
    ("audio", {"model_args": {"feat_dim": "40"}}, r"'model_args.feat_dim': expected an integer, got '40'"),
    ("audio", {"model_args": {"embed_dim": 0}}, r"'model_args.embed_dim': must be > 0"),
    ("audio", {"optimizer_args": {"weight_decay": -1}}, r"'optimizer_args.weight_decay': must be >= 0"),
    ("audio", {"optimizer_args": {"lr": 0.1}}, r"'optimizer_args.lr': is not read: the schedule sets"),
    ("audio", {"optimizer": "Adma"}, r"'optimizer': unknown optimizer 'Adma' \(did you mean 'Adam'\?\)"),
    ("audio", {"scheduler": "ConstantLR"}, r"scheduler_args not read by ConstantLR: 'scheduler_args.final_lr'"),
    ("audio", {"model": "ResNet43"}, r"'model': unknown model 'ResNet43'"),
    ("audio", {"margin_update": {"fix_start_epoch": 1}}, r"'margin_update.fix_start_epoch': must be >= "),
    ("audio", {"margin_update": {"increase_type": "log"}}, r"'margin_update.increase_type': must be one of"),
    ("audio", {"projection_args": {"margin": 0.3}}, r"'projection_args.margin': is not read when margin_update"),
    ("audio", {"keep_checkpoints": 1}, r"'keep_checkpoints': must be >= num_avg \(2\)"),
    ("audio", {"save_epoch_interval": 0}, r"'save_epoch_interval': must be a positive integer"),
    ("audio", {"loss_args": {"x": 1}}, r"'loss_args': the AAM cross-entropy takes no arguments"),
    ("audio", {"loss": "FocalLoss"}, r"'loss': must be one of 'CrossEntropyLoss'"),
    ("audio", {"embedding_dirs": {"audio": "a", "visual": "v"}}, r"'embedding_dirs': is read only by the fusion"),
    ("visual", {"dataset_args": {"std": [0.5, 0, 0.5]}}, r"'dataset_args.std.1': must be > 0"),
    ("visual", {"dataset_args": {"mean": [0.5, 0.5]}}, r"'dataset_args.mean': expected a list of 3 items"),
    ("teacher", {"embedding_dirs": {"audio": "a", "visual": None}}, r"'embedding_dirs.visual': expected a non-empty"),
    ("teacher", {"model_args": {"aug_prob": -0.5}}, r"'model_args.aug_prob': must be >= 0"),
])
def test_wrong_types_and_ranges_named(tmp_path, system, extra, match):
    msg = refused(tmp_path, system, extra, match)
    # the file that set the offending key (ConstantLR: final_lr comes from the shipped config)
    assert msg.split(": ")[0] in (str(tmp_path / "extra.yaml"), os.path.join(CONF, f"{system}.yaml"))


@pytest.mark.parametrize("kd_extra,match", [
    ({"alpha": -1.0}, r"'kd.alpha': must be >= 0, got -1"),
    ({"beta": "one"}, r"'kd.beta': expected a number"),
    ({"temperature": 0}, r"'kd.temperature': must be > 0, got 0"),
    ({"adapter": "no"}, r"'kd.adapter': expected true or false"),
    ({"mmd": [1, 2]}, r"'kd.mmd': expected a mapping"),
])
def test_kd_values_named(tmp_path, kd_extra, match):
    refused(tmp_path, "audio", {"kd": kd_extra}, match, kd=True)


def test_override_typo_named_as_override(tmp_path):
    cfg = apply_overrides(_conf(tmp_path, "audio", kd=True), [("+kd.gama", "1")])
    with pytest.raises(ConfigError, match=r"^command-line override: config key 'kd.gama': is not known"):
        parse_config(cfg)


def test_kd_preset_keys_named_by_their_weights_file(tmp_path):
    weights = tmp_path / "w.yaml"
    weights.write_text(yaml.safe_dump({"audio": {"KL": {"alpha": 1.0, "gama": 0.5}}}))
    cfg = _conf(tmp_path, "audio", {"kd": {"combo": "KL", "weights_file": str(weights)}}, kd=True)
    with pytest.raises(ConfigError, match=rf"^{weights} \(audio.KL\): config key 'kd.gama': is not known"):
        parse_config(cfg)


def test_plugin_model_args_checked_against_its_signature(tmp_path, monkeypatch):
    (tmp_path / "cfgkeys_plugin_net.py").write_text(textwrap.dedent('''
        import torch.nn as nn
        from wespeaker_avkd.registry import MODELS

        @MODELS.register("CfgKeysPluginNet")
        class CfgKeysPluginNet(nn.Module):
            def __init__(self, feat_dim: int, embed_dim: int = 16, width: float = 1.0):
                super().__init__()
                self.embed_dim = embed_dim
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    base = {k: v for k, v in load_config(os.path.join(CONF, "audio.yaml")).items() if k != "model_args"}
    base.update(plugins=["cfgkeys_plugin_net"], model="CfgKeysPluginNet")

    def check(model_args):
        (tmp_path / "plugin.yaml").write_text(yaml.safe_dump({**base, "model_args": model_args}))
        return parse_config(load_config(str(tmp_path / "plugin.yaml")))

    # as written, the constructor's other defaults filled in (config.yaml records them)
    assert check({"feat_dim": 40, "width": 0.5}).model.args == {"feat_dim": 40, "embed_dim": 16, "width": 0.5}
    for model_args, match in (
            ({"feat_dim": 40, "widht": 0.5}, r"'model_args.widht': is not known \(did you mean 'width'"),
            ({"width": 0.5}, r"'model_args': missing required key\(s\) 'model_args.feat_dim'"),
            ({"feat_dim": 40, "width": "wide"}, r"'model_args.width': expected a number, got 'wide'")):
        with pytest.raises(ConfigError, match=match):
            check(model_args)


def test_kd_spec_is_one_typed_object_split_once(tmp_path):
    """The edge turns the kd block into one KDConfig: the recipe's keys (KDConfig.RECIPE_KEYS) become its fields,
    every other key a validated loss term; build_kd reads only that object and the loss layer refuses recipe keys."""
    import numpy as np

    from wespeaker_avkd.config.serialize import config_to_dict
    from wespeaker_avkd.config.train_config import KDConfig
    from wespeaker_avkd.systems.builders import build_kd

    teacher = tmp_path / "kd_export"
    teacher.mkdir()
    np.save(teacher / "projection_weight.npy", np.ones((3, 8), np.float32))
    (teacher / "xvector.scp").write_text("")
    weights = tmp_path / "w.yaml"
    weights.write_text(yaml.safe_dump({"audio": {"KL+MMD": {"alpha": 2.0, "gamma": 0.5}}}))
    cfg = _conf(tmp_path, "audio", {"kd": {"teacher_dir": str(teacher), "combo": "KL+MMD",
                                           "weights_file": str(weights)}}, kd=True)
    typed = parse_config(cfg)
    kd = typed.kd
    assert isinstance(kd, KDConfig) and set(KDConfig.RECIPE_KEYS) == {"teacher_dir", "combo", "weights_file"}
    assert (kd.teacher_dir, kd.combo, kd.adapter) == (str(teacher), "KL+MMD", False)
    # the kd block's own alpha (1.0, from _conf's kd.yaml) wins over the preset's; gamma comes from the preset
    assert {name: spec["weight"] for name, spec in kd.terms.items()} == {"kl": 1.0, "cos": 0.0, "mmd": 0.5}
    assert kd.terms["kl"]["temperature"] == 0.03125
    recorded = config_to_dict(typed)["kd"]  # what exp_dir/config.yaml records: the resolved terms
    assert recorded["combo"] == "KL+MMD" and recorded["losses"]["mmd"]["weight"] == 0.5
    objective, scp = build_kd(kd, 8)
    assert scp == str(teacher / "xvector.scp") and set(objective.terms) == {"kl", "mmd"}
    assert objective.weights == {"kl": 1.0, "mmd": 0.5} and objective.terms["kl"].temperature == 0.03125
    assert build_kd(None, 8) == (None, None)
    with pytest.raises(ConfigError, match=r"'kd.teacher_dir': is not known"):  # a recipe key, not a loss key
        build_kd_objective({"teacher_dir": str(teacher), "alpha": 1.0}, None, 8, 8)


def _float_paths(data, prefix=""):
    """Dotted paths of every float value in a nested config (list items as path.<index>)."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for k, v in items:
        path = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, float):
            yield path
        yield from _float_paths(v, path)


def _set(data, path, value):
    *parents, last = path.split(".")
    for p in parents:
        data = data[int(p)] if isinstance(data, list) else data[p]
    data[int(last) if isinstance(data, list) else last] = value


@pytest.mark.parametrize("system,kd", [("audio", False), ("visual", False), ("teacher", False), ("audio", True)])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_every_float_refuses_non_finite(tmp_path, system, kd, bad):
    cfg = _conf(tmp_path, system, kd=kd)
    paths = list(_float_paths(cfg))
    assert len(paths) >= 4 and (not kd or "kd.alpha" in paths), paths
    for path in paths:
        broken = _conf(tmp_path, system, kd=kd)
        _set(broken, path, bad)
        key = path.rsplit(".", 1)[0] if path.rsplit(".", 1)[-1].isdigit() else path
        with pytest.raises(ConfigError, match=rf"'{key}(\.\d+)?'.*finite") as err:
            parse_config(broken)
        assert "\n" not in str(err.value)
