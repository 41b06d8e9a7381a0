"""A WeSpeaker-convention model (forward returns a tuple, the last element is the embedding) trains and extracts,
through the real loaders on a tiny feature data dir."""
import os

import numpy as np
import torch
import torch.nn as nn

from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.inference.extract import extract_embeddings
from wespeaker_avkd.registry import MODELS
from wespeaker_avkd.scoring import load_embeddings
from wespeaker_avkd.train.trainer import run_training

from .fakes import tiny_config

MODEL = "TupleOutTestNet"

if MODEL not in MODELS._classes:
    @MODELS.register(MODEL)
    class TupleOutTestNet(nn.Module):
        """(B, T, F) -> (embed_a (B, 16), embed_b (B, D)) like WeSpeaker's two_emb_layer models."""

        def __init__(self, feat_dim: int = 6, embed_dim: int = 8) -> None:
            super().__init__()
            self.embed_dim = embed_dim
            self.seg_1 = nn.Linear(2 * feat_dim, 16)
            self.seg_2 = nn.Linear(16, embed_dim)

        def forward(self, x: torch.Tensor):
            a = self.seg_1(torch.cat([x.mean(1), x.std(1)], 1))
            return a, self.seg_2(torch.relu(a))


def test_tuple_returning_model_trains_and_extracts(tmp_path, tiny_dirs):
    utt2spk = tiny_dirs.speakers(32, 4)
    utts = list(utt2spk)
    data, feats = tiny_dirs.feats_dir(tmp_path / "data", utt2spk, [30 + i % 5 for i in range(32)])
    exp = str(tmp_path / "exp")
    cfg = tiny_config(data, model=MODEL, num_epochs=2, tensorboard=False,
                      dataset_args={"feat_source": "feats", "num_frms": [20, 20]})
    trainer = run_training(cfg, exp, device="cpu", num_threads=1, progress=False)
    avg = ckpt.load_model_state(os.path.join(exp, "models", "avg_model.pt"))
    assert set(avg) == {"seg_1.weight", "seg_1.bias", "seg_2.weight", "seg_2.bias", "projection.weight"}
    scp = extract_embeddings(exp, data, os.path.join(exp, "embeddings", "train"), progress=False)
    keys, emb = load_embeddings(scp)
    assert sorted(keys) == sorted(utts) and emb.shape == (32, 8)  # the last element of the tuple
    net = trainer.net.eval()
    ckpt.load_into_net(net, os.path.join(exp, "models", "avg_model.pt"))  # what extraction embeds with
    with torch.no_grad():
        key = keys[0]
        x = torch.from_numpy(feats[key] - feats[key].mean(0))[None]
        np.testing.assert_allclose(emb[0], net.encoder(x)[1][0].numpy(), atol=1e-5)
