"""WeSpeaker's own voxceleb/v2 training configs (tests/fixtures/wespeaker_v2_*.yaml) train here: every pipeline
key read (speed perturbation with its 3x classes, reverb/noise, spec_aug, filter, resample, shuffle, epoch size),
only data paths and sizes overridden; the keys that do not apply are refused with the reason."""
import copy
import dataclasses
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from wespeaker_avkd.config.serialize import config_to_dict
from wespeaker_avkd.config.train_config import ConfigError, deep_merge, load_config, parse_config
from wespeaker_avkd.data.dataset_args import AudioDatasetArgs
from wespeaker_avkd.data.noise_sets import write_noise_set, write_rir_set

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
RESNET = os.path.join(FIXTURES, "wespeaker_v2_resnet.yaml")
RESNET_LM = os.path.join(FIXTURES, "wespeaker_v2_resnet_lm.yaml")
RATE = 16000


def _wav_dir(path, num_spk=3, per_spk=4, seconds=1.2):
    """A Kaldi data dir of num_spk x per_spk wavs (a speaker: harmonics of its own pitch in noise)."""
    rng = np.random.default_rng(0)
    path.mkdir(parents=True)
    t = np.arange(int(seconds * RATE)) / RATE
    wav_scp, utt2spk = [], []
    for s in range(num_spk):
        for u in range(per_spk):
            utt = f"spk{s}-utt{u}"
            wave = sum(np.sin(2 * np.pi * (120 + 60 * s) * h * t) / h for h in (1, 2, 3))
            wave = 0.2 * wave / 2 + 0.02 * rng.standard_normal(len(t))
            sf.write(path / f"{utt}.wav", wave.astype(np.float32), RATE, subtype="PCM_16")
            wav_scp.append(f"{utt} {path / f'{utt}.wav'}\n")
            utt2spk.append(f"{utt} spk{s}\n")
    (path / "wav.scp").write_text("".join(wav_scp))
    (path / "utt2spk").write_text("".join(utt2spk))
    return str(path)


def _tiny_overrides(data, noise, rirs):
    """Data paths (WeSpeaker's command-line keys) and sizes for a 12-utterance corpus on CPU."""
    return {"train_data": data, "noise_data": noise, "reverb_data": rirs, "num_epochs": 2, "num_avg": 1,
            "tensorboard": False, "dataloader_args": {"batch_size": 4, "num_workers": 0},
            "dataset_args": {"num_frms": 60, "filter_args": {"min_num_frames": 50}},
            "model_args": {"embed_dim": 32, "m_channels": 4}}


def _wespeaker(path):
    return dict(load_config(path))  # every key as WeSpeaker ships it, exp_dir and gpus included


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws_v2")
    data = _wav_dir(root / "train")
    return {"data": data, "noise": write_noise_set(str(root / "musan"), os.path.join(data, "wav.scp"), per_kind=1,
                                                   seconds=1.0),
            "rirs": write_rir_set(str(root / "rirs"), count=2)}


def test_every_v2_resnet_key_is_read():
    cfg = dict(_wespeaker(RESNET), train_data="d", noise_data="n.scp", reverb_data="r.scp")
    typed = parse_config(cfg)
    ds = typed.dataset_args
    assert (ds.speed_perturb, ds.aug_prob, ds.spec_aug, ds.filter, ds.shuffle) == (True, 0.6, False, True, True)
    assert dataclasses.asdict(ds.filter_args) == {"min_num_frames": 100, "max_num_frames": 800}
    assert dataclasses.asdict(ds.spec_aug_args) == {"num_t_mask": 1, "num_f_mask": 1, "max_t": 10, "max_f": 8,
                                                    "prob": 0.6}
    assert dataclasses.asdict(ds.shuffle_args) == {"shuffle_size": 2500} and ds.sample_num_per_epoch == 0
    assert ds.resample_rate == 16000 and ds.num_frms == [200, 200]
    assert (ds.noise_data, ds.reverb_data) == ("n.scp", "r.scp")  # top-level in WeSpeaker, read into dataset_args


def test_run_keys_are_read_and_not_recorded():
    """exp_dir and gpus: WeSpeaker's run.sh overrides both on the command line; here --exp_dir and torchrun do."""
    raw = load_config(RESNET)
    assert {"exp_dir", "gpus"} <= set(raw)
    cfg = config_to_dict(parse_config(dict(raw, train_data="d", noise_data="n", reverb_data="r")))
    assert "exp_dir" not in cfg and "gpus" not in cfg
    for key, value in (("exp_dir", 3), ("gpus", {"a": 1}), ("gpus", True)):
        with pytest.raises(ConfigError, match=f"'{key}'"):
            parse_config(dict(raw, train_data="d", noise_data="n", reverb_data="r", **{key: value}))


def test_large_margin_config_keeps_the_head_and_stops_speed_perturbation(tmp_path):
    """resnet_lm.yaml (do_lm: True): as WeSpeaker's train.py, the head keeps 3 classes per speaker while the data
    is no longer speed-perturbed (labels stay the speakers')."""
    from wespeaker_avkd.data.augment import Augmenter
    from wespeaker_avkd.systems.builders import build_net

    typed = parse_config(dict(_wespeaker(RESNET_LM), train_data="d", noise_data="n", reverb_data="r"))
    ds = typed.dataset_args
    assert ds.do_lm is True and ds.speed_perturb is True and ds.num_frms == [600, 600]
    assert typed.margin_update.initial_margin == 0.5 and typed.num_avg == 1
    assert build_net(typed, 5).projection.weight.shape[0] == 15
    augmenter = Augmenter(AudioDatasetArgs(speed_perturb=True, do_lm=True), num_speakers=5)
    assert not augmenter.speed_perturb and augmenter.label(2, np.random.default_rng(0)) == 2


def test_aug_prob_needs_sets_and_waveform_steps_need_wav():
    cfg = dict(_wespeaker(RESNET), train_data="d")
    with pytest.raises(ConfigError, match=r"'dataset_args.aug_prob': is 0.6 but reverb_data and noise_data"):
        parse_config(cfg)
    cfg = deep_merge(cfg, {"dataset_args": {"feat_source": "feats", "aug_prob": 0.0}})
    with pytest.raises(ConfigError, match=r"'dataset_args.speed_perturb': acts on the waveform.*feat_source: wav"):
        parse_config(cfg)
    spec_only = deep_merge(cfg, {"dataset_args": {"speed_perturb": False, "spec_aug": True}})
    assert parse_config(spec_only).dataset_args.spec_aug is True
    with pytest.raises(ConfigError, match="read by audio systems only"):
        parse_config(dict(cfg, modality="visual", noise_data="n"))


def test_v2_resnet_trains_a_tiny_audio_system(tmp_path, tiny):
    from wespeaker_avkd.inference.extract import load_trained
    from wespeaker_avkd.train.trainer import run_training

    cfg = deep_merge(_wespeaker(RESNET), _tiny_overrides(tiny["data"], tiny["noise"], tiny["rirs"]))
    exp = str(tmp_path / "exp")
    trainer = run_training(copy.deepcopy(cfg), exp, device="cpu", progress=False)
    assert trainer.epoch_iter == 12 // 4
    state = torch.load(os.path.join(exp, "models", "avg_model.pt"), weights_only=True)
    assert state["projection.weight"].shape == (3 * 3, 32)  # 3 speakers x 3 speeds, as WeSpeaker's head
    _, net, _ = load_trained(exp)  # extraction builds the same head from the saved config
    emb = net.encoder(torch.randn(1, 80, 80))
    assert emb.shape == (1, 32) and torch.isfinite(emb).all()
