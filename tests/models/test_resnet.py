"""Audio ResNet: WeSpeaker parameter layout and count, shapes, input checks, checkpoint loading."""
from pathlib import Path

import pytest
import torch

from wespeaker_avkd.models.resnet import ResNet34
from wespeaker_avkd.registry import MODELS

REPO = Path(__file__).resolve().parents[2]
# WeSpeaker's ResNet34 (feat_dim 80, embed_dim 256) state_dict keys and shapes, one "name (shape) kind" a line;
# a copy of the team's reference list, kept beside the test so it runs from any checkout.
KEYS_FILE = Path(__file__).resolve().parent / "data" / "resnet34_state_dict_keys.txt"


def _reference_keys():
    rows = []
    for line in KEYS_FILE.read_text().splitlines():
        name, rest = line.split(" ", 1)
        shape = rest[rest.index("(") + 1:rest.index(")")]
        rows.append((name, tuple(int(d) for d in shape.split(",") if d.strip())))
    return rows


def test_resnet34_matches_wespeaker_keys_shapes_and_param_count():
    model = MODELS.build("ResNet34", feat_dim=80, embed_dim=256, m_channels=32)
    assert sum(p.numel() for p in model.parameters()) == 6_634_336
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert ours == _reference_keys()


def test_all_depths_registered():
    for name in ("ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152", "ResNet221", "ResNet293"):
        assert name in MODELS


@pytest.mark.parametrize("frames", [8, 9, 37, 200])
def test_forward_shapes_any_length(frames):
    torch.manual_seed(0)
    model = MODELS.build("ResNet18", feat_dim=40, embed_dim=512, m_channels=8).eval()
    with torch.no_grad():
        out = model(torch.randn(2, frames, 40))
    assert out.shape == (2, 512)
    assert torch.isfinite(out).all()


def test_resnet34_feat40_emb512_training_step_shapes():
    torch.manual_seed(0)
    model = ResNet34(feat_dim=40, embed_dim=512, m_channels=32)
    out = model(torch.randn(2, 200, 40))
    out.sum().backward()
    assert out.shape == (2, 512)
    assert model.seg_1.weight.shape == (512, 2560)
    assert all(p.grad is not None for p in model.parameters())


def test_whole_utterance_batch_one_eval():
    model = ResNet34(feat_dim=40, embed_dim=512, m_channels=32).eval()
    with torch.no_grad():
        for frames in (8, 400):
            assert model(torch.randn(1, frames, 40)).shape == (1, 512)


def test_two_emb_layer_and_pooling_variants():
    model = MODELS.build("ResNet18", feat_dim=16, embed_dim=32, m_channels=4, two_emb_layer=True)
    keys = model.state_dict().keys()
    assert "seg_2.weight" in keys and "seg_bn_1.running_mean" in keys
    assert model(torch.randn(3, 20, 16)).shape == (3, 32)
    tap = MODELS.build("ResNet18", feat_dim=16, embed_dim=32, m_channels=4, pooling_func="TAP")
    assert tap.seg_1.weight.shape == (32, 2 * 4 * 8)
    assert tap(torch.randn(2, 20, 16)).shape == (2, 32)
    bottleneck = MODELS.build("ResNet50", feat_dim=16, embed_dim=8, m_channels=4)
    assert bottleneck.seg_1.weight.shape == (8, 2 * 2 * 4 * 8 * 4)
    assert bottleneck(torch.randn(2, 16, 16)).shape == (2, 8)


def test_clear_errors():
    with pytest.raises(ValueError, match="multiple of 8"):
        ResNet34(feat_dim=42)
    with pytest.raises(ValueError, match="unknown pooling 'XYZ'"):
        ResNet34(feat_dim=40, pooling_func="XYZ")
    model = MODELS.build("ResNet18", feat_dim=16, embed_dim=8, m_channels=4)
    with pytest.raises(ValueError, match="at least 8 frames.*got 7"):
        model(torch.randn(1, 7, 16))
    with pytest.raises(ValueError, match=r"\(batch, frames, 16\)"):
        model(torch.randn(1, 20, 40))


def test_statistics_pooling_is_mean_then_unbiased_std():
    model = MODELS.build("ResNet18", feat_dim=8, embed_dim=4, m_channels=2)
    fmap = torch.randn(3, 16, 1, 5)
    stats = model.pool(fmap)
    want = torch.cat([fmap.mean(-1).flatten(1), torch.sqrt(fmap.var(-1, unbiased=True) + 1e-7).flatten(1)], 1)
    torch.testing.assert_close(stats, want)
