"""Numbers that cannot be wrong silently: cosine scores right for embeddings of any finite magnitude (and
unchanged for usual ones), no non-finite score written, no checkpoint tensor claiming more memory than its
file holds, and a full disk while saving a checkpoint said as such."""
import errno
import glob
import hashlib
import io
import os

import numpy as np
import pytest
import torch

from wespeaker_avkd import _scorer
from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.scoring import ScoringError, as_norm, score_trials
from wespeaker_avkd.scoring.trials import TrialScores, read_score_file, write_score_file
from wespeaker_avkd.utils import fileio
from wespeaker_avkd.utils.errors import one_line, run_main
from wespeaker_avkd.utils.state_dict import CheckpointSizeError


def _cosine_float64(emb, enroll, test, mean=None):
    """The independent reference: float64 numpy, each row normalised first."""
    x = emb.astype(np.float64) - (0.0 if mean is None else mean.astype(np.float64))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.einsum("ij,ij->i", x[enroll], x[test])


# ------------------------------------------------------------------ cosine scores
@pytest.mark.parametrize("scale", [1e19, 3e37, 1e-22, 1e-35])
@pytest.mark.parametrize("with_mean", [False, True])
def test_scores_of_extreme_magnitudes_are_finite_and_right(tmp_path, scale, with_mean):
    rng = np.random.default_rng(5)
    base = rng.standard_normal((6, 64))
    emb = (base * scale).astype(np.float32)
    assert np.isfinite(emb).all() and (emb != 0).all()
    mean = (emb.mean(0) * 0.5).astype(np.float32) if with_mean else None
    keys = [f"spk{i}" for i in range(6)]
    (tmp_path / "trials").write_text("".join(f"{keys[i]} {keys[j]} {'target' if i == j else 'nontarget'}\n"
                                             for i in range(6) for j in range(6)))
    ts = score_trials(str(tmp_path / "trials"), keys, emb, mean)
    ref = _cosine_float64(emb, ts.enroll_rows, ts.test_rows, mean)
    assert np.isfinite(ts.scores).all()
    np.testing.assert_allclose(ts.scores, ref, atol=2e-6, rtol=0)
    write_score_file(tmp_path / "out.score", ts)  # the writer accepts them, and they read back exactly
    assert np.array_equal(read_score_file(tmp_path / "out.score").scores, ts.scores)


def test_scores_do_not_depend_on_the_magnitude():
    """A power-of-two scale changes no bit of the float path; the double path (outside 2^-40..2^60 norms)
    agrees with it to float rounding."""
    rng = np.random.default_rng(7)
    base = rng.standard_normal((50, 128)).astype(np.float32)
    e, t = rng.integers(0, 50, 500).astype(np.int32), rng.integers(0, 50, 500).astype(np.int32)
    one = _scorer.cosine_scores(base, e, t, None)
    for k in (-30, -10, 10, 50):  # norms ~2^(k+3.5): the float path
        assert np.array_equal(_scorer.cosine_scores(base * np.float32(2.0 ** k), e, t, None), one), k
    for k in (-120, -60, 64, 120):  # the double path
        got = _scorer.cosine_scores((base.astype(np.float64) * 2.0 ** k).astype(np.float32), e, t, None)
        np.testing.assert_allclose(got, one, atol=2e-7, rtol=0)


def _pinned_scores():
    rng = np.random.default_rng(2024)
    out = []
    for d in (37, 256):
        base = rng.standard_normal((200, d)).astype(np.float32)
        mean = (0.3 * rng.standard_normal(d)).astype(np.float32)
        e = rng.integers(0, 200, 4000).astype(np.int32)
        t = rng.integers(0, 200, 4000).astype(np.int32)
        for scale in (1e-9, 1e-3, 1.0, 30.0, 1e9):
            emb = (base * np.float32(scale)).astype(np.float32)
            out.append(_scorer.cosine_scores(emb, e, t, None))
            out.append(_scorer.cosine_scores(emb, e, t, (mean * np.float32(scale)).astype(np.float32)))
    return np.concatenate(out)


# sha256 of _pinned_scores()' float32 bytes, computed with the scorer before magnitudes were handled (commit
# f14a82a): scores of usual magnitudes must not change in any bit (score files and reports stay byte-identical).
PINNED_SCORES_SHA256 = "578d626420f827011936a968ebbb0b89b50be817574569c5f5496cbe94c172dd"


def test_scores_of_usual_magnitudes_are_unchanged_bit_for_bit():
    scores = _pinned_scores()
    assert np.isfinite(scores).all() and scores.shape == (80000,)
    assert hashlib.sha256(scores.tobytes()).hexdigest() == PINNED_SCORES_SHA256


