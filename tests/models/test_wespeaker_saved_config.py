"""The config.yaml that WeSpeaker's train.py saves (tests/fixtures/wespeaker_saved_config.yaml: v2 resnet.yaml with
the values train.py fills in) loads as it is: for its model (load_model_config), in bin.embed --config, in
bin.export --config (ONNX: input feats, output embs, the mean folded in), and as model_init (a model dir)."""
import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi
import yaml

from wespeaker_avkd.bin import embed as embed_cli
from wespeaker_avkd.bin import export as export_cli
from wespeaker_avkd.config.model_config import load_model_config
from wespeaker_avkd.config.train_config import ConfigError, parse_config
from wespeaker_avkd.config.wespeaker import WESPEAKER_RUNTIME_KEYS
from wespeaker_avkd.models.resnet import ResNet34
from wespeaker_avkd.systems.builders import build_net, load_model_init

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "wespeaker_saved_config.yaml"
ONNX_READY = all(importlib.util.find_spec(p) for p in ("onnx", "onnxscript", "onnxruntime"))
SAVED = yaml.safe_load(FIXTURE.read_text())


def test_fixture_has_the_values_train_py_fills_in():
    """The fixture is in the saved form: every runtime key of the documented list is there."""
    for dotted in WESPEAKER_RUNTIME_KEYS:
        section, key = dotted.split(".")
        assert key in SAVED[section], dotted
    assert SAVED["projection_args"]["num_class"] == 3 * 5994 and SAVED["margin_update"]["epoch_iter"] == 4265


def test_saved_config_loads_for_its_model():
    cfg = load_model_config(str(FIXTURE), default_modality="audio")
    assert cfg.modality == "audio" and cfg.model.name == "ResNet34"
    # as written, ResNet's other arguments at their defaults
    assert cfg.model.args == {"embed_dim": 256, "feat_dim": 80, "pooling_func": "TSTP", "two_emb_layer": False,
                              "m_channels": 32, "block": None, "num_blocks": None}
    assert cfg.projection.name == "arc_margin"
    assert cfg.projection.args == {"easy_margin": False, "scale": 32.0, "continuous_fallback": False}
    assert cfg.margin_update.final_margin == 0.2 and cfg.dataset_args.fbank_args["num_mel_bins"] == 80
    assert cfg.stamped["model_args"] == SAVED["model_args"]


