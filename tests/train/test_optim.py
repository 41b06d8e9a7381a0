"""LR schedules against WeSpeaker's formula, optimizer construction."""
import math

import pytest
import torch

from wespeaker_avkd.config.train_config import ConfigError
from wespeaker_avkd.train.optim import ExponentialDecrease, build_optimizer, build_scheduler


def _opt():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=1.0)


def _formula(it, lr0, lr1, max_iter, warm_iter, warm_from_zero, ratio=1.0):
    coeff = ratio
    if it < warm_iter:
        if warm_from_zero:
            coeff = ratio * it / warm_iter
        elif ratio > 1:
            coeff = (ratio - 1) * it / warm_iter + 1.0
    return coeff * lr0 * math.exp(it / max_iter * math.log(lr1 / lr0))


@pytest.mark.parametrize("warm_from_zero,ratio", [(True, 1.0), (False, 1.0), (False, 2.0), (True, 4.0)])
def test_exponential_decrease_matches_formula(warm_from_zero, ratio):
    opt = _opt()
    sched = ExponentialDecrease(opt, num_epochs=5, epoch_iter=7, initial_lr=0.1, final_lr=5e-5, warm_up_epoch=2,
                                scale_ratio=ratio, warm_from_zero=warm_from_zero)
    for it in range(35):
        lr = sched.step(it)
        assert lr == pytest.approx(_formula(it, 0.1, 5e-5, 35, 14, warm_from_zero, ratio), rel=1e-12)
        assert opt.param_groups[0]["lr"] == lr


def test_exponential_decrease_endpoints():
    sched = ExponentialDecrease(_opt(), num_epochs=10, epoch_iter=10, initial_lr=0.1, final_lr=1e-3,
                                warm_up_epoch=0)
    assert sched.lr_at(0) == pytest.approx(0.1)
    assert sched.lr_at(50) == pytest.approx(0.01)  # geometric midpoint
    assert sched.lr_at(100) == pytest.approx(1e-3)


def test_step_without_index_advances_and_state_roundtrip():
    a = ExponentialDecrease(_opt(), 3, 4, 0.1, 0.01, warm_up_epoch=1, warm_from_zero=True)
    lrs = [a.step() for _ in range(5)]
    assert lrs[0] == 0.0 and lrs[4] == pytest.approx(a.lr_at(4))
    b = ExponentialDecrease(_opt(), 3, 4, 0.1, 0.01, warm_up_epoch=1, warm_from_zero=True)
    b.load_state_dict(a.state_dict())
    assert b.step() == a.step()


def test_build_scheduler_and_optimizer_errors():
    with pytest.raises(ConfigError, match="unknown scheduler"):
        build_scheduler("Cosine", _opt(), 1, 1, {})
    with pytest.raises(ConfigError, match="scheduler_args"):
        build_scheduler("ExponentialDecrease", _opt(), 1, 1, {"initial_lr": 0.1, "final_lr": 0.01, "bogus": 1})
    const = build_scheduler("ConstantLR", _opt(), 2, 3, {"initial_lr": 0.05})
    assert [const.step(i) for i in range(6)] == [pytest.approx(0.05)] * 6
    params = [torch.nn.Parameter(torch.zeros(1))]
    assert isinstance(build_optimizer("Adam", params, {"weight_decay": 0.0}, 0.1), torch.optim.Adam)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        build_optimizer("Lion", params, {}, 0.1)
