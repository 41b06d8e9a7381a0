"""models/config.yaml in WeSpeaker's names: what WeSpeaker's readers take, and read back by our own loader to the
same experiment (every shipped config)."""
import dataclasses
import os

import pytest

from wespeaker_avkd.config.train_config import apply_overrides, load_config, parse_config, parse_train_config
from wespeaker_avkd.config.wespeaker import wespeaker_config, write_wespeaker_config

RECIPE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "egs",
                      "voxceleb", "v_kd")
# The top-level keys of WeSpeaker's examples/voxceleb/v2/conf/resnet.yaml, in its order, without the two that
# belong to a WeSpeaker training run (exp_dir, gpus).
WESPEAKER_TOP = ["num_avg", "enable_amp", "seed", "num_epochs", "save_epoch_interval", "log_batch_interval",
                 "dataloader_args", "dataset_args", "model", "model_init", "model_args", "projection_args",
                 "margin_scheduler", "margin_update", "loss", "loss_args", "optimizer", "optimizer_args",
                 "scheduler", "scheduler_args"]


def wespeaker_resnet34(feat_dim, embed_dim, pooling_func="TSTP", two_emb_layer=False):
    """The signature of WeSpeaker's ResNet34 factory (what get_speaker_model(...)(**model_args) calls)."""
    return feat_dim, embed_dim, pooling_func, two_emb_layer


def wespeaker_compute_fbank(data, num_mel_bins=80, frame_length=25, frame_shift=10, dither=1.0):
    """The signature of WeSpeaker's dataset processor compute_fbank (called with **fbank_args)."""
    return num_mel_bins, frame_length, frame_shift, dither


def _conf(conf_set, system):
    files = [os.path.join(RECIPE, "conf", conf_set, f"{system.replace('_kd', '')}.yaml")]
    if system.endswith("_kd"):  # the KD block: one for every set, or one per set
        shared = os.path.join(RECIPE, "conf", "kd.yaml")
        files.append(shared if os.path.isfile(shared) else os.path.join(RECIPE, "conf", conf_set, "kd.yaml"))
    return parse_config(apply_overrides(load_config(files), [("kd.combo", "COS+KL")] if len(files) > 1 else []))


@pytest.mark.parametrize("conf_set", ["paper", "toy", "tiny"])
@pytest.mark.parametrize("system", ["audio", "visual", "teacher", "audio_kd", "visual_kd"])
def test_written_config_reads_back_to_the_same_experiment(conf_set, system, tmp_path, monkeypatch):
    monkeypatch.chdir(RECIPE)  # kd.yaml names conf/kd_weights.yaml relative to the recipe
    cfg = _conf(conf_set, system)
    path = write_wespeaker_config(cfg, tmp_path)
    assert path == os.path.join(str(tmp_path), "config.yaml")
    back = load_config(path)
    assert list(back)[:len(WESPEAKER_TOP)] == [k for k in WESPEAKER_TOP if k in back]
    assert "amp" not in back and back["enable_amp"] is cfg.amp
    frms = getattr(cfg.dataset_args, "num_frms", None)
    if frms is not None:  # WeSpeaker's one chunk length: a range's min (the range is in the exp's config.yaml)
        assert back["dataset_args"]["num_frms"] == frms[0]
        cfg = dataclasses.replace(cfg, dataset_args=dataclasses.replace(cfg.dataset_args, num_frms=[frms[0]] * 2))
    assert parse_train_config(back) == cfg  # every default was written: the typed configs are equal


def test_what_wespeakers_readers_take():
    cfg = _conf("paper", "audio")
    out = wespeaker_config(cfg)
    assert list(out)[:len(WESPEAKER_TOP)] == WESPEAKER_TOP
    # get_speaker_model("ResNet34")(**model_args): exactly the factory's arguments (m_channels 32 is built in)
    assert list(out["model_args"]) == ["feat_dim", "embed_dim", "pooling_func", "two_emb_layer"]
    assert wespeaker_resnet34(**out["model_args"]) == (40, 512, "TSTP", False)
    assert wespeaker_compute_fbank(None, **out["dataset_args"]["fbank_args"]) == (40, 25, 10, 1.0)
    assert out["projection_args"] == {"project_type": "arc_margin", "scale": 32.0, "easy_margin": False,
                                      "continuous_fallback": False}  # no margin: margin_update sets it
    assert out["margin_scheduler"] == "MarginScheduler" and out["loss"] == "CrossEntropyLoss"
    assert out["loss_args"] == {} and out["model_init"] is None and out["enable_amp"] is False
    assert out["margin_update"]["increase_type"] == "exp" and out["margin_update"]["update_margin"] is True
    assert cfg == _conf("paper", "audio")  # the input is not modified


def test_synonyms_defaults_and_other_widths():
    base = {"model": "ResNet34", "train_data": "data/train", "num_epochs": 3,
            "scheduler_args": {"initial_lr": 0.1, "final_lr": 0.001}}
    out = wespeaker_config(dict(base, amp=True, dataset_args={"num_frms": [200, 200]},
                                model_args={"m_channels": 16}))
    assert out["enable_amp"] is True and "amp" not in out
    assert out["dataset_args"]["num_frms"] == 200  # WeSpeaker's scalar form for a fixed chunk
    # and for a range its min, so WeSpeaker's export_onnx.py can build its example input (1, num_frms, feat_dim)
    assert wespeaker_config(dict(base, dataset_args={"num_frms": [200, 400]}))["dataset_args"]["num_frms"] == 200
    # feat_dim / embed_dim have no default in WeSpeaker's factories: our defaults are written out; a width other
    # than WeSpeaker's fixed 32 is kept (our loader needs it)
    assert out["model_args"] == {"feat_dim": 40, "embed_dim": 512, "pooling_func": "TSTP", "two_emb_layer": False,
                                 "m_channels": 16}
    assert out["dataset_args"]["fbank_args"] == {"num_mel_bins": 40, "frame_length": 25.0, "frame_shift": 10.0,
                                                 "dither": 0.0}
    assert out["num_avg"] == 1 and out["optimizer"] == "SGD" and out["modality"] == "audio"
    again = wespeaker_config(dict(base, enable_amp=True, dataset_args={"num_frms": 300},
                                  plugins=["wespeaker_avkd.models.resnet"]))
    assert again["enable_amp"] is True and again["dataset_args"]["num_frms"] == 300
    assert again["plugins"] == ["wespeaker_avkd.models.resnet"]  # our keys are kept, nothing is dropped
    assert "margin_update" not in again and "margin_scheduler" not in again  # no schedule, none invented


def test_write_is_atomic_and_leaves_an_identical_file_alone(tmp_path):
    cfg = _conf("tiny", "audio")
    path = write_wespeaker_config(cfg, tmp_path)
    stat = os.stat(path)
    assert write_wespeaker_config(cfg, tmp_path) == path
    assert os.stat(path).st_mtime_ns == stat.st_mtime_ns  # a re-run changes no file
    write_wespeaker_config(dataclasses.replace(cfg, num_epochs=7), tmp_path)
    assert load_config(path)["num_epochs"] == 7
    assert sorted(os.listdir(tmp_path)) == ["config.yaml"]  # no temporary file left behind
