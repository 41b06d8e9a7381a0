"""Independent reference implementations the compiled scorer is checked against (literal ports where named)."""
from __future__ import annotations

import numpy as np


def eer_crossing_numpy(scores, labels) -> float:
    """ROC crossing with ties grouped, written directly from metrics.md's closed form with numpy."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels).astype(bool)
    uniq, inv = np.unique(s, return_inverse=True)
    t_per = np.bincount(inv, weights=y, minlength=len(uniq))
    n_per = np.bincount(inv, weights=~y, minlength=len(uniq))
    nt, nn = y.sum(), (~y).sum()
    # threshold = each distinct score (accept >=), then reject-all
    fnr = np.concatenate([np.cumsum(t_per) - t_per, [nt]]) / nt
    fpr = np.concatenate([nn - (np.cumsum(n_per) - n_per), [0]]) / nn
    d = fnr - fpr
    j = int(np.argmax(d > 0))
    i = j - 1
    t = d[i] / (d[i] - d[j])
    return float(fnr[i] + t * (fnr[j] - fnr[i]))


def eer_voxsrc(scores, labels) -> float:
    """The VoxSRC compute_EER way: sklearn roc_curve, then brentq on interp1d(fpr, tpr)."""
    from scipy.interpolate import interp1d
    from scipy.optimize import brentq
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, np.asarray(scores, np.float64), pos_label=1)
    return float(brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0, xtol=1e-14))


def eer_kaldi_port(target_scores, nontarget_scores) -> tuple[float, float]:
    """Literal port of Kaldi ivectorbin/compute-eer.cc ComputeEer (float32 sort, integer position rule)."""
    target_scores = sorted(np.asarray(target_scores, np.float32).tolist())
    nontarget_scores = sorted(np.asarray(nontarget_scores, np.float32).tolist())
    target_position = 0
    target_size = len(target_scores)
    while target_position + 1 < target_size:
        nontarget_size = len(nontarget_scores)
        nontarget_n = int(nontarget_size * target_position * 1.0 / target_size)  # ssize_t truncation
        nontarget_position = nontarget_size - 1 - nontarget_n
        if nontarget_position < 0:
            nontarget_position = 0
        if nontarget_scores[nontarget_position] < target_scores[target_position]:
            break
        target_position += 1
    threshold = target_scores[target_position]
    eer = np.float32(target_position * 1.0 / target_size)  # BaseFloat
    return float(eer), threshold


def _pavx(y):
    """BOSARIS pavx: pool-adjacent-violators, returns (ghat, width)."""
    n = len(y)
    index = np.zeros(n, dtype=int)
    length = np.zeros(n, dtype=int)
    ghat = np.zeros(n)
    ci = 0
    index[ci] = 0
    length[ci] = 1
    ghat[ci] = y[0]
    for j in range(1, n):
        ci += 1
        index[ci] = j
        length[ci] = 1
        ghat[ci] = y[j]
        while ci >= 1 and ghat[max(ci - 1, 0)] >= ghat[ci]:
            nw = length[ci - 1] + length[ci]
            ghat[ci - 1] = ghat[ci - 1] + (length[ci] / nw) * (ghat[ci] - ghat[ci - 1])
            length[ci - 1] = nw
            ci -= 1
    height = np.copy(ghat[:ci + 1])
    width = np.copy(length[:ci + 1])
    return height, width


def eer_rocch_port(target_scores, nontarget_scores) -> float:
    """Port of BOSARIS rocch + rocch2eer (targets first in a stable sort on ties)."""
    tar = np.asarray(target_scores, np.float64)
    non = np.asarray(nontarget_scores, np.float64)
    nt, nn = len(tar), len(non)
    scores = np.concatenate([tar, non])
    pideal = np.concatenate([np.ones(nt), np.zeros(nn)])
    perturb = np.argsort(scores, kind="mergesort")
    pideal = pideal[perturb]
    _, width = _pavx(pideal)
    nbins = len(width)
    pmiss = np.zeros(nbins + 1)
    pfa = np.zeros(nbins + 1)
    left = 0
    fa = nn
    miss = 0
    for i in range(nbins):
        pmiss[i] = miss / nt
        pfa[i] = fa / nn
        left = int(left + width[i])
        miss = np.sum(pideal[:left])
        fa = nt + nn - left - np.sum(pideal[left:])
    pmiss[nbins] = miss / nt
    pfa[nbins] = fa / nn
    eer = 0.0
    for i in range(len(pfa) - 1):
        xx = pfa[i:i + 2]
        yy = pmiss[i:i + 2]
        XY = np.column_stack((xx, yy))
        dd = np.dot(np.array([1, -1]), XY)
        if np.min(np.abs(dd)) == 0:
            eerseg = 0.0
        else:
            seg = np.linalg.solve(XY, np.array([[1], [1]]))
            eerseg = 1.0 / np.sum(seg)
        eer = max(eer, eerseg)
    return float(eer)


def min_dcf_port(scores, labels, p_target, c_miss=1.0, c_fa=1.0) -> tuple[float, float]:
    """Literal port of Kaldi egs/sre08/v1/sid/compute_min_dcf.py (ComputeErrorRates + ComputeMinDcf)."""
    from operator import itemgetter

    scores = [float(s) for s in scores]
    labels = [int(v) for v in labels]
    sorted_indexes, thresholds = zip(*sorted([(index, threshold) for index, threshold in enumerate(scores)],
                                             key=itemgetter(1)))
    labels = [labels[i] for i in sorted_indexes]
    fnrs = []
    fprs = []
    for i in range(0, len(labels)):
        if i == 0:
            fnrs.append(labels[i])
            fprs.append(1 - labels[i])
        else:
            fnrs.append(fnrs[i - 1] + labels[i])
            fprs.append(fprs[i - 1] + 1 - labels[i])
    fnrs_norm = sum(labels)
    fprs_norm = len(labels) - fnrs_norm
    fnrs = [x / float(fnrs_norm) for x in fnrs]
    fprs = [1 - x / float(fprs_norm) for x in fprs]
    min_c_det = float("inf")
    min_c_det_threshold = thresholds[0]
    for i in range(0, len(fnrs)):
        c_det = c_miss * fnrs[i] * p_target + c_fa * fprs[i] * (1 - p_target)
        if c_det < min_c_det:
            min_c_det = c_det
            min_c_det_threshold = thresholds[i]
    c_def = min(c_miss * p_target, c_fa * (1 - p_target))
    return min_c_det / c_def, min_c_det_threshold


def cosine_numpy(emb, enroll, test, mean=None) -> np.ndarray:
    """float64 cosine of row pairs after optional mean subtraction."""
    x = np.asarray(emb, np.float64)
    if mean is not None:
        x = x - np.asarray(mean, np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return np.einsum("ij,ij->i", x[enroll], x[test])


def as_norm_numpy(emb, enroll, test, cohort, top_k, mean=None) -> np.ndarray:
    """WeSpeaker score_norm.py's AS-norm written plainly: full sort of the cohort scores, top_k, mean, std."""
    x = np.asarray(emb, np.float64) - (0 if mean is None else np.asarray(mean, np.float64))
    c = np.asarray(cohort, np.float64) - (0 if mean is None else np.asarray(mean, np.float64))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    cs = np.sort(x @ c.T, axis=1)[:, -top_k:]
    mu, sd = cs.mean(axis=1), cs.std(axis=1)
    s = np.einsum("ij,ij->i", x[enroll], x[test])
    return 0.5 * ((s - mu[enroll]) / sd[enroll] + (s - mu[test]) / sd[test])
