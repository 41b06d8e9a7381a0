"""Tiny trained exp dirs (audio and visual) made by the trainer itself on a few synthetic files."""
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from wespeaker_avkd.config.train_config import apply_overrides, load_config
from wespeaker_avkd.data.kaldi_dir import write_table
from wespeaker_avkd.train.trainer import run_training

CONF = Path(__file__).resolve().parents[2] / "egs" / "voxceleb" / "v_kd" / "conf" / "tiny"
SPEAKERS, UTTS_PER_SPEAKER = 2, 4


def _write_data_dir(path: Path, table: str, write_utt: Callable[[Path, str, int, int], object]) -> str:
    """`table` + utt2spk for SPEAKERS x UTTS_PER_SPEAKER utterances keyed spk<s>-utt<u>; write_utt(path, key, s, u)
    writes one utterance's media under path and returns its table value."""
    path.mkdir(parents=True)
    values, utt2spk = {}, {}
    for s in range(SPEAKERS):
        for u in range(UTTS_PER_SPEAKER):
            key = f"spk{s}-utt{u}"
            values[key], utt2spk[key] = write_utt(path, key, s, u), f"spk{s}"
    write_table(path / table, values)
    write_table(path / "utt2spk", utt2spk)
    return str(path)


def _write_audio_dir(path: Path, rng: np.random.Generator) -> str:
    """wav.scp + utt2spk: 16 kHz noise with a speaker-specific tone, utterances of different lengths."""
    def wav(path: Path, key: str, s: int, u: int) -> str:
        n = 16000 * (5 + 2 * u + s) // 10  # 0.5 .. 1.2 s
        t = np.arange(n) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (200 + 150 * s) * t) + 0.05 * rng.standard_normal(n)
        sf.write(str(path / f"{key}.wav"), wave.astype(np.float32), 16000, subtype="PCM_16")
        return str(path / f"{key}.wav")

    return _write_data_dir(path, "wav.scp", wav)


def _write_visual_dir(path: Path, rng: np.random.Generator) -> str:
    """faces.scp (3 frames a segment, 40x48 images: the loader resizes them) + utt2spk."""
    def frames(path: Path, key: str, s: int, u: int) -> list[str]:
        files = [path / f"{key}-{k}.png" for k in range(3)]
        for file in files:
            Image.fromarray(rng.integers(0, 256, size=(48, 40, 3), dtype=np.uint8)).save(file)
        return [str(file) for file in files]

    return _write_data_dir(path, "faces.scp", frames)


def _train(modality: str, data_dir: str, exp_dir: str, extra: list) -> str:
    """One epoch of the shipped tiny config on data_dir: a trained-layout exp dir, written by the trainer."""
    cfg = load_config(str(CONF / f"{modality}.yaml"))
    overrides = [("train_data", data_dir), ("num_epochs", 1), ("num_avg", 1),
                 ("dataloader_args.batch_size", 4), ("dev_eval", None)] + extra
    cfg = apply_overrides(cfg, overrides)
    run_training(cfg, exp_dir, device="cpu", num_threads=1, progress=False)
    assert os.path.isfile(os.path.join(exp_dir, "models", "avg_model.pt"))
    return exp_dir


@pytest.fixture(scope="session")
def audio_exp(tmp_path_factory):
    """(exp_dir, data_dir) of a ResNet34 (m_channels 4, 40 fbank bins, 512-d) trained one epoch on wavs."""
    root = tmp_path_factory.mktemp("inference_audio")
    data = _write_audio_dir(root / "data", np.random.default_rng(1))
    exp = _train("audio", data, str(root / "exp"),
                 [("dataset_args.feat_source", "wav"), ("dataset_args.num_frms", [20, 30])])
    return exp, data


@pytest.fixture(scope="session")
def visual_exp(tmp_path_factory):
    """(exp_dir, data_dir) of a VisualResNet34 (32x32 faces, 512-d) trained one epoch."""
    root = tmp_path_factory.mktemp("inference_visual")
    data = _write_visual_dir(root / "data", np.random.default_rng(2))
    return _train("visual", data, str(root / "exp"), []), data
