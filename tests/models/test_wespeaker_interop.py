"""A student trained by our training code goes to WeSpeaker: its models/avg_model.pt loads with WeSpeaker's
load_checkpoint semantics (torch.load, then load_state_dict(strict=False) into the model WeSpeaker builds from
models/config.yaml) with zero missing and zero unexpected tensors, and WeSpeaker's ResNet34 computation on
those tensors gives our embeddings.

WeSpeaker is not installable here, so its side is written below from its structure, independently of
wespeaker_avkd/models: the state_dict layout of its ResNet (checked against the key list of a real WeSpeaker
ResNet34), a module holding exactly that key set, and a functional forward driven by the key names.
"""
import os
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi
import yaml

from wespeaker_avkd.bin import embed as embed_cli
from wespeaker_avkd.config.train_config import apply_overrides, load_config, load_yaml
from wespeaker_avkd.config.wespeaker import wespeaker_config, write_wespeaker_config
from wespeaker_avkd.data.kaldi_dir import make_spk2id, read_spk2id, read_table, write_spk2id, write_table
from wespeaker_avkd.inference.extract import extract_embeddings
from wespeaker_avkd.train.trainer import run_training

HERE = Path(__file__).resolve().parent
KEYS_FILE = HERE / "data" / "resnet34_state_dict_keys.txt"
TINY_AUDIO = HERE.parents[1] / "egs" / "voxceleb" / "v_kd" / "conf" / "tiny" / "audio.yaml"

# ------------------------------------------------------------------ WeSpeaker's side, from its structure
BN_EPS = 1e-5            # torch.nn.BatchNorm2d's default, which WeSpeaker's ResNet uses
TSTP_EPS = 1e-7          # WeSpeaker's TSTP: sqrt(var + 1e-7), var unbiased (torch.var's default)
STAGE_STRIDES = (1, 2, 2, 2)
BASIC_BLOCK_DEPTHS = {"ResNet18": (2, 2, 2, 2), "ResNet34": (3, 4, 6, 3)}


def _conv_rows(name, c_out, c_in, k):
    return [(f"{name}.weight", (c_out, c_in, k, k), "param")]


def _bn_rows(name, c):
    return [(f"{name}.weight", (c,), "param"), (f"{name}.bias", (c,), "param"),
            (f"{name}.running_mean", (c,), "buf"), (f"{name}.running_var", (c,), "buf"),
            (f"{name}.num_batches_tracked", (), "buf")]


