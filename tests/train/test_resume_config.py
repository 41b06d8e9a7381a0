"""exp_dir/config.yaml is the typed config with every default; a rerun compares typed values key by key: a changed
default refuses to resume naming the key, an older config.yaml without the defaults still resumes."""
import dataclasses
import inspect
import os

import pytest
import torch
import yaml

from wespeaker_avkd.config.sections import MarginUpdate
from wespeaker_avkd.config.train_config import ConfigError, TrainConfig, load_saved_config, parse_config
from wespeaker_avkd.data.dataset_args import AudioDatasetArgs, DataLoaderArgs
from wespeaker_avkd.models.projections import ArcMarginProduct
from wespeaker_avkd.registry import MODELS
from wespeaker_avkd.train.resume import KDStateError, load_kd_state
from wespeaker_avkd.train.trainer import run_training

from .fakes import fake_loaders, tiny_config, write_data_dir


def _train(data, exp, **extra):
    return run_training(tiny_config(data, **extra), str(exp), device="cpu", num_threads=1, progress=False,
                        loaders=fake_loaders())


def _keyword_defaults(cls, supplied=()):
    """The keyword parameters of cls's constructor that have a default (independent of the schema's reading)."""
    return {name for name, p in inspect.signature(cls).parameters.items()
            if p.default is not inspect.Parameter.empty and name not in supplied}


def test_config_yaml_lists_every_default_and_reads_back_equal(tmp_path):
    data, exp = write_data_dir(tmp_path / "data"), tmp_path / "exp"
    trainer = _train(data, exp, num_epochs=1, num_avg=1)
    saved = yaml.safe_load(open(exp / "config.yaml"))
    # every top-level key of the schema: its simple keys and its sections (WeSpeaker-only keys aside)
    wespeaker_only = {"margin_scheduler", "loss", "loss_args"}
    schema_keys = (set(TrainConfig.SIMPLE) | set(TrainConfig.SECTIONS)) - wespeaker_only
    assert schema_keys <= set(saved), schema_keys - set(saved)
    # every field of every section, each at the section's own default where tiny_config leaves it unset
    for section, cls in (("dataset_args", AudioDatasetArgs), ("dataloader_args", DataLoaderArgs),
                         ("margin_update", MarginUpdate)):
        assert set(saved[section]) == {f.name for f in dataclasses.fields(cls)}, section
    assert saved["dataset_args"]["num_frms"] == [200, 400] and saved["dataset_args"]["feat_source"] == "auto"
    assert saved["dataloader_args"]["prefetch_factor"] == 2 and saved["eval_dataloader_args"] is None
    assert saved["dataset_args"]["fbank_args"] == {"num_mel_bins": 40, "frame_length": 25.0, "frame_shift": 10.0,
                                                   "dither": 0.0}
    # components: the constructor's keyword defaults, the config's values where it sets them
    assert set(saved["model_args"]) == _keyword_defaults(MODELS.get(saved["model"]))
    assert set(saved["projection_args"]) == {"project_type"} | _keyword_defaults(ArcMarginProduct) - {"margin"}
    assert set(saved["optimizer_args"]) == _keyword_defaults(torch.optim.SGD, ("lr",))
    assert saved["optimizer_args"]["dampening"] == 0 and saved["projection_args"]["scale"] == 16.0
    assert load_saved_config(exp / "config.yaml") == trainer.cfg


def test_a_changed_default_refuses_resume_naming_the_key(tmp_path, monkeypatch):
    data, exp = write_data_dir(tmp_path / "data"), tmp_path / "exp"
    no_scale = dict(tiny_config(data)["projection_args"])
    del no_scale["scale"]  # left to the head's default, which config.yaml records
    _train(data, exp, num_epochs=1, projection_args=no_scale)
    assert yaml.safe_load(open(exp / "config.yaml"))["projection_args"]["scale"] == 32.0
    before = open(exp / "config.yaml", "rb").read()
    scale, *rest = ArcMarginProduct.__init__.__defaults__
    monkeypatch.setattr(ArcMarginProduct.__init__, "__defaults__", (30.0, *rest))  # a new release's default
    with pytest.raises(ConfigError, match=r"config\.yaml: .*different config \(projection_args\.scale was 32\.0, "
                                          r"is now 30\.0\)") as err:
        _train(data, exp, num_epochs=2, projection_args=no_scale)
    assert "\n" not in str(err.value)
    assert open(exp / "config.yaml", "rb").read() == before  # refused before anything was written


