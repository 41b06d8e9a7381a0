#!/usr/bin/env python3
"""The linear baseline of a corpus: a linear discriminant (LDA) on fixed utterance features, trained with the
training part's identities, scored by cosine on each trial list. The deep baselines of the study should beat it;
the README compares them.

Features (one vector per utterance): audio, the mean (its average over the bins removed: no level) and the
standard deviation over time of each fbank bin of feats.scp; visual, the mean over the utterance's face frames of
the per-image standardised pixels, reduced to --pca dimensions by PCA fitted on the training part. Both are
standardised with the training part's mean and std, then projected by LDA: the within-class scatter shrunk
towards a scaled identity (S_w' = (1 - a) S_w + a tr(S_w)/d I, a = --shrinkage), the directions of the
generalised eigenproblem S_b v = l S_w' v, the first --dims kept. Scores: cosine of mean-removed projections.

    python tools/linear_baseline.py --data egs/voxceleb/v_kd/data --parts dev eval
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np

from wespeaker_avkd.data.kaldi_dir import read_multi_table, read_table
from wespeaker_avkd.scoring.metrics import compute_metrics
from wespeaker_avkd.scoring.trials import KeyIndex, score_trials
from wespeaker_avkd.utils.errors import ArgumentParser, InputValueError, run_main


def audio_features(data_dir: str, utts: Sequence[str]) -> np.ndarray:
    """(N, 2F): per utterance the level-free mean and the std over time of its fbank (feats.scp)."""
    from wespeaker_avkd.utils.kaldi_tables import read_rxfile

    scp = os.path.join(data_dir, "feats.scp")
    feats = read_table(scp)
    out = []
    for utt in utts:
        f = np.asarray(read_rxfile(feats[utt], f"{scp}: {utt}"), dtype=np.float64)
        mean = f.mean(axis=0)
        out.append(np.concatenate([mean - mean.mean(), f.std(axis=0)]))
    return np.asarray(out)


def visual_features(data_dir: str, utts: Sequence[str]) -> np.ndarray:
    """(N, H*W*3): per utterance the mean of its standardised face frames (faces.scp)."""
    from PIL import Image

    frames = read_multi_table(os.path.join(data_dir, "faces.scp"))
    out = []
    for utt in utts:
        images = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float64).ravel() for p in frames[utt]]
        x = np.mean([(im - im.mean()) / (im.std() + 1e-6) for im in images], axis=0)
        out.append(x)
    return np.asarray(out)


def fit_lda(x: np.ndarray, labels: Sequence[str], dims: int, shrinkage: float) -> np.ndarray:
    """(D, dims) LDA directions of x (N, D) with class labels (module docstring), largest ratio first."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    mu = x.mean(axis=0)
    sw = np.zeros((x.shape[1], x.shape[1]))
    sb = np.zeros_like(sw)
    for c in classes:
        xc = x[labels == c]
        mc = xc.mean(axis=0)
        sw += (xc - mc).T @ (xc - mc)
        sb += len(xc) * np.outer(mc - mu, mc - mu)
    sw /= len(x)
    sb /= len(x)
    d = x.shape[1]
    sw = (1.0 - shrinkage) * sw + shrinkage * np.trace(sw) / d * np.eye(d)
    evals, evecs = np.linalg.eigh(sw)  # whiten S_w', then the eigenvectors of the whitened S_b
    whiten = evecs / np.sqrt(evals)
    bvals, bvecs = np.linalg.eigh(whiten.T @ sb @ whiten)
    order = np.argsort(bvals)[::-1][:min(dims, len(classes) - 1)]
    return whiten @ bvecs[:, order]


def pca(x: np.ndarray, k: int) -> np.ndarray:
    """(D, k) principal directions of x (N, D), x centred by the caller."""
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return vt[:k].T


def list_eers(data_dir: str, utts: Sequence[str], emb: np.ndarray, lists: Sequence[str]) -> dict[str, float]:
    """{list: EER} of cosine scores (the scorer's, the embeddings' mean removed) of emb (N, D) rows keyed by utts
    on <data_dir>/trials/<list>."""
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    index = KeyIndex(list(utts))
    out = {}
    for name in lists:
        scored = score_trials(os.path.join(data_dir, "trials", name), index, emb, emb.mean(axis=0))
        out[name] = compute_metrics(scored.scores, scored.labels).eer
    return out


def linear_baseline(data: str, parts: Sequence[str], lists: Sequence[str], dims: int = 100, pca_dims: int = 200,
                    shrinkage: float = 0.1) -> dict[str, dict[str, dict[str, float]]]:
    """{part: {modality: {list: EER}}} of the linear baseline trained on <data>/train (module docstring)."""
    utt2spk = read_table(os.path.join(data, "train", "utt2spk"))
    train_utts = sorted(utt2spk)
    labels = [utt2spk[u] for u in train_utts]
    out: dict[str, dict[str, dict[str, float]]] = {p: {} for p in parts}
    # (modality, its features, PCA dimensions before LDA: None keeps every feature)
    for modality, features, reduce_dims in (("audio", audio_features, None), ("visual", visual_features, pca_dims)):
        train = features(os.path.join(data, "train"), train_utts)
        mu, sd = train.mean(axis=0), train.std(axis=0) + 1e-6
        train = (train - mu) / sd
        reduce = pca(train, reduce_dims) if reduce_dims else np.eye(train.shape[1])
        w = fit_lda(train @ reduce, labels, dims, shrinkage)
        for part in parts:
            utts = sorted(read_table(os.path.join(data, part, "utt2spk")))
            x = (features(os.path.join(data, part), utts) - mu) / sd
            out[part][modality] = list_eers(os.path.join(data, part), utts, x @ reduce @ w, lists)
    return out


def run(argv: list[str]) -> int:
    """Parse the options, print the linear baseline's EER % per part, modality and list as a markdown table."""
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the corpus' data root (train/, dev/, eval/)")
    parser.add_argument("--parts", nargs="+", default=["dev", "eval"])
    parser.add_argument("--trials", nargs="+", default=["O", "E", "H"])
    parser.add_argument("--dims", type=int, default=100, help="LDA dimensions kept")
    parser.add_argument("--pca", type=int, default=200, help="PCA dimensions of the visual features before LDA")
    parser.add_argument("--shrinkage", type=float, default=0.1, help="within-class scatter shrinkage a in [0, 1)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.shrinkage < 1.0:
        raise InputValueError(f"--shrinkage must be in [0, 1), got {args.shrinkage}")
    eers = linear_baseline(args.data, args.parts, args.trials, args.dims, args.pca, args.shrinkage)
    print("| part | modality | " + " | ".join(f"{t} EER %" for t in args.trials) + " | mean |")
    print("|---|---|" + "---|" * (len(args.trials) + 1))
    for part, per_modality in eers.items():
        for modality, per_list in per_modality.items():
            values = [100 * per_list[t] for t in args.trials]
            print(f"| {part} | {modality} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {np.mean(values):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(run_main("linear_baseline", run, None))
