"""Our ONNX export used as WeSpeaker's infer_onnx.py uses an ONNX model: an onnxruntime session fed {'feats': (1, T,
80) CMN'd 80-bin fbank} returns 'embs', our embedding of the wav (bin.embed); with --mean_vec, minus the mean."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi

from wespeaker_avkd.bin import embed as embed_cli
from wespeaker_avkd.bin import export as export_cli
from wespeaker_avkd.inference.export import ExportInputError, load_mean_vec

TINY_AUDIO = Path(__file__).resolve().parents[2] / "egs" / "voxceleb" / "v_kd" / "conf" / "tiny" / "audio.yaml"
ONNX_READY = all(importlib.util.find_spec(p) for p in ("onnx", "onnxscript", "onnxruntime"))
NEEDS_ONNX = pytest.mark.skipif(not ONNX_READY,
                                reason="optional ONNX packages (onnx, onnxscript, onnxruntime) not installed")


@pytest.fixture(scope="module")
def student80(tmp_path_factory, audio_exp):
    """An 80-bin audio student: the tiny ResNet34 (m_channels 4) trained one epoch on audio_exp's wavs."""
    from wespeaker_avkd.config.train_config import apply_overrides, load_config
    from wespeaker_avkd.train.trainer import run_training

    _, data = audio_exp
    exp = str(tmp_path_factory.mktemp("student80") / "exp")
    cfg = apply_overrides(load_config(str(TINY_AUDIO)), [
        ("train_data", data), ("num_epochs", 1), ("num_avg", 1), ("dataloader_args.batch_size", 4), ("dev_eval", None),
        ("dataset_args.feat_source", "wav"), ("dataset_args.num_frms", [20, 30]),
        ("dataset_args.fbank_args.num_mel_bins", 80), ("model_args.feat_dim", 80)])
    run_training(cfg, exp, device="cpu", num_threads=1, progress=False)
    return exp, data


def _compute_fbank(wav_path):
    """infer_onnx.py's compute_fbank, its defaults: 80 bins, 25/10 ms, no dither, hamming, no energy, CMN."""
    wave, rate = sf.read(wav_path, dtype="float32")
    mat = kaldi.fbank(torch.from_numpy(wave)[None] * (1 << 15), num_mel_bins=80, frame_length=25, frame_shift=10,
                      dither=0.0, sample_frequency=rate, window_type="hamming", use_energy=False)
    return mat - torch.mean(mat, dim=0)


@NEEDS_ONNX
def test_infer_onnx_style_session_gives_our_embedding(student80, tmp_path, capsys):
    import onnxruntime as ort

    exp, data = student80
    wavs = sorted(line.split()[1] for line in open(f"{data}/wav.scp"))[:3]
    assert embed_cli.main(["--exp_dir", exp, "--inputs", *wavs]) == 0
    ours = {}
    for line in capsys.readouterr().out.splitlines():
        key, *values = line.split()
        ours[key] = np.array(values, dtype=np.float32)
    mean = np.linspace(-0.5, 0.5, 512, dtype=np.float32)
    np.save(tmp_path / "mean_vec.npy", mean)
    out = str(tmp_path / "student.onnx")  # one export (they take long): the mean folded in
    assert export_cli.main(["--exp_dir", exp, "--format", "onnx", "--out", out,
                            "--mean_vec", str(tmp_path / "mean_vec.npy")]) == 0
    meta = json.load(open(out + ".json"))
    assert meta["input_name"] == "feats" and meta["output_name"] == "embs" and meta["mean_subtracted"] is True
    options = ort.SessionOptions()
    options.inter_op_num_threads = options.intra_op_num_threads = 1  # as infer_onnx.py sets them
    session = ort.InferenceSession(out, sess_options=options, providers=["CPUExecutionProvider"])
    for wav in wavs:
        feats = _compute_fbank(wav).unsqueeze(0).numpy()  # (1, T, 80)
        assert feats.shape[0] == 1 and feats.shape[2] == 80
        embs = session.run(output_names=["embs"], input_feed={"feats": feats})[0]
        assert embs.shape == (1, 512) and np.abs(ours[wav]).max() > 1e-3
        np.testing.assert_allclose(embs[0], ours[wav] - mean, atol=1e-4, rtol=0)


def test_torchscript_folds_the_mean_too(student80, tmp_path):
    from wespeaker_avkd.inference.export import load_exported

    exp, _ = student80
    mean = np.arange(512, dtype=np.float32) / 512
    np.save(tmp_path / "mean_vec.npy", mean)
    plain, folded = str(tmp_path / "plain.pt"), str(tmp_path / "folded.pt")
    assert export_cli.main(["--exp_dir", exp, "--format", "torchscript", "--out", plain]) == 0
    assert export_cli.main(["--exp_dir", exp, "--format", "torchscript", "--out", folded,
                            "--mean_vec", str(tmp_path / "mean_vec.npy")]) == 0
    x = torch.randn(2, 50, 80, generator=torch.Generator().manual_seed(2)).numpy()
    np.testing.assert_allclose(load_exported(folded)(x), load_exported(plain)(x) - mean, atol=1e-5, rtol=0)


def test_bad_mean_vectors_are_refused_naming_the_file(student80, tmp_path, capsys):
    exp, _ = student80
    cases = {"short.npy": np.zeros(7, dtype=np.float32), "matrix.npy": np.zeros((2, 512), dtype=np.float32),
             "nan.npy": np.full(512, np.nan, dtype=np.float32)}
    for name, arr in cases.items():
        np.save(tmp_path / name, arr)
    (tmp_path / "text.npy").write_text("not an array")
    for name, message in (("matrix.npy", "1-D array"), ("nan.npy", "finite"), ("text.npy", "readable .npy")):
        with pytest.raises(ExportInputError, match=message) as err:
            load_mean_vec(str(tmp_path / name))
        assert name in str(err.value)
    out = tmp_path / "x.pt"
    assert export_cli.main(["--exp_dir", exp, "--format", "torchscript", "--out", str(out),
                            "--mean_vec", str(tmp_path / "short.npy")]) == 2
    assert "mean vector of shape (7,) for a model of 512-d embeddings" in capsys.readouterr().err
    assert not out.exists()


def test_export_options_are_one_model_source(tmp_path, capsys):
    for argv in (["--format", "onnx", "--out", "x"], ["--exp_dir", "e", "--config", "c", "--checkpoint", "k",
                                                      "--format", "onnx", "--out", "x"],
                 ["--config", "c", "--format", "onnx", "--out", "x"]):
        assert export_cli.main(argv) == 2  # a usage error: one line, exit 2 (utils.errors.ArgumentParser)
        assert "give --exp_dir [--checkpoint FILE], or --config CONF with --checkpoint FILE" in capsys.readouterr().err


@NEEDS_ONNX
def test_our_loader_runs_onnx_files_of_either_output_name(tmp_path):
    """ONNX files of earlier versions name the output 'embedding': load_exported takes the names from the file."""
    import onnx
    from onnx import TensorProto, helper

    from wespeaker_avkd.inference.export import load_exported

    for output in ("embedding", "embs"):
        graph = helper.make_graph(
            [helper.make_node("ReduceMean", ["feats", "axes"], [output], keepdims=0)], "mean_over_time",
            [helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["B", "T", 3])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["B", 3])],
            [helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
        path = tmp_path / f"{output}.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
        x = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
        np.testing.assert_allclose(load_exported(str(path))(x), x.mean(axis=1), rtol=1e-6)
