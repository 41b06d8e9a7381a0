"""The GATE teacher's gate on given embeddings (inference/gate.py), against the fusion module run directly."""
from pathlib import Path

import numpy as np
import pytest
import torch

from wespeaker_avkd.config.train_config import load_yaml
from wespeaker_avkd.inference.gate import gate_values, mean_gate
from wespeaker_avkd.utils.errors import InputValueError

TEACHER_YAML = Path(__file__).resolve().parents[2] / "egs" / "voxceleb" / "v_kd" / "conf" / "toy" / "teacher.yaml"
DIM = 8


@pytest.fixture
def teacher(tmp_path, tiny_dirs):
    cfg = load_yaml(str(TEACHER_YAML))
    cfg["model_args"] = {"audio_dim": DIM, "visual_dim": DIM, "embed_dim": DIM}
    exp, net = tiny_dirs.untrained_exp(tmp_path / "teacher", cfg, ["a", "b", "c"])
    return exp, net.encoder


def test_gate_values_are_the_fusion_modules(teacher):
    exp, fusion = teacher
    rng = np.random.default_rng(0)
    audio, visual = (rng.normal(size=(5, DIM)).astype(np.float32) for _ in range(2))
    z = gate_values(exp, audio, visual, batch=2)  # batches of 2, 2, 1
    with torch.no_grad():
        expected = fusion.gate_values(torch.from_numpy(audio), torch.from_numpy(visual)).numpy()
    assert z.shape == (5, DIM) and ((z > 0) & (z < 1)).all()
    np.testing.assert_allclose(z, expected, rtol=1e-6)
    record = mean_gate(exp, audio, visual, batch=2)
    assert record["num_utts"] == 5
    assert record["visual"] == pytest.approx(float(expected.astype(np.float64).mean()), abs=1e-7)
    assert record["audio"] == pytest.approx(1.0 - record["visual"])


def test_misaligned_inputs_are_refused(teacher):
    exp, _ = teacher
    with pytest.raises(InputValueError, match="same utterances"):
        gate_values(exp, np.zeros((3, DIM), np.float32), np.zeros((2, DIM), np.float32))
