"""The one model-file loader: each named policy loads what it should and refuses the rest with one line naming
the file; the containers other tools write (WeSpeaker's nested {"model": ...}, "state_dict", DDP's module.)
are read, this toolkit's old nested layout points to the converter."""
import copy

import pytest
import torch

from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.models.embedding_net import EmbeddingNet
from wespeaker_avkd.registry import MODELS, PROJECTIONS


def _small():
    return MODELS.build("ResNet18", feat_dim=16, embed_dim=8, m_channels=4)


def _net(num_class=5, seed=0):
    torch.manual_seed(seed)
    head = PROJECTIONS.build("arc_margin", embed_dim=8, num_class=num_class, margin=0.2, scale=32.0)
    return EmbeddingNet(_small(), head)


def _flat(net):
    return ckpt.flat_model_state(net.encoder.state_dict(), net.projection.state_dict())


def _same(a, b):
    return set(a.state_dict()) == set(b.state_dict()) and all(
        torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def _one_line_naming(err, path):
    message = str(err.value)
    return str(path) in message and "\n" not in message


@pytest.mark.parametrize("wrap", ["bare", "state_dict", "model", "ddp"])
def test_wespeaker_policy_reads_every_container_and_sets_the_head_aside(tmp_path, wrap):
    """A WeSpeaker checkpoint (bare, under 'state_dict' or 'model', DDP-prefixed) loads into an encoder; the AAM
    head comes back set aside, and the loaded encoder computes what the saved one did."""
    torch.manual_seed(1)
    src = _small()
    state = dict(src.state_dict())
    state["projection.weight"] = torch.randn(11, 8)
    obj = {"bare": state, "state_dict": {"state_dict": state, "epoch": 3}, "model": {"model": state},
           "ddp": {"module." + k: v for k, v in state.items()}}[wrap]
    torch.save(obj, tmp_path / "ckpt.pt")
    dst = _small()
    aside = ckpt.load_into_net(dst, tmp_path / "ckpt.pt", policy="wespeaker")
    assert list(aside) == ["projection.weight"] and torch.equal(aside["projection.weight"], state["projection.weight"])
    assert _same(dst, src)
    x = torch.randn(2, 20, 16)
    src.eval(), dst.eval()
    torch.testing.assert_close(dst(x), src(x))


def test_nested_model_file_reads_alike_under_every_policy(tmp_path):
    """The nested {"model": ...} file _unwrap_state_dict used to accept alone: strict reads it too (one reader)."""
    net = _net()
    torch.save({"model": _flat(net)}, tmp_path / "nested.pt")
    other = _net(seed=1)
    assert ckpt.load_into_net(other, tmp_path / "nested.pt", policy="strict") == {}
    assert _same(other, net)


def test_strict_refuses_a_missing_key_naming_it_and_copies_nothing(tmp_path):
    net = _net()
    state = _flat(net)
    del state["seg_1.bias"]
    torch.save(state, tmp_path / "m.pt")
    other = _net(seed=1)
    before = copy.deepcopy(other)
    with pytest.raises(KeyError) as err:
        ckpt.load_into_net(other, tmp_path / "m.pt", policy="strict")
    assert _one_line_naming(err, tmp_path / "m.pt") and "missing ['seg_1.bias']" in str(err.value)
    assert _same(other, before)


def test_strict_refuses_another_head_trunk_sets_it_aside(tmp_path):
    torch.save(_flat(_net(num_class=5)), tmp_path / "m.pt")
    seven = _net(num_class=7, seed=1)
    before = copy.deepcopy(seven)
    with pytest.raises(ValueError, match=r"projection key 'weight' has shape \(5, 8\)") as err:
        ckpt.load_into_net(seven, tmp_path / "m.pt", policy="strict")
    assert _one_line_naming(err, tmp_path / "m.pt") and _same(seven, before)  # the encoder was not copied either
    aside = ckpt.load_into_net(seven, tmp_path / "m.pt", policy="trunk")
    assert list(aside) == ["projection.weight"] and torch.equal(seven.projection.weight, before.projection.weight)
    assert _same(seven.encoder, _net(num_class=5).encoder)


def test_trunk_refuses_an_encoder_of_another_shape(tmp_path):
    torch.save(_flat(_net()), tmp_path / "m.pt")
    wider = EmbeddingNet(MODELS.build("ResNet18", feat_dim=16, embed_dim=16, m_channels=4),
                         PROJECTIONS.build("arc_margin", embed_dim=16, num_class=5, margin=0.2, scale=32.0))
    with pytest.raises(ValueError, match=r"encoder key 'seg_1.weight' has shape \(8, 128\)") as err:
        ckpt.load_into_net(wider, tmp_path / "m.pt", policy="trunk")
    assert _one_line_naming(err, tmp_path / "m.pt")


def test_encoder_only_loads_a_bare_encoder_and_refuses_a_head(tmp_path):
    src = _small()
    torch.save(src.state_dict(), tmp_path / "enc.pt")
    dst = _small()
    assert ckpt.load_into_net(dst, tmp_path / "enc.pt", policy="encoder_only") == {}
    assert _same(dst, src)
    torch.save(_flat(_net()), tmp_path / "net.pt")
    with pytest.raises(ckpt.CheckpointLayoutError, match="holds an AAM head") as err:
        ckpt.load_into_net(_small(), tmp_path / "net.pt", policy="encoder_only")
    assert _one_line_naming(err, tmp_path / "net.pt")


def test_wespeaker_policy_errors_name_key_and_shapes(tmp_path):
    state = dict(_small().state_dict())
    state["seg_1.weight"] = torch.zeros(9, 128)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"'seg_1.weight' has shape \(9, 128\) .* but \(8, 128\)"):
        ckpt.load_into_net(_small(), tmp_path / "bad.pt", policy="wespeaker")
    del state["seg_1.weight"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "keys.pt")
    with pytest.raises(KeyError, match=r"missing \['seg_1.weight'\], unexpected \['extra.weight'\]"):
        ckpt.load_into_net(_small(), tmp_path / "keys.pt", policy="wespeaker")


@pytest.mark.parametrize("policy", ckpt.LOAD_POLICIES)
def test_every_policy_refuses_what_is_no_model_file(tmp_path, policy):
    """Not a name -> tensor mapping, a non-tensor value, the old nested layout: one line naming the file."""
    net = _net()
    target = net if ckpt.POLICIES[policy].into == "net" else net.encoder
    cases = {"junk.pt": ([1, 2], "expected a state_dict"),
             "text.pt": ({"w": torch.zeros(1), "note": "x"}, "key 'note' is not a tensor"),
             "old.pt": ({"model": net.encoder.state_dict(), "projection": net.projection.state_dict()},
                        "old nested layout")}
    for name, (obj, expect) in cases.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(ckpt.CheckpointLayoutError, match=expect) as err:
            ckpt.load_into_net(target, tmp_path / name, policy=policy)
        assert _one_line_naming(err, tmp_path / name)
    assert "tools/convert_checkpoint.py --src" in str(err.value)


def test_an_unknown_policy_is_refused_naming_the_policies(tmp_path):
    torch.save(_flat(_net()), tmp_path / "m.pt")
    with pytest.raises(ValueError, match="must be one of .*'wespeaker'"):
        ckpt.load_into_net(_net(), tmp_path / "m.pt", policy="lenient")
