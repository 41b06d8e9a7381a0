"""AAM head against a closed-form numpy computation; numerical safety; WeSpeaker's margin schedule."""
import math

import numpy as np
import pytest
import torch

from wespeaker_avkd.models.margin_scheduler import MarginScheduler
from wespeaker_avkd.models.projections import ArcMarginProduct
from wespeaker_avkd.registry import PROJECTIONS


def _numpy_aam(emb, weight, label, s, m, easy_margin):
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    w = weight / np.linalg.norm(weight, axis=1, keepdims=True)
    cos = np.clip(e @ w.T, -1, 1)
    out = cos.copy()
    for i, y in enumerate(label):
        theta = np.arccos(cos[i, y])
        if easy_margin:
            out[i, y] = np.cos(theta + m) if cos[i, y] > 0 else cos[i, y]
        elif cos[i, y] > np.cos(np.pi - m):
            out[i, y] = np.cos(theta + m)
        else:
            out[i, y] = cos[i, y] - np.sin(np.pi - m) * m
    return s * out


@pytest.mark.parametrize("easy_margin", [False, True])
@pytest.mark.parametrize("margin", [0.0, 0.2, 0.7])
def test_logits_match_closed_form(easy_margin, margin):
    rng = np.random.default_rng(0)
    head = PROJECTIONS.build("arc_margin", embed_dim=6, num_class=9, scale=32.0, margin=margin,
                             easy_margin=easy_margin).double()
    emb = rng.normal(size=(40, 6))
    label = rng.integers(0, 9, size=40)
    # Some embeddings pointing away from their class, so the th/mm fallback branch is exercised too.
    w = head.weight.detach().numpy()
    emb[:5] = -w[label[:5]] + 0.01 * rng.normal(size=(5, 6))
    got = head(torch.from_numpy(emb), torch.from_numpy(label)).detach().numpy()
    np.testing.assert_allclose(got, _numpy_aam(emb, w, label, 32.0, margin, easy_margin), rtol=0, atol=1e-9)
    assert head.weight.shape == (9, 6)


def test_cross_entropy_of_logits_is_aam_loss_and_update_changes_margin():
    torch.manual_seed(0)
    head = ArcMarginProduct(4, 5, margin=0.0)
    emb, label = torch.randn(8, 4), torch.randint(0, 5, (8,))
    plain = torch.nn.functional.cross_entropy(head(emb, label), label)
    torch.testing.assert_close(plain, torch.nn.functional.cross_entropy(32 * head.cosine(emb), label))
    head.update(0.3)
    assert head.margin == 0.3 and math.isclose(head.th, math.cos(math.pi - 0.3))
    assert torch.nn.functional.cross_entropy(head(emb, label), label) > plain


@pytest.mark.parametrize("easy_margin", [False, True])
def test_no_nan_gradient_at_cos_plus_minus_one(easy_margin):
    head = ArcMarginProduct(3, 4, margin=0.2, easy_margin=easy_margin)
    w = head.weight.detach()
    emb = torch.stack([w[0], -w[1], w[2] * 3.0, -w[3] * 0.5]).clone().requires_grad_(True)
    label = torch.tensor([0, 1, 2, 3])
    loss = torch.nn.functional.cross_entropy(head(emb, label), label)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(emb.grad).all() and torch.isfinite(head.weight.grad).all()


def test_wrong_embedding_size_is_a_clear_error():
    with pytest.raises(ValueError, match=r"arc_margin expects \(batch, 4\)"):
        ArcMarginProduct(4, 3)(torch.randn(2, 5), torch.tensor([0, 1]))


def _wespeaker_margin(it, epoch_iter, inc, fix, m0, m1):
    """WeSpeaker's schedule written out independently (epochs from 1)."""
    start, end = (inc - 1) * epoch_iter, (fix - 1) * epoch_iter
    if it >= end:
        return m1
    if it < start:
        return m0
    ratio = 1.0 - math.exp((it - start) / (end - start) * math.log(1e-3 / (1.0 + 1e-6)))
    return m0 + (m1 - m0) * ratio


def test_margin_schedule_matches_wespeaker_including_ramp_ends():
    head = ArcMarginProduct(4, 3, margin=0.5)
    sched = MarginScheduler(head, epoch_iter=10, increase_start_epoch=2, fix_start_epoch=5,
                            initial_margin=0.0, final_margin=0.2)
    assert head.margin == 0.0  # set at construction
    seen = []
    for it in range(60):
        sched.step(it)
        seen.append(sched.get_margin())
        assert seen[-1] == pytest.approx(_wespeaker_margin(it, 10, 2, 5, 0.0, 0.2), abs=1e-12)
    assert seen[9] == 0.0 and seen[10] == 0.0          # ramp starts at (2 - 1) * 10 with ratio 0
    assert seen[39] == pytest.approx(0.2 * (1 - (1e-3 / (1 + 1e-6)) ** (29 / 30)), rel=1e-12)  # ~0.19975
    assert seen[40] == 0.2 and seen[-1] == 0.2         # fixed from (5 - 1) * 10 on
    assert all(a <= b for a, b in zip(seen, seen[1:]))


def test_margin_schedule_linear_and_implicit_counter():
    head = ArcMarginProduct(4, 3)
    sched = MarginScheduler(head, 4, 1, 2, 0.0, 0.4, increase_type="linear")
    margins = []
    for _ in range(6):
        sched.step()
        margins.append(head.margin)
    assert margins == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.4])
    with pytest.raises(ValueError, match="increase_type"):
        MarginScheduler(head, 4, 1, 2, 0.0, 0.4, increase_type="cosine")
