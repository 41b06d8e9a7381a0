"""Eq. 7 objective built from a yaml kd block: term selection, weights, logging, adapter, errors."""
import pytest
import torch
import yaml

from wespeaker_avkd.losses.kd_objective import KDObjective, build_kd_objective
from wespeaker_avkd.registry import LOSSES


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.tensor(2.5), torch.randn(6, 8, requires_grad=True), torch.randn(6, 8)


def test_eq7_shorthand_weights_and_unweighted_terms(batch):
    aam, s, t = batch
    w = torch.randn(20, 8)
    obj = build_kd_objective({"alpha": 1.0, "beta": 0.0, "gamma": 0.5, "temperature": 0.1}, w, 8, 8)
    assert set(obj.terms) == {"kl", "mmd"}  # zero beta dropped
    assert obj.terms["kl"].temperature == 0.1
    total, terms = obj(aam, s, t)
    kl = LOSSES.build("kl", teacher_weight=w, temperature=0.1)(s, t)
    mmd = LOSSES.build("mmd")(s, t)
    assert set(terms) == {"aam", "kl", "mmd"}
    torch.testing.assert_close(terms["kl"], kl)
    torch.testing.assert_close(terms["mmd"], mmd)
    torch.testing.assert_close(total, aam + kl + 0.5 * mmd)
    total.backward()
    assert s.grad is not None


def test_named_losses_mapping_from_yaml_with_type_and_kwargs(batch):
    aam, s, t = batch
    cfg = yaml.safe_load("""
    losses:
      cos: {weight: 2.0, reduction: sum}
      mmd_wide: {type: mmd, weight: 0.25, kernel_mul: 4.0, kernel_num: 3}
      kl: {weight: 0}
    """)
    obj = build_kd_objective(cfg, None, 8, 8)  # kl has weight 0: no teacher weight needed
    total, terms = obj(aam, s, t)
    assert set(terms) == {"aam", "cos", "mmd_wide"}
    assert obj.terms["mmd_wide"].kernel_mul == 4.0 and obj.terms["mmd_wide"].kernel_num == 3
    torch.testing.assert_close(total, aam + 2.0 * terms["cos"] + 0.25 * terms["mmd_wide"])
    torch.testing.assert_close(terms["cos"], LOSSES.build("cos", reduction="sum")(s, t))


def test_empty_block_is_plain_aam(batch):
    aam, s, t = batch
    total, terms = build_kd_objective({}, None, 8, 16)(aam, s, t[:, :8])
    assert total is aam and terms == {"aam": aam}


def test_dim_mismatch_error_and_adapter(batch):
    aam, s, t = batch
    t16 = torch.randn(6, 16)
    with pytest.raises(ValueError, match=r"student embedding dim 8 != teacher embedding dim 16.*kd.adapter: true"):
        build_kd_objective({"beta": 1.0}, None, 8, 16)
    obj = build_kd_objective({"beta": 1.0, "alpha": 1.0, "adapter": True}, torch.randn(5, 16), 8, 16)
    assert obj.adapter.weight.shape == (16, 8)
    total, _ = obj(aam, s, t16)
    total.backward()
    assert obj.adapter.weight.grad is not None
    # The teacher weight is a buffer: only the adapter is trainable.
    assert [n for n, _ in obj.named_parameters()] == ["adapter.weight"]


def test_builder_errors():
    with pytest.raises(ValueError, match="needs the teacher's AAM weight"):
        build_kd_objective({"alpha": 1.0}, None, 8, 8)
    with pytest.raises(ValueError, match=r"teacher weight shape \(5, 4\) does not match teacher embedding dim 8"):
        build_kd_objective({"alpha": 1.0}, torch.randn(5, 4), 8, 8)
    # The error types follow the config validation (a ValueError naming the key); the messages name the loss.
    with pytest.raises((KeyError, ValueError), match="unknown (KD )?loss 'l3'"):
        build_kd_objective({"losses": {"l3": {"weight": 1.0}}}, None, 8, 8)
    with pytest.raises((TypeError, ValueError), match=r"kd(\.losses\.| term ')cos.*bogus"):
        build_kd_objective({"losses": {"cos": {"bogus": 1}}}, None, 8, 8)
    with pytest.raises(ValueError, match="'aam' is reserved"):
        KDObjective({"aam": torch.nn.Identity()}, {"aam": 1.0})
