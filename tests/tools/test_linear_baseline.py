"""tools/linear_baseline.py: its LDA against scikit-learn's (same shrinkage), and its list EERs against numpy
cosine scores through the metric of scoring/metrics.py."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from wespeaker_avkd.scoring.metrics import compute_metrics

_SPEC = importlib.util.spec_from_file_location(
    "linear_baseline", Path(__file__).resolve().parents[2] / "tools" / "linear_baseline.py")
lb = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(lb)


def _classes(rng, num_classes=12, per_class=15, dim=10):
    centres = rng.normal(0, 2, size=(num_classes, dim)) * np.linspace(1.5, 0.2, dim)
    x = np.concatenate([c + rng.normal(size=(per_class, dim)) for c in centres])
    labels = [f"s{i}" for i in range(num_classes) for _ in range(per_class)]
    return x, labels


@pytest.mark.parametrize("shrinkage", [0.0, 0.05, 0.1])
def test_lda_directions_match_sklearn(shrinkage):
    """scikit-learn's eigen solver shrinks the total scatter as well (so its between-class scatter gets a+(1-a)S_b
    rather than S_b): equal at a = 0, nearly equal at the small shrinkage the tool uses."""
    rng = np.random.default_rng(0)
    x, labels = _classes(rng)
    w = lb.fit_lda(x, labels, dims=4, shrinkage=shrinkage)
    ref = LinearDiscriminantAnalysis(solver="eigen", shrinkage=shrinkage).fit(x, labels)
    ours, theirs = (x - x.mean(0)) @ w, ref.transform(x)[:, :4]
    for k in range(4):  # the same directions up to sign and scale: projections perfectly correlated
        assert abs(np.corrcoef(ours[:, k], theirs[:, k])[0, 1]) > 0.999, k


def test_list_eers_are_cosine_eers(tmp_path):
    rng = np.random.default_rng(1)
    utts = [f"u{i}" for i in range(20)]
    emb = rng.normal(size=(20, 5))
    (tmp_path / "trials").mkdir()
    rows = [(utts[i], utts[j], "target" if i % 4 == j % 4 else "nontarget")
            for i in range(20) for j in range(i + 1, 20)]
    (tmp_path / "trials" / "O").write_text("".join(" ".join(r) + "\n" for r in rows))
    got = lb.list_eers(str(tmp_path), utts, emb, ["O"])["O"]
    e = emb - emb.mean(0)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    scores = np.array([e[int(a[1:])] @ e[int(b[1:])] for a, b, _ in rows], dtype=np.float32)
    labels = np.array([t == "target" for *_, t in rows], dtype=np.int8)
    assert got == compute_metrics(scores, labels).eer
    (tmp_path / "trials" / "O").write_text("u1 zz target\n")
    with pytest.raises(Exception, match="trials/O:1: test key 'zz' is not in the embeddings"):
        lb.list_eers(str(tmp_path), utts, emb, ["O"])