def test_a_changed_schema_default_refuses_resume(tmp_path, monkeypatch):
    data, exp = write_data_dir(tmp_path / "data"), tmp_path / "exp"
    cfg = {k: v for k, v in tiny_config(data, num_epochs=1).items() if k != "seed"}
    run_training(cfg, str(exp), device="cpu", num_threads=1, progress=False, loaders=fake_loaders())
    monkeypatch.setitem(TrainConfig.DEFAULTS, "seed", 43)
    with pytest.raises(ConfigError, match=r"\(seed was 42, is now 43\)"):
        run_training(dict(cfg, num_epochs=2), str(exp), device="cpu", num_threads=1, progress=False,
                     loaders=fake_loaders())


def test_resume_safe_keys_may_change_and_the_others_are_named(tmp_path):
    data, exp = write_data_dir(tmp_path / "data"), tmp_path / "exp"
    _train(data, exp, num_epochs=1)
    with pytest.raises(ConfigError, match=r"\(dataset_args\.num_frms was \[200, 400\], is now \[100, 150\]\)"):
        _train(data, exp, num_epochs=2, dataset_args={"num_frms": [100, 150]})
    trainer = _train(data, exp, num_epochs=2, log_batch_interval=3, dataloader_args={"batch_size": 8,
                                                                                       "num_workers": 0})
    assert trainer.start_epoch == 2
    assert yaml.safe_load(open(exp / "config.yaml"))["num_epochs"] == 2  # the new config recorded


def test_an_old_config_yaml_without_the_defaults_still_resumes(tmp_path):
    """A config.yaml written before every default was recorded (the merged dict as given): its missing keys take
    today's defaults, so an unchanged config resumes; a finished rerun leaves the file as it is (the extraction
    stamps record it), a resumed one with more epochs records the full config."""
    data, exp = write_data_dir(tmp_path / "data"), tmp_path / "exp"
    _train(data, exp, num_epochs=1, num_avg=1)
    old = dict(tiny_config(data, num_epochs=1, num_avg=1))
    del old["dataset_args"], old["tensorboard"]
    (exp / "config.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    before = open(exp / "config.yaml", "rb").read()
    finished = _train(data, exp, num_epochs=1, num_avg=1)
    assert finished.start_epoch == 2 and open(exp / "config.yaml", "rb").read() == before
    resumed = _train(data, exp, num_epochs=2, num_avg=1)
    assert resumed.start_epoch == 2 and os.path.isfile(exp / "models" / "model_2.pt")
    assert "fbank_args" in yaml.safe_load(open(exp / "config.yaml"))["dataset_args"]
    assert load_saved_config(exp / "config.yaml") == parse_config(tiny_config(data, num_epochs=2, num_avg=1))


def test_kd_adapter_state_loads_strictly_naming_the_file():
    from wespeaker_avkd.losses.kd_objective import objective_from_specs

    specs = {"cos": {"type": "cos", "weight": 1.0}}
    kd = objective_from_specs(specs, True, torch.ones(3, 4), 5, 4)
    saved = {"adapter.weight": torch.full((4, 5), 0.5)}
    load_kd_state(kd, saved, "train_state_1.pt")
    assert torch.equal(kd.adapter.weight, saved["adapter.weight"])
    with pytest.raises(KDStateError, match=r"train_state_1\.pt: kd_adapter holds .*unexpected \['adapter\.bias'\]"):
        load_kd_state(kd, {**saved, "adapter.bias": torch.zeros(4)}, "train_state_1.pt")
    with pytest.raises(KDStateError, match=r"missing \['adapter\.weight'\]"):
        load_kd_state(kd, {}, "train_state_1.pt")
    with pytest.raises(ValueError, match="adapter.weight"):  # a shape that does not fit is named too
        load_kd_state(kd, {"adapter.weight": torch.zeros(4, 6)}, "train_state_1.pt")
