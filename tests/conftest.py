"""Shared pytest setup: deterministic, two-thread torch so the suite behaves the same on every 2-core box, and the
tiny data/exp dirs the training and extraction tests share (fixture `tiny_dirs`)."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

try:
    import torch

    torch.set_num_threads(2)
except ImportError:  # the scorer tests run without torch
    pass


@pytest.fixture(scope="session")
def converter():
    """tools/convert_checkpoint.py as a module: the old-layout converter lives outside the package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "convert_checkpoint", Path(__file__).resolve().parents[1] / "tools" / "convert_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TinyDirs:
    """Writers of the tiny data and exp dirs that the training and extraction tests share (fixture `tiny_dirs`)."""

    @staticmethod
    def speakers(num_utts: int, num_spk: int) -> dict:
        """utt2spk of num_utts utterances dealt round-robin to num_spk speakers: spk<i % num_spk>-utt<i:03d>."""
        return {f"spk{i % num_spk}-utt{i:03d}": f"spk{i % num_spk}" for i in range(num_utts)}

    @staticmethod
    def feats_dir(path, utt2spk: dict, lengths: list, seed: int = 0, feat_dim: int = 6):
        """A Kaldi data dir at `path`: feats.scp/ark (utterance i: lengths[i] x feat_dim standard-normal float32,
        drawn in utt2spk order from default_rng(seed)) and utt2spk. Returns (dir, {utt: matrix})."""
        import kaldiio
        import numpy as np

        assert len(utt2spk) == len(lengths), "one length per utterance"
        rng = np.random.default_rng(seed)
        path.mkdir(parents=True, exist_ok=True)
        feats = {u: rng.normal(size=(n, feat_dim)).astype(np.float32) for u, n in zip(utt2spk, lengths)}
        kaldiio.save_ark(str(path / "feats.ark"), feats, scp=str(path / "feats.scp"))
        (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utt2spk.items()))
        return str(path), feats

    @staticmethod
    def untrained_exp(path, cfg: dict, speakers, seed: int = 0):
        """An exp dir in the trained layout without training: config.yaml (cfg), spk2id (sorted speakers) and
        models/avg_model.pt of the net torch.manual_seed(seed) initialises. Returns (dir, net in eval mode)."""
        import torch

        from wespeaker_avkd.checkpoint import flat_model_state, save_checkpoint
        from wespeaker_avkd.config.model_config import parse_model_config
        from wespeaker_avkd.config.train_config import save_config
        from wespeaker_avkd.data.kaldi_dir import make_spk2id, write_spk2id
        from wespeaker_avkd.systems.builders import build_net

        save_config(cfg, path / "config.yaml")
        spk2id = make_spk2id(sorted(set(speakers)))
        write_spk2id(path / "spk2id", spk2id)
        torch.manual_seed(seed)
        net = build_net(parse_model_config(cfg), len(spk2id))
        save_checkpoint(path / "models" / "avg_model.pt",
                        flat_model_state(net.encoder.state_dict(), net.projection.state_dict()))
        return str(path), net.eval()


@pytest.fixture()
def tiny_dirs() -> TinyDirs:
    """The shared tiny data-dir / exp-dir writers (see TinyDirs)."""
    return TinyDirs()