@pytest.mark.parametrize("key, value, message", [
    ("projection_args.embed_dim", 128, r"'projection_args\.embed_dim': is 128 but model_args\.embed_dim is 256"),
    ("projection_args.num_class", 0, r"'projection_args\.num_class': must be a positive integer"),
    ("margin_update.epoch_iter", "many", r"'margin_update\.epoch_iter'"),
])
def test_bad_runtime_values_are_refused_naming_file_and_key(tmp_path, key, value, message):
    saved = yaml.safe_load(FIXTURE.read_text())
    section, name = key.split(".")
    saved[section][name] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(saved))
    with pytest.raises(ConfigError, match=message) as err:
        load_model_config(str(path), default_modality="audio")
    assert str(path) in str(err.value)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A WeSpeaker model dir as its recipe leaves it: avg_model.pt (encoder + an AAM head of num_class rows) and
    the saved config.yaml."""
    path = tmp_path_factory.mktemp("pretrained")
    torch.manual_seed(0)
    encoder = ResNet34(feat_dim=80, embed_dim=256).eval()
    for module in encoder.modules():  # non-trivial BatchNorm statistics, so a skipped tensor would show
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    state = dict(encoder.state_dict())
    state["projection.weight"] = torch.randn(SAVED["projection_args"]["num_class"], 256)
    torch.save(state, path / "avg_model.pt")
    shutil.copy(FIXTURE, path / "config.yaml")
    return path, encoder


def _wav(path, seconds, freq):
    t = np.arange(int(16000 * seconds)) / 16000
    wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * np.random.default_rng(int(freq)).standard_normal(t.size)
    sf.write(str(path), wave.astype(np.float32), 16000, subtype="PCM_16")
    return str(path)


def _fbank80(path):
    """WeSpeaker's extraction features (its infer_onnx.py's compute_fbank): 80-bin Kaldi fbank, CMN."""
    wave, rate = sf.read(path, dtype="float32")
    fb = kaldi.fbank(torch.from_numpy(wave)[None] * (1 << 15), num_mel_bins=80, frame_length=25, frame_shift=10,
                     dither=0.0, sample_frequency=rate, window_type="hamming", use_energy=False)
    return fb - fb.mean(dim=0)


def test_bin_embed_with_the_saved_config(model_dir, tmp_path, capsys):
    path, encoder = model_dir
    wavs = [_wav(tmp_path / "a.wav", 0.7, 220.0), _wav(tmp_path / "b.wav", 1.1, 330.0)]
    assert embed_cli.main(["--wespeaker_checkpoint", str(path / "avg_model.pt"), "--config", str(path / "config.yaml"),
                           "--inputs", *wavs]) == 0
    printed = {}
    for line in capsys.readouterr().out.splitlines():
        key, *values = line.split()
        printed[key] = np.array(values, dtype=np.float32)
    assert sorted(printed) == sorted(wavs)
    for wav in wavs:
        with torch.no_grad():
            want = encoder(_fbank80(wav)[None])[0].numpy()
        assert np.abs(want).max() > 1e-3
        np.testing.assert_allclose(printed[wav], want, atol=2e-5, rtol=0)


@pytest.mark.skipif(not ONNX_READY, reason="optional ONNX packages (onnx, onnxscript, onnxruntime) not installed")
def test_bin_export_with_the_saved_config_folds_the_mean(model_dir, tmp_path):
    import onnxruntime as ort

    path, encoder = model_dir
    mean = np.random.default_rng(5).normal(size=256).astype(np.float32)
    np.save(tmp_path / "mean_vec.npy", mean)
    out = str(tmp_path / "model.onnx")
    assert export_cli.main(["--config", str(path / "config.yaml"), "--checkpoint", str(path / "avg_model.pt"),
                            "--format", "onnx", "--out", out, "--mean_vec", str(tmp_path / "mean_vec.npy")]) == 0
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["feats"] and [o.name for o in session.get_outputs()] == ["embs"]
    feats = _fbank80(_wav(tmp_path / "c.wav", 0.9, 250.0))[None].numpy()
    embs = session.run(["embs"], {"feats": feats})[0]
    with torch.no_grad():
        want = encoder(torch.from_numpy(feats)).numpy() - mean
    np.testing.assert_allclose(embs, want, atol=1e-4, rtol=0)


def _student(embed_dim=256):
    """A training config of an audio ResNet34 (80 bins) with the given embedding size, prepared as bin.train does."""
    return parse_config({"model": "ResNet34", "train_data": "unused", "num_epochs": 1,
                         "model_args": {"feat_dim": 80, "embed_dim": embed_dim, "m_channels": 32},
                         "dataset_args": {"fbank_args": {"num_mel_bins": 80}},
                         "scheduler_args": {"initial_lr": 0.1, "final_lr": 0.01}})


def test_model_dir_as_model_init(model_dir, tmp_path):
    """model_init: a WeSpeaker model dir (its saved config checked against the student's network, avg_model.pt's
    encoder loaded, its head of other speakers set aside)."""
    path, encoder = model_dir
    cfg = _student()
    net = build_net(cfg, 7)
    load_model_init(net, str(path), cfg.modality, cfg.model)
    for key, value in encoder.state_dict().items():
        assert torch.equal(net.encoder.state_dict()[key], value), key
    assert net.projection.weight.shape[0] == 7
    other = _student(embed_dim=128)
    with pytest.raises(ConfigError, match=r"config\.yaml: config key 'model_args': .*embed_dim \(256 there, 128 here"):
        load_model_init(build_net(other, 7), str(path), other.modality, other.model)
    bare = tmp_path / "no_config"
    bare.mkdir()
    shutil.copy(path / "avg_model.pt", bare / "avg_model.pt")
    with pytest.raises(FileNotFoundError, match="config.yaml missing"):
        load_model_init(build_net(cfg, 7), str(bare), cfg.modality, cfg.model)
    assert os.path.isfile(path / "avg_model.pt")


def test_models_config_of_a_wespeaker_resnet_yaml_run_loads_back(tmp_path):
    """The models/config.yaml our trainer writes for WeSpeaker's v2 resnet.yaml (augmentation keys and all) loads
    back for its model, and has what WeSpeaker's export_onnx.py reads: a number for num_frms, feat_dim."""
    from wespeaker_avkd.config.train_config import load_config
    from wespeaker_avkd.config.wespeaker import write_wespeaker_config

    resnet = load_config(str(Path(__file__).resolve().parents[1] / "config" / "data" / "wespeaker_resnet.yaml"))
    run = {k: v for k, v in resnet.items() if k not in ("exp_dir", "gpus")}
    # as bin.train runs it: its data and the augmentation sets (WeSpeaker's --reverb_data/--noise_data) given
    path = write_wespeaker_config(parse_config(dict(run, train_data="data/train", reverb_data="rirs/wav.scp",
                                                    noise_data="musan/wav.scp")), tmp_path)
    written = yaml.safe_load(open(path))
    assert written["dataset_args"]["num_frms"] == 200 and written["dataset_args"]["aug_prob"] == 0.6
    assert written["model_args"]["feat_dim"] == 40
    back = load_model_config(path)
    assert back.modality == "audio" and back.model.args["embed_dim"] == 256
    assert back.dataset_args.fbank_args["num_mel_bins"] == 40
