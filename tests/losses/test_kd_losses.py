"""KL, COS and MMD KD losses (docs/kd_losses.md): golden values from tests/losses/data/kd_golden.json and
properties. The fixture says how each value was computed (numpy float64, tests/losses/data/make_kd_golden.py)."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wespeaker_avkd.registry import LOSSES

DATA = Path(__file__).with_name("data")
GOLDEN = json.loads((DATA / "kd_golden.json").read_text(encoding="utf-8"))
X = GOLDEN["inputs"]["student_X"]
Y = GOLDEN["inputs"]["teacher_Y"]
W = GOLDEN["inputs"]["teacher_weight_W"]
TEMPERATURE = GOLDEN["inputs"]["temperature"]
VALUES = GOLDEN["values"]
TOL = dict(rtol=0, atol=1e-12)


def t64(a):
    return torch.tensor(a, dtype=torch.float64)


def test_registered_names():
    assert {"kl", "cos", "mmd"} <= set(LOSSES.names())


def test_golden_fixture_is_what_its_generator_computes():
    spec = importlib.util.spec_from_file_location("make_kd_golden", DATA / "make_kd_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.golden()
    assert fresh["inputs"] == GOLDEN["inputs"] and fresh["how"] == GOLDEN["how"]
    assert set(GOLDEN["how"]) == set(VALUES) | {"all"}  # every value says how it was computed
    for name, value in VALUES.items():
        np.testing.assert_allclose(fresh["values"][name], value, rtol=0, atol=1e-14, err_msg=name)


# ---------------------------------------------------------------- MMD
def test_mmd_golden_values():
    x, y = t64(X), t64(Y)
    np.testing.assert_allclose(LOSSES.build("mmd", squared=True)(x, y).item(), VALUES["mmd2_biased"], **TOL)
    np.testing.assert_allclose(LOSSES.build("mmd")(x, y).item(), VALUES["mmd_sqrt"], **TOL)
    np.testing.assert_allclose(LOSSES.build("mmd", squared=True)(x, x.clone()).item(), VALUES["mmd2_identical"],
                               **TOL)


def _numpy_mmd2(x, y, mul=2.0, num=5):
    """Independent reference: loops over kernels and pairs."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    z = np.concatenate([x, y])
    n = len(z)
    d2 = np.array([[np.sum((a - b) ** 2) for b in z] for a in z])
    base = d2.sum() / (n * n - n)
    k = sum(np.exp(-d2 / (base * mul ** (i - num // 2))) for i in range(num))
    m = len(x)
    return k[:m, :m].mean() + k[m:, m:].mean() - 2 * k[:m, m:].mean()


def test_mmd_matches_independent_numpy_on_random_batches():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.normal(size=(9, 5)) + 0.3
    got = LOSSES.build("mmd", squared=True)(t64(x), t64(y)).item()
    np.testing.assert_allclose(got, _numpy_mmd2(x, y), rtol=1e-12)


def test_mmd_of_identical_batches_is_zero_with_finite_gradient():
    x = t64(X).requires_grad_(True)
    for loss in (LOSSES.build("mmd"), LOSSES.build("mmd", squared=True)):
        value = loss(x, x.detach().clone())
        assert abs(value.item()) < 1e-12
        x.grad = None
        value.backward()
        assert torch.isfinite(x.grad).all()
    # Float32 rounding around MMD^2 ~ 0 (even slightly negative) still gives a finite, small value and gradient.
    x32 = torch.randn(16, 8, requires_grad=True)
    value = LOSSES.build("mmd")(x32, x32 + 1e-4 * torch.randn(16, 8))
    value.backward()
    assert 0 <= value.item() < 1e-2 and torch.isfinite(x32.grad).all()


def test_mmd_is_permutation_invariant():
    x, y = t64(X), t64(Y)
    loss = LOSSES.build("mmd")
    torch.testing.assert_close(loss(x[[2, 0, 3, 1]], y[[1, 3, 0, 2]]), loss(x, y), **TOL)


def test_mmd_has_no_gradient_through_the_bandwidth():
    torch.manual_seed(0)
    x, y = torch.randn(6, 4, dtype=torch.float64, requires_grad=True), torch.randn(6, 4, dtype=torch.float64)
    loss = LOSSES.build("mmd", squared=True)
    loss(x, y).backward()
    # Same loss with the data-driven bandwidths frozen as constants: identical gradient.
    with torch.no_grad():
        z = F.normalize(torch.cat([x, y]), dim=1)
        base = ((z[:, None] - z[None]) ** 2).sum() / (12 * 11)
    bandwidths = (base * 2.0 ** torch.arange(-2, 3, dtype=torch.float64)).tolist()
    fixed = LOSSES.build("mmd", squared=True, bandwidths=bandwidths)
    x2 = x.detach().clone().requires_grad_(True)
    fixed(x2, y).backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-10, atol=1e-12)


def test_mmd_switches():
    rng = np.random.default_rng(1)
    x, y = t64(rng.normal(size=(6, 4))), t64(rng.normal(size=(6, 4)))
    summed = LOSSES.build("mmd", squared=True)(x, y)
    averaged = LOSSES.build("mmd", squared=True, kernel_reduction="mean")(x, y)
    torch.testing.assert_close(averaged, summed / 5, **TOL)
    unbiased = LOSSES.build("mmd", squared=True, unbiased=True)(x, y)
    assert unbiased < summed  # the U-statistic drops the diagonal's positive k(x, x) = 5 terms
    three = LOSSES.build("mmd", squared=True, kernel_num=3, kernel_mul=4.0)(x, y)
    assert torch.isfinite(three) and not torch.isclose(three, summed)
    with pytest.raises(ValueError, match="set squared: true"):
        LOSSES.build("mmd", unbiased=True)
    with pytest.raises(ValueError, match="bandwidths"):
        LOSSES.build("mmd", bandwidths=[])


# ---------------------------------------------------------------- KL
def test_kl_golden_values_and_cross_entropy():
    kl = LOSSES.build("kl", teacher_weight=t64(W), temperature=TEMPERATURE)
    ce = LOSSES.build("kl", teacher_weight=t64(W), temperature=TEMPERATURE, cross_entropy=True)
    np.testing.assert_allclose(kl(t64(X), t64(Y)).item(), VALUES["kl_batchmean"], **TOL)
    np.testing.assert_allclose(ce(t64(X), t64(Y)).item(), VALUES["cross_entropy_batchmean"], **TOL)


def _posterior(e, w, temp):
    return F.softmax(F.normalize(e, dim=1) @ F.normalize(w, dim=1).t() / temp, dim=1)


def test_kl_equals_torch_kl_div_and_cross_entropy_minus_teacher_entropy():
    torch.manual_seed(0)
    w, s, t = torch.randn(50, 8, dtype=torch.float64), torch.randn(16, 8, dtype=torch.float64), \
        torch.randn(16, 8, dtype=torch.float64)
    kl = LOSSES.build("kl", teacher_weight=w)(s, t)
    p_s, p_t = _posterior(s, w, 1 / 32), _posterior(t, w, 1 / 32)
    ref = F.kl_div(p_s.log(), p_t, reduction="batchmean")
    torch.testing.assert_close(kl, ref, rtol=1e-10, atol=1e-12)
    ce = LOSSES.build("kl", teacher_weight=w, cross_entropy=True)(s, t)
    entropy = -(p_t * p_t.log()).sum(1).mean()
    torch.testing.assert_close(kl, ce - entropy, rtol=1e-10, atol=1e-12)
    summed = LOSSES.build("kl", teacher_weight=w, reduction="sum")(s, t)
    torch.testing.assert_close(summed, kl * 16)
    scaled = LOSSES.build("kl", teacher_weight=w, t_squared=True)(s, t)
    torch.testing.assert_close(scaled, kl / 1024)


def test_kl_teacher_weight_is_a_frozen_buffer_and_gradient_reaches_student_only():
    w = torch.randn(10, 4)
    loss = LOSSES.build("kl", teacher_weight=w)
    assert list(loss.parameters()) == []
    assert "teacher_weight" in dict(loss.named_buffers()) and loss.teacher_weight.shape == (10, 4)
    torch.testing.assert_close(loss.teacher_weight, F.normalize(w, dim=1))  # stored as unit rows
    s, t = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    loss(s, t).backward()
    assert s.grad is not None and t.grad is None
    assert torch.equal(LOSSES.build("kl", teacher_weight=w)(t, t), torch.zeros(()))


def test_kl_clear_errors():
    with pytest.raises(ValueError, match="adapter"):
        LOSSES.build("kl", teacher_weight=torch.randn(10, 4))(torch.randn(2, 5), torch.randn(2, 5))
    with pytest.raises(ValueError, match="reduction"):
        LOSSES.build("kl", teacher_weight=torch.randn(10, 4), reduction="mean")


# ---------------------------------------------------------------- COS
def test_cos_golden_values():
    np.testing.assert_allclose(LOSSES.build("cos")(t64(X), t64(Y)).item(), VALUES["cos_mean"], **TOL)
    np.testing.assert_allclose(LOSSES.build("cos", reduction="sum")(t64(X), t64(Y)).item(), VALUES["cos_sum"],
                               **TOL)


def test_cos_is_scale_invariant_and_zero_for_aligned_pairs():
    x = t64(X)
    assert abs(LOSSES.build("cos")(x, 3 * x).item()) < 1e-15
    torch.testing.assert_close(LOSSES.build("cos")(x, t64(Y)), LOSSES.build("cos")(2 * x, 0.5 * t64(Y)))


def test_shape_errors_name_the_loss():
    with pytest.raises(ValueError, match="CosineLoss: student batch 3 != teacher batch 2"):
        LOSSES.build("cos")(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="MMDLoss: student dim 4 != teacher dim 5"):
        LOSSES.build("mmd")(torch.randn(3, 4), torch.randn(3, 5))
