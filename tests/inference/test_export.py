"""bin.export: the exported encoder (TorchScript always, ONNX when its optional packages are installed) gives
the PyTorch model's embeddings on inputs of several lengths; errors are one clear line."""
import importlib.util
import json
import os

import numpy as np
import pytest
import torch

from wespeaker_avkd.bin import export as export_cli
from wespeaker_avkd.inference.export import (
    MissingOptionalDependency,
    load_exported,
    require_packages,
)
from wespeaker_avkd.inference.extract import load_trained
from wespeaker_avkd.kinds.audio import EXPORT_MIN_FRAMES

ONNX_READY = all(importlib.util.find_spec(p) for p in ("onnx", "onnxscript", "onnxruntime"))
NEEDS_ONNX = pytest.mark.skipif(not ONNX_READY,
                                reason="optional ONNX packages (onnx, onnxscript, onnxruntime) not installed")
FORMATS = ["torchscript", pytest.param("onnx", marks=NEEDS_ONNX)]


def _reference(exp):
    """The PyTorch encoder of the exp dir, loaded by the recipe's loader."""
    _, net, _ = load_trained(exp)
    return net.encoder


def _check_same(exp, out, inputs):
    run = load_exported(out)
    encoder = _reference(exp)
    for x in inputs:
        with torch.no_grad():
            want = encoder(x).numpy()
        got = run(x.numpy())
        assert got.shape == want.shape == (x.shape[0], 512)
        assert np.abs(got - want).max() < 1e-4, (tuple(x.shape), np.abs(got - want).max())
        assert np.abs(want).max() > 1e-3  # a real embedding, not zeros


@pytest.mark.parametrize("fmt", FORMATS)
def test_audio_export_matches_pytorch_on_two_lengths(audio_exp, tmp_path, fmt):
    exp, _ = audio_exp
    out = str(tmp_path / ("audio.onnx" if fmt == "onnx" else "audio.pt"))
    assert export_cli.main(["--exp_dir", exp, "--format", fmt, "--out", out]) == 0
    gen = torch.Generator().manual_seed(3)
    # lengths other than the traced example's (200), batch sizes other than its 2, and the shortest allowed
    inputs = [torch.randn(3, 57, 40, generator=gen), torch.randn(1, 431, 40, generator=gen),
              torch.randn(2, EXPORT_MIN_FRAMES, 40, generator=gen)]
    _check_same(exp, out, inputs)
    meta = json.load(open(out + ".json"))
    assert meta["modality"] == "audio" and meta["input_shape"] == ["batch", "frames", 40]
    assert meta["fbank_args"]["num_mel_bins"] == 40 and meta["cmn"] is True and meta["format"] == fmt


@pytest.mark.parametrize("fmt", ["torchscript", pytest.param("onnx", marks=[pytest.mark.slow, NEEDS_ONNX])])
def test_visual_export_matches_pytorch(visual_exp, tmp_path, fmt):
    exp, _ = visual_exp
    out = str(tmp_path / ("visual.onnx" if fmt == "onnx" else "visual.pt"))
    assert export_cli.main(["--exp_dir", exp, "--format", fmt, "--out", out]) == 0
    gen = torch.Generator().manual_seed(4)
    _check_same(exp, out, [torch.randn(1, 3, 32, 32, generator=gen), torch.randn(5, 3, 32, 32, generator=gen)])
    meta = json.load(open(out + ".json"))
    assert meta["input_shape"] == ["batch", 3, 32, 32] and meta["mean"] == [0.5, 0.5, 0.5]


def test_export_refuses_bad_exp_dir_and_format(tmp_path, capsys):
    assert export_cli.main(["--exp_dir", str(tmp_path), "--format", "torchscript",
                            "--out", str(tmp_path / "x.pt")]) == 2
    assert "config" in capsys.readouterr().err
    assert export_cli.main(["--exp_dir", str(tmp_path), "--format", "tflite", "--out", "x"]) == 2
    assert "export: argument --format: invalid choice: 'tflite'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x.pt")


def test_missing_optional_package_names_it_and_the_extra():
    with pytest.raises(MissingOptionalDependency, match=r"no_such_pkg_xyz.*wespeaker_avkd\[onnx\]"):
        require_packages(["no_such_pkg_xyz"], "ONNX export")


def test_tuple_output_model_exports_its_last_embedding(tmp_path):
    """WeSpeaker's models return (embed_a, embed_b) and its executor uses the last: so does the exported file."""
    from wespeaker_avkd.inference.export import export_module

    class TwoEmbeddings(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(40, 6), torch.nn.Linear(6, 5)

        def forward(self, x):
            embed_a = self.a(x.mean(1))
            return embed_a, self.b(torch.relu(embed_a))

    torch.manual_seed(0)
    model = TwoEmbeddings().eval()
    spec = {"modality": "audio", "input_shape": ["batch", "frames", 40]}
    out = export_module(model, spec, "torchscript", str(tmp_path / "two.pt"))
    x = torch.randn(3, 33, 40)
    with torch.no_grad():
        want = model(x)[1].numpy()
    np.testing.assert_allclose(load_exported(out)(x.numpy()), want, atol=1e-6, rtol=0)