def wespeaker_resnet_layout(depths, feat_dim, embed_dim, m_channels=32, pooling_func="TSTP",
                            two_emb_layer=False):
    """(name, shape, param|buf) rows of WeSpeaker's ResNet with BasicBlocks, in state_dict order."""
    assert pooling_func == "TSTP" and not two_emb_layer, "only what the reference forward computes"
    rows = _conv_rows("conv1", m_channels, 1, 3) + _bn_rows("bn1", m_channels)
    c_in = m_channels
    for stage, (depth, stride) in enumerate(zip(depths, STAGE_STRIDES), 1):
        c_out = m_channels * 2 ** (stage - 1)
        for b in range(depth):
            p = f"layer{stage}.{b}"
            rows += _conv_rows(f"{p}.conv1", c_out, c_in, 3) + _bn_rows(f"{p}.bn1", c_out)
            rows += _conv_rows(f"{p}.conv2", c_out, c_out, 3) + _bn_rows(f"{p}.bn2", c_out)
            if b == 0 and (stride != 1 or c_in != c_out):
                rows += _conv_rows(f"{p}.shortcut.0", c_out, c_in, 1) + _bn_rows(f"{p}.shortcut.1", c_out)
            c_in = c_out
    stats_dim = 2 * (feat_dim // 8) * c_in  # mean and std of every (channel, frequency bin) of layer4
    return rows + [("seg_1.weight", (embed_dim, stats_dim), "param"), ("seg_1.bias", (embed_dim,), "param")]


class KeySetModule(nn.Module):
    """A module whose state_dict has exactly the given (name, shape, kind) rows: WeSpeaker's key set."""

    def __init__(self, rows):
        super().__init__()
        self.add_rows(rows)

    def add_rows(self, rows):
        for name, shape, kind in rows:
            *path, leaf = name.split(".")
            node = self
            for part in path:
                if part not in node._modules:
                    node.add_module(part, nn.Module())
                node = node._modules[part]
            tensor = torch.zeros(shape, dtype=torch.long if leaf == "num_batches_tracked" else torch.float32)
            if kind == "param":
                node.register_parameter(leaf, nn.Parameter(tensor))
            else:
                node.register_buffer(leaf, tensor)


def get_speaker_model(name):
    """WeSpeaker's model factory by name; WeSpeaker's generic ResNet also takes m_channels (default 32)."""
    depths = BASIC_BLOCK_DEPTHS[name]
    return lambda **model_args: KeySetModule(wespeaker_resnet_layout(depths, **model_args))


def wespeaker_load_checkpoint(model, path):
    """WeSpeaker's load_checkpoint: load the file, unwrap 'state_dict', load_state_dict(strict=False);
    returns (missing, unexpected) keys, which WeSpeaker only logs."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(checkpoint, dict) and "state_dict" in checkpoint:
        checkpoint = checkpoint["state_dict"]
    result = model.load_state_dict(checkpoint, strict=False)
    return list(result.missing_keys), list(result.unexpected_keys)


def reference_forward(sd, feats):
    """WeSpeaker's ResNet + TSTP + seg_1 on (B, T, F) CMN'd fbank -> (B, embed_dim), read from the state_dict's
    names: conv1/bn1, layer1..4 BasicBlocks (first block of a stage strided, shortcut when present), pooling."""
    def bn(x, p):
        return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"],
                            sd[f"{p}.bias"], training=False, eps=BN_EPS)

    def conv(x, p, stride, padding):
        return F.conv2d(x, sd[f"{p}.weight"], stride=stride, padding=padding)

    x = feats.permute(0, 2, 1).unsqueeze(1)  # (B, 1, F, T): frequency x time image
    x = F.relu(bn(conv(x, "conv1", 1, 1), "bn1"))
    for stage, first_stride in enumerate(STAGE_STRIDES, 1):
        blocks = sorted({int(k.split(".")[1]) for k in sd if k.startswith(f"layer{stage}.")})
        for b in blocks:
            p, stride = f"layer{stage}.{b}", first_stride if b == 0 else 1
            y = F.relu(bn(conv(x, f"{p}.conv1", stride, 1), f"{p}.bn1"))
            y = bn(conv(y, f"{p}.conv2", 1, 1), f"{p}.bn2")
            shortcut = (bn(conv(x, f"{p}.shortcut.0", stride, 0), f"{p}.shortcut.1")
                        if f"{p}.shortcut.0.weight" in sd else x)
            x = F.relu(y + shortcut)
    mean = x.mean(dim=-1).flatten(1)
    std = torch.sqrt(x.var(dim=-1) + TSTP_EPS).flatten(1)
    return F.linear(torch.cat([mean, std], dim=1), sd["seg_1.weight"], sd["seg_1.bias"])


def wespeaker_fbank(path, fbank_args):
    """WeSpeaker's extraction features of one wav: Kaldi fbank on the 16-bit scale (dither forced to 0), CMN."""
    wave, rate = sf.read(path, dtype="float32")
    fb = kaldi.fbank(torch.from_numpy(wave)[None] * (1 << 15), num_mel_bins=fbank_args["num_mel_bins"],
                     frame_length=fbank_args["frame_length"], frame_shift=fbank_args["frame_shift"], dither=0.0,
                     sample_frequency=rate, window_type="hamming", use_energy=False)
    return (fb - fb.mean(dim=0))[None]


def test_layout_reproduces_wespeakers_resnet34_key_list():
    """The layout written above is WeSpeaker's: names, shapes and kinds of a real ResNet34 (80 bins, 256-d)."""
    want = []
    for line in KEYS_FILE.read_text().splitlines():
        name, rest = line.split(" ", 1)
        shape, kind = rest.rsplit(" ", 1)
        want.append((name, tuple(int(d) for d in shape.strip("()").split(",") if d.strip()), kind))
    assert wespeaker_resnet_layout(BASIC_BLOCK_DEPTHS["ResNet34"], feat_dim=80, embed_dim=256) == want
    model = get_speaker_model("ResNet34")(feat_dim=80, embed_dim=256, pooling_func="TSTP", two_emb_layer=False)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == [(n, s) for n, s, _ in want]


# ------------------------------------------------------------------ students trained by our code
SPEAKERS, UTTS = 3, 3


def _audio_dir(path):
    """wav.scp + utt2spk of 0.4-0.9 s 16 kHz PCM16 files: a speaker-specific chirp in noise."""
    rng = np.random.default_rng(7)
    path.mkdir(parents=True)
    wav, utt2spk = {}, {}
    for s in range(SPEAKERS):
        for u in range(UTTS):
            key = f"sp{s}_{u}"
            t = np.arange(1600 * (4 + 2 * u + s)) / 16000
            wave = 0.2 * np.sin(2 * np.pi * (180 + 120 * s) * t * (1 + t)) + 0.03 * rng.standard_normal(t.size)
            sf.write(str(path / f"{key}.wav"), wave.astype(np.float32), 16000, subtype="PCM_16")
            wav[key], utt2spk[key] = str(path / f"{key}.wav"), f"sp{s}"
    write_table(path / "wav.scp", wav)
    write_table(path / "utt2spk", utt2spk)
    return str(path)


def _teacher_export(path, data, dim):
    """A kd_export dir: a fixed embedding per training utterance, the teacher's AAM weight, spk2id."""
    rng = np.random.default_rng(3)
    path.mkdir(parents=True)
    utts = sorted(read_table(os.path.join(data, "utt2spk")))
    with kaldiio.WriteHelper(f"ark,scp:{path / 'xvector.ark'},{path / 'xvector.scp'}") as writer:
        for utt in utts:
            writer(utt, rng.normal(size=dim).astype(np.float32))
    np.save(path / "projection_weight.npy", rng.normal(size=(SPEAKERS, dim)).astype(np.float32))
    write_spk2id(path / "spk2id", make_spk2id(f"sp{s}" for s in range(SPEAKERS)))
    return str(path)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return _audio_dir(tmp_path_factory.mktemp("interop") / "data")


def _train(data, exp, extra=()):
    """One epoch of the tiny audio ResNet34 (m_channels 4, 40 bins, 512-d) on wavs (fbank on the fly, as
    conf/paper trains), with models/config.yaml beside avg_model.pt: the trainer's, checked against the merged
    config it recorded (exp/config.yaml), or written here from that config."""
    cfg = apply_overrides(load_config(str(TINY_AUDIO)), [
        ("train_data", data), ("num_epochs", 1), ("num_avg", 1), ("dataloader_args.batch_size", 3), ("dev_eval", None),
        ("dataset_args.feat_source", "wav"), ("dataset_args.num_frms", [20, 30]), *extra])
    run_training(cfg, exp, device="cpu", num_threads=1, progress=False)
    models, merged = os.path.join(exp, "models"), load_yaml(os.path.join(exp, "config.yaml"))
    if os.path.isfile(os.path.join(models, "config.yaml")):  # written by the trainer: it must be this config's
        assert load_yaml(os.path.join(models, "config.yaml")) == wespeaker_config(merged)
    write_wespeaker_config(merged, models)
    return exp


@pytest.fixture(scope="module", params=["baseline", "kd_student"])
def student(request, data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    extra = []
    if request.param == "kd_student":  # KD terms and a learned adapter (its weights stay in train_state_N.pt)
        teacher = _teacher_export(root / "kd_export", data_dir, dim=16)
        extra = [("+kd", {"teacher_dir": teacher, "alpha": 1.0, "beta": 1.0, "temperature": 0.03125,
                          "adapter": True})]
    return _train(data_dir, str(root / "exp"), extra)


def test_student_loads_into_wespeakers_model_with_every_tensor_matched(student):
    models = os.path.join(student, "models")
    with open(os.path.join(models, "config.yaml"), encoding="utf-8") as f:
        config = yaml.safe_load(f)
    num_class = len(read_spk2id(os.path.join(student, "spk2id")))
    # WeSpeaker's training-side model: the network from config.yaml, plus its AAM head as `projection`
    model = get_speaker_model(config["model"])(**config["model_args"])
    model.add_module("projection", KeySetModule([("weight", (num_class, config["model_args"]["embed_dim"]),
                                                  "param")]))
    missing, unexpected = wespeaker_load_checkpoint(model, os.path.join(models, "avg_model.pt"))
    assert missing == [] and unexpected == []
    saved = torch.load(os.path.join(models, "avg_model.pt"), weights_only=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    # the extraction-side model (no head): the head is the one unexpected tensor, which WeSpeaker does not log
    extractor = get_speaker_model(config["model"])(**config["model_args"])
    missing, unexpected = wespeaker_load_checkpoint(extractor, os.path.join(models, "avg_model.pt"))
    assert missing == [] and unexpected == ["projection.weight"]


def test_wespeaker_forward_gives_our_embeddings(student, data_dir, tmp_path, capsys):
    """WeSpeaker's computation on the loaded tensors = our recipe extraction = bin.embed with the WeSpeaker
    checkpoint + config.yaml (read back through our own config loader), to 1e-5 in float32."""
    models = os.path.join(student, "models")
    with open(os.path.join(models, "config.yaml"), encoding="utf-8") as f:
        config = yaml.safe_load(f)
    extractor = get_speaker_model(config["model"])(**config["model_args"]).eval()
    wespeaker_load_checkpoint(extractor, os.path.join(models, "avg_model.pt"))
    wav = read_table(os.path.join(data_dir, "wav.scp"))
    with torch.no_grad():
        reference = {k: reference_forward(extractor.state_dict(), wespeaker_fbank(path, config["dataset_args"]
                                                                                  ["fbank_args"]))[0].numpy()
                     for k, path in wav.items()}
    ours = {k: np.asarray(v) for k, v in kaldiio.load_scp(
        extract_embeddings(student, data_dir, str(tmp_path / "emb"), progress=False)).items()}
    assert sorted(ours) == sorted(reference)
    assert embed_cli.main(["--wespeaker_checkpoint", os.path.join(models, "avg_model.pt"),
                           "--config", os.path.join(models, "config.yaml"), "--wav_scp",
                           os.path.join(data_dir, "wav.scp")]) == 0
    printed = {}
    for line in capsys.readouterr().out.splitlines():
        key, *values = line.split()
        printed[key] = np.array(values, dtype=np.float32)
    assert sorted(printed) == sorted(reference)
    for key, ref in reference.items():
        assert ref.shape == (512,) and np.abs(ref).max() > 1e-3  # a real embedding, not zeros
        np.testing.assert_allclose(ours[key], ref, atol=1e-5, rtol=0, err_msg=key)
        np.testing.assert_allclose(printed[key], ref, atol=1e-5, rtol=0, err_msg=key)