def test_as_norm_of_extreme_magnitudes_is_finite():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((20, 16))
    ref_emb = base.astype(np.float32)
    rows = np.arange(10, dtype=np.int32), np.arange(10, 20, dtype=np.int32)
    ref_scores = _scorer.cosine_scores(ref_emb, *rows, None)
    ref = as_norm(ref_scores, *rows, ref_emb, ref_emb[:8], top_k=5)
    for scale in (1e19, 1e-22):
        emb = (base * scale).astype(np.float32)
        got = as_norm(_scorer.cosine_scores(emb, *rows, None), *rows, emb, emb[:8], top_k=5)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_score_writer_refuses_non_finite_scores(tmp_path, bad):
    ts = TrialScores(["a", "a", "b"], ["b", "c", "c"], np.array([0.5, bad, 0.1], np.float32),
                     np.array([1, 0, 0], np.int8))
    out = tmp_path / "list.score"
    with pytest.raises(ScoringError, match=r"trial 1 \('a' 'c'\) has the non-finite score"):
        write_score_file(out, ts)
    assert os.listdir(tmp_path) == []  # nothing written, no temporary file left


# ------------------------------------------------------------------ checkpoint sizes
def _bomb(path):
    """A ~1.5 KB model file holding one float expanded to 10^12 elements (4 TB once made dense)."""
    torch.save({"fc.weight": torch.zeros(1).expand(10 ** 12)}, path)
    assert os.path.getsize(path) < 4096
    return str(path)


def test_expanded_tensor_is_refused_before_allocation(tmp_path, converter):
    from wespeaker_avkd.bin import average_model

    models = tmp_path / "models"
    models.mkdir()
    path = _bomb(models / "model_1.pt")
    pattern = r"model_1\.pt: tensor 'fc.weight' \(shape \(1000000000000,\), stride \(0,\)\) claims 4,000,000,000,000"
    for load in (ckpt.load_checkpoint, ckpt.load_model_state, ckpt.torch_load_safe,
                 lambda p: ckpt.average_last(models, 1, models / "avg_model.pt"),
                 lambda p: converter.convert_checkpoint(p, tmp_path / "converted.pt")):
        with pytest.raises(CheckpointSizeError, match=pattern):
            load(path)
    argv = ["--src_path", str(models), "--dst_model", str(models / "avg_model.pt")]
    assert run_main("average_model", average_model.main, argv) == 2
    assert sorted(os.listdir(models)) == ["model_1.pt"]


def test_expanded_tensor_is_refused_by_the_wespeaker_loader(tmp_path):
    with pytest.raises(CheckpointSizeError, match="claims"):
        ckpt.load_into_net(torch.nn.Linear(2, 2), _bomb(tmp_path / "avg_model.pt"), policy="wespeaker")


def test_genuine_views_and_shared_storages_pass(tmp_path):
    big = torch.arange(1000, dtype=torch.float32)
    path = tmp_path / "model_1.pt"
    torch.save({"a": big[:10], "b": big.view(10, 100), "c": torch.zeros(0)}, path)
    state = ckpt.load_checkpoint(path)
    assert torch.equal(state["a"], big[:10]) and state["c"].numel() == 0


# ------------------------------------------------------------------ a full disk
class _DiskWithRoom:
    """A file whose disk holds `room` more bytes: the write that goes beyond fails with ENOSPC."""

    def __init__(self, f, room):
        self._f, self._room = f, room

    def write(self, data):
        size = memoryview(data).nbytes
        if size > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= size
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


@pytest.mark.parametrize("room", [600, 3000])  # torch passes the OSError on, or turns it into "unexpected pos"
def test_full_disk_while_saving_a_checkpoint_says_so(tmp_path, monkeypatch, room):
    path = tmp_path / "model_1.pt"
    ckpt.save_checkpoint(path, {"w": torch.ones(3)})
    previous = path.read_bytes()
    real_open = open

    def open_on_a_full_disk(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return _DiskWithRoom(f, room) if "w" in mode else f

    monkeypatch.setattr(fileio, "open", open_on_a_full_disk, raising=False)
    with pytest.raises(OSError) as err:
        ckpt.save_checkpoint(path, {"w": torch.randn(10000)})
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert one_line(err.value) == f"disk full writing {path} ({os.strerror(errno.ENOSPC)})"
    assert path.read_bytes() == previous and glob.glob(str(tmp_path / ".*")) == []
    # torch itself says only "unexpected pos N vs M" (what the user saw before): the OSError is kept aside
    writer = fileio._ErrorKeepingWriter(_DiskWithRoom(io.BytesIO(), 3000))
    with pytest.raises(RuntimeError, match="unexpected pos"):
        torch.save({"w": torch.randn(10000)}, writer)
    assert writer.error.errno == errno.ENOSPC
