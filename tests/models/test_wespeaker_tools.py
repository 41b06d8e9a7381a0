"""WeSpeaker's own tools on a student's models/ dir, unchanged: average_model.py, extract.py's loading
(get_speaker_model + load_checkpoint + forward), export_jit.py, export_onnx.py (with --mean_vec), and
infer_onnx.py on our own ONNX export. They give our embeddings.

Needs a WeSpeaker source tree: WESPEAKER_SRC=<checkout> (the directory holding wespeaker/); skipped otherwise.
WeSpeaker's package imports, at module level, packages its ResNet path never calls (silero_vad, whisper,
transformers, peft, s3prl, umap, hdbscan: its command line, diarization and SSL frontends); where one is not
installed, the runner below gives it a placeholder module whose every attribute refuses to be called, so a
tool that did use one would fail. torchaudio.load needs torchcodec from torchaudio 2.9 on; without it the
runner reads wavs with soundfile (what infer_onnx.py's torchaudio.load returns: float32 in [-1, 1]).

The student is the audio ResNet34 WeSpeaker's factory builds (m_channels 32), with 80 fbank bins and 32-d
embeddings, trained 2 epochs by our trainer on a few generated wavs.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi

from wespeaker_avkd.bin import embed as embed_cli
from wespeaker_avkd.bin import export as export_cli
from wespeaker_avkd.checkpoint import list_train_states, load_model_state
from wespeaker_avkd.config.train_config import apply_overrides, load_config
from wespeaker_avkd.data.kaldi_dir import write_table
from wespeaker_avkd.inference.extract import extract_embeddings
from wespeaker_avkd.train.trainer import run_training

TINY_AUDIO = Path(__file__).resolve().parents[2] / "egs" / "voxceleb" / "v_kd" / "conf" / "tiny" / "audio.yaml"
WESPEAKER_SRC = os.environ.get("WESPEAKER_SRC", "")
NEEDS_WESPEAKER = pytest.mark.skipif(
    not os.path.isfile(os.path.join(WESPEAKER_SRC, "wespeaker", "bin", "average_model.py")),
    reason="WeSpeaker's source is not present: set WESPEAKER_SRC to a checkout of github.com/wenet-e2e/wespeaker")
SPEAKERS, UTTS, EMBED_DIM = 3, 3, 32
pytestmark = NEEDS_WESPEAKER  # the student takes a while to train: not trained when nothing would use it

# Runs a WeSpeaker script (argv: source dir, script, its arguments) with placeholders for absent optional packages.
RUNNER = '''
import importlib.abc, importlib.machinery, importlib.util, runpy, sys, types

OPTIONAL = ("silero_vad", "whisper", "transformers", "peft", "s3prl", "umap", "hdbscan")
ABSENT = {name for name in OPTIONAL if importlib.util.find_spec(name) is None}


class Placeholder(types.ModuleType):
    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        def refuse(*args, **kwargs):
            raise ImportError(self.__name__ + "." + attr + ": not installed (placeholder)")
        return refuse


class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = Placeholder(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, Finder())
if importlib.util.find_spec("torchcodec") is None:
    import soundfile
    import torch
    import torchaudio

    def load(path, *args, **kwargs):
        wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
        return torch.from_numpy(wave.T.copy()), rate

    torchaudio.load = load
sys.path.insert(0, sys.argv[1])
script = sys.argv[2]
sys.argv = [script] + sys.argv[3:]
runpy.run_path(script, run_name="__main__")
'''

# extract.py's loading and forward (its data pipeline and CUDA device aside): argv config, model, feats.npz, out.npz
EXTRACT_STYLE = '''
import sys
import numpy as np
import torch
import yaml
from wespeaker.models.speaker_model import get_speaker_model
from wespeaker.utils.checkpoint import load_checkpoint

config, model_path, feats, out = sys.argv[1:]
with open(config) as f:
    configs = yaml.load(f, Loader=yaml.FullLoader)
model = get_speaker_model(configs["model"])(**configs["model_args"])
load_checkpoint(model, model_path)
model.eval()
embeds = {}
with torch.no_grad():
    for key, feat in np.load(feats).items():
        outputs = model(torch.from_numpy(feat)[None])
        embeds[key] = (outputs[-1] if isinstance(outputs, tuple) else outputs)[0].numpy()
np.savez(out, **embeds)
'''


def _audio_dir(path):
    """wav.scp + utt2spk of 0.5-1.1 s 16 kHz PCM16 files: a speaker-specific chirp in noise."""
    rng = np.random.default_rng(11)
    path.mkdir(parents=True)
    wav, utt2spk = {}, {}
    for s in range(SPEAKERS):
        for u in range(UTTS):
            key = f"sp{s}_{u}"
            t = np.arange(1600 * (5 + 2 * u + s)) / 16000
            wave = 0.2 * np.sin(2 * np.pi * (170 + 130 * s) * t * (1 + t)) + 0.03 * rng.standard_normal(t.size)
            sf.write(str(path / f"{key}.wav"), wave.astype(np.float32), 16000, subtype="PCM_16")
            wav[key], utt2spk[key] = str(path / f"{key}.wav"), f"sp{s}"
    write_table(path / "wav.scp", wav)
    write_table(path / "utt2spk", utt2spk)
    return str(path), wav


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """(exp dir, {key: wav}, {key: our embedding}, mean vector path) of an 80-bin ResNet34 (m_channels 32)
    trained 2 epochs with num_avg 2 (so averaging has two files to average)."""
    root = tmp_path_factory.mktemp("wespeaker_tools")
    data, wavs = _audio_dir(root / "data")
    cfg = apply_overrides(load_config(str(TINY_AUDIO)), [
        ("train_data", data), ("num_epochs", 2), ("num_avg", 2), ("dataloader_args.batch_size", 3),
        ("dataset_args.feat_source", "wav"), ("dataset_args.num_frms", [20, 30]),
        ("dataset_args.fbank_args.num_mel_bins", 80),
        ("model_args", {"feat_dim": 80, "embed_dim": EMBED_DIM, "m_channels": 32, "pooling_func": "TSTP",
                        "two_emb_layer": False})])
    exp = str(root / "exp")
    run_training(cfg, exp, device="cpu", num_threads=1, progress=False)
    scp = extract_embeddings(exp, data, str(root / "emb"), mean_vec=True, progress=False)
    import kaldiio

    ours = {k: np.asarray(v) for k, v in kaldiio.load_scp(scp).items()}
    return exp, wavs, ours, str(root / "emb" / "mean_vec.npy")


def _fbank80(path):
    """WeSpeaker's extraction features of one wav (infer_onnx.py's compute_fbank): 80-bin Kaldi fbank, CMN."""
    wave, rate = sf.read(path, dtype="float32")
    fb = kaldi.fbank(torch.from_numpy(wave)[None] * (1 << 15), num_mel_bins=80, frame_length=25, frame_shift=10,
                     dither=0.0, sample_frequency=rate, window_type="hamming", use_energy=False)
    return (fb - fb.mean(dim=0)).numpy()


def _run_wespeaker(tmp_path, script, *args):
    """Run `script` (a path under WESPEAKER_SRC or a file) through the runner; returns its stdout."""
    runner = tmp_path / "run_wespeaker.py"
    runner.write_text(RUNNER)
    proc = subprocess.run([sys.executable, str(runner), WESPEAKER_SRC, str(script), *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _tool(name):
    return os.path.join(WESPEAKER_SRC, "wespeaker", "bin", name)


def test_models_dir_is_a_wespeaker_model_dir(student):
    exp = student[0]
    models = os.path.join(exp, "models")
    assert sorted(os.listdir(models)) == ["avg_model.pt", "avg_model.pt.stamp.json", "config.yaml", "model_1.pt",
                                          "model_2.pt"]
    assert sorted(list_train_states(models)) == [2]  # the training state is outside models/


def test_wespeakers_average_model_runs_on_our_models_dir(student, tmp_path):
    exp = student[0]
    dst = tmp_path / "avg_wespeaker.pt"
    _run_wespeaker(tmp_path, _tool("average_model.py"), "--dst_model", dst, "--src_path",
                   os.path.join(exp, "models"), "--num", 2)
    theirs = torch.load(dst, weights_only=True)
    ours = load_model_state(os.path.join(exp, "models", "avg_model.pt"))
    assert set(theirs) == set(ours)
    for key, value in ours.items():
        if torch.is_floating_point(value):  # WeSpeaker also divides the integer BatchNorm counters
            torch.testing.assert_close(theirs[key], value, atol=1e-6, rtol=1e-6, msg=key)


def test_wespeakers_loading_gives_our_embeddings(student, tmp_path):
    exp, wavs, ours, _ = student
    models = os.path.join(exp, "models")
    np.savez(tmp_path / "feats.npz", **{k: _fbank80(p) for k, p in wavs.items()})
    script = tmp_path / "extract_style.py"
    script.write_text(EXTRACT_STYLE)
    _run_wespeaker(tmp_path, script, os.path.join(models, "config.yaml"), os.path.join(models, "avg_model.pt"),
                   tmp_path / "feats.npz", tmp_path / "out.npz")
    theirs = dict(np.load(tmp_path / "out.npz"))
    assert sorted(theirs) == sorted(ours)
    for key, emb in ours.items():
        assert emb.shape == (EMBED_DIM,) and np.abs(emb).max() > 1e-3
        np.testing.assert_allclose(theirs[key], emb, atol=1e-4, rtol=0, err_msg=key)


def test_wespeakers_export_jit_gives_our_embeddings(student, tmp_path):
    exp, wavs, ours, _ = student
    models = os.path.join(exp, "models")
    out = tmp_path / "final.zip"
    _run_wespeaker(tmp_path, _tool("export_jit.py"), "--config", os.path.join(models, "config.yaml"),
                   "--checkpoint", os.path.join(models, "avg_model.pt"), "--output_file", out)
    scripted = torch.jit.load(str(out)).eval()
    for key, path in wavs.items():
        with torch.no_grad():
            got = scripted(torch.from_numpy(_fbank80(path))[None])[-1][0].numpy()
        np.testing.assert_allclose(got, ours[key], atol=1e-4, rtol=0, err_msg=key)


def test_wespeakers_export_onnx_with_mean_vec_gives_our_embeddings(student, tmp_path):
    import onnxruntime as ort

    exp, wavs, ours, mean_vec = student
    models = os.path.join(exp, "models")
    out = tmp_path / "avg_model.onnx"
    _run_wespeaker(tmp_path, _tool("export_onnx.py"), "--config", os.path.join(models, "config.yaml"),
                   "--checkpoint", os.path.join(models, "avg_model.pt"), "--output_model", out,
                   "--mean_vec", mean_vec)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    mean = np.load(mean_vec)
    for key, path in wavs.items():
        embs = session.run(["embs"], {"feats": _fbank80(path)[None]})[0]
        np.testing.assert_allclose(embs[0], ours[key] - mean, atol=1e-4, rtol=0, err_msg=key)


def test_wespeakers_infer_onnx_runs_our_onnx_export(student, tmp_path):
    exp, wavs, _, _ = student
    out = str(tmp_path / "student.onnx")
    assert export_cli.main(["--exp_dir", exp, "--format", "onnx", "--out", out]) == 0
    assert json.load(open(out + ".json"))["output_name"] == "embs"
    printed = _run_wespeaker(tmp_path, _tool("infer_onnx.py"), "--onnx_path", out, "--wav_path",
                             next(iter(wavs.values())))
    assert f"(1, {EMBED_DIM})" in printed


def test_our_embed_agrees_with_the_extraction(student, capsys):
    """bin.embed --exp_dir on the wavs = the recipe's extraction (the reference the WeSpeaker tests compare to)."""
    exp, wavs, ours, _ = student
    assert embed_cli.main(["--exp_dir", exp, "--inputs", *wavs.values()]) == 0
    by_path = {path: key for key, path in wavs.items()}
    for line in capsys.readouterr().out.splitlines():
        path, *values = line.split()
        np.testing.assert_allclose(np.array(values, dtype=np.float32), ours[by_path[path]], atol=1e-6, rtol=0)
