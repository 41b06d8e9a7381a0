"""The learning curve on dev (train/dev_curve.py): the trainer's rows in learning_curve.tsv, their dev EERs
against an independent computation (the epoch's model file extracted, numpy cosine), training
unchanged by the evaluation, resume keeping earlier rows, and a missing list refused before anything is written."""
import os

import numpy as np
import pytest
import torch

from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.inference.extract import embed_data_dir, load_trained
from wespeaker_avkd.registry import MODELS
from wespeaker_avkd.scoring.metrics import compute_metrics
from wespeaker_avkd.train.trainer import run_training
from wespeaker_avkd.utils.curve_file import curve_path, read_curve, write_curve

from .fakes import crash_in_epoch, fake_loaders, tiny_config, write_data_dir

STD_MODEL = "TinyStdTestNet"
if STD_MODEL not in MODELS._classes:  # registered once per process
    @MODELS.register(STD_MODEL)
    class TinyStdTestNet(torch.nn.Module):
        """(B, T, F) -> (B, embed_dim): a linear layer on the per-dimension std over time (which survives the
        loaders' mean normalisation, unlike the mean)."""

        def __init__(self, feat_dim: int = 6, embed_dim: int = 8) -> None:
            super().__init__()
            self.embed_dim = embed_dim
            self.fc = torch.nn.Linear(feat_dim, embed_dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.std(1))


def _config(data, **extra):
    """tiny_config around the std model."""
    return tiny_config(data, model=STD_MODEL, **extra)


def _dev_dir(tiny_dirs, path):
    """A dev data dir of 4 speakers x 6 utterances (speaker-scaled features) with an O list of every pair."""
    utt2spk = tiny_dirs.speakers(24, 4)
    root, feats = tiny_dirs.feats_dir(path, utt2spk, [7] * 24, seed=3)
    rng = np.random.default_rng(5)
    centres = {s: rng.normal(size=6).astype(np.float32) for s in sorted(set(utt2spk.values()))}
    import kaldiio

    shifted = {u: m * np.exp(centres[utt2spk[u]]) for u, m in feats.items()}
    kaldiio.save_ark(os.path.join(root, "feats.ark"), shifted, scp=os.path.join(root, "feats.scp"))
    utts = sorted(utt2spk)
    os.makedirs(os.path.join(root, "trials"))
    with open(os.path.join(root, "trials", "O"), "w") as f:
        for i, a in enumerate(utts):
            for b in utts[i + 1:]:
                f.write(f"{a} {b} {'target' if utt2spk[a] == utt2spk[b] else 'nontarget'}\n")
    return root


def _reference_eer(exp, model_file, dev):
    """EER % of a model file on dev/trials/O: its embeddings through extraction (the model loaded from its file),
    the dev mean removed, numpy cosine in float64, the metric of scoring/metrics.py (tested on its own against
    Kaldi's and sklearn's definitions)."""
    cfg, net, _ = load_trained(exp, model_file, "cpu")
    keys, table = embed_data_dir(net, cfg, dev, "cpu")
    emb = np.stack([table[k] for k in keys]).astype(np.float64)
    emb -= emb.mean(0)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    row = {k: i for i, k in enumerate(keys)}
    trials = [line.split() for line in open(os.path.join(dev, "trials", "O"))]
    scores = np.array([emb[row[a]] @ emb[row[b]] for a, b, _ in trials])
    labels = np.array([t == "target" for _, _, t in trials])
    return 100 * compute_metrics(scores.astype(np.float32), labels.astype(np.int8)).eer


def test_curve_rows_match_an_independent_eer_and_training_is_unchanged(tmp_path, tiny_dirs):
    data = write_data_dir(tmp_path / "data")
    dev = _dev_dir(tiny_dirs, tmp_path / "dev")
    exp, plain = str(tmp_path / "exp"), str(tmp_path / "plain")
    run_training(_config(data, dev_eval={"data": dev, "trials": ["O"]}), exp, device="cpu", num_threads=1,
                 progress=False, loaders=fake_loaders())
    rows = read_curve(curve_path(exp))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"loss", "acc", "lr", "margin", "dev_eer_O"} <= set(rows[0])
    model_3 = os.path.join(exp, "models", "model_3.pt")
    assert float(rows[2]["dev_eer_O"]) == pytest.approx(_reference_eer(exp, model_3, dev), abs=1e-3)
    assert "epoch 3 dev EER %: dev_eer_O" in open(os.path.join(exp, "train.log")).read()
    # the evaluation draws no random number: the same training without dev_eval ends with equal weights
    run_training(_config(data), plain, device="cpu", num_threads=1, progress=False, loaders=fake_loaders())
    a, b = (ckpt.load_model_state(os.path.join(d, "models", "model_3.pt")) for d in (exp, plain))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not os.path.exists(curve_path(plain))


def test_every_and_resume_keep_the_rows(tmp_path, tiny_dirs, monkeypatch):
    data = write_data_dir(tmp_path / "data")
    dev = _dev_dir(tiny_dirs, tmp_path / "dev")
    exp = str(tmp_path / "exp")
    cfg = _config(data, dev_eval={"data": dev, "trials": ["O"], "every": 2})
    undo_crash = crash_in_epoch(monkeypatch, 3, 1)
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, exp, device="cpu", num_threads=1, progress=False, loaders=fake_loaders())
    before = read_curve(curve_path(exp))
    assert [r["dev_eer_O"] == "-" for r in before] == [True, False]  # epoch 2 measured, epoch 1 not
    undo_crash()
    run_training(cfg, exp, device="cpu", num_threads=1, progress=False, loaders=fake_loaders())
    after = read_curve(curve_path(exp))
    assert after[:2] == before and [int(r["epoch"]) for r in after] == [1, 2, 3]
    assert after[2]["dev_eer_O"] != "-"  # the last epoch is always measured


def test_missing_dev_list_refused_before_writing(tmp_path, tiny_dirs):
    data = write_data_dir(tmp_path / "data")
    dev = _dev_dir(tiny_dirs, tmp_path / "dev")
    exp = tmp_path / "exp"
    with pytest.raises(FileNotFoundError, match="dev_eval: no trial list .*trials/E"):
        run_training(_config(data, dev_eval={"data": dev, "trials": ["O", "E"]}), str(exp), device="cpu",
                     num_threads=1, progress=False, loaders=fake_loaders())
    assert not (exp / "models").exists() and not (exp / "config.yaml").exists()


def test_curve_file_round_trip_and_bad_row(tmp_path):
    path = str(tmp_path / "c.tsv")
    write_curve(path, [{"epoch": 1, "loss": 2.5, "dev_eer_O": None}, {"epoch": 2, "loss": 1.25, "dev_eer_O": 12.5}])
    assert read_curve(path) == [{"epoch": "1", "loss": "2.5", "dev_eer_O": "-"},
                                {"epoch": "2", "loss": "1.25", "dev_eer_O": "12.5"}]
    with open(path, "a") as f:
        f.write("3\t1.0\n")
    with pytest.raises(ValueError, match=r"c.tsv:4: 2 columns, the header has 3"):
        read_curve(path)
