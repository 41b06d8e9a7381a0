"""Visual ResNet34: torchvision trunk, shapes, size checks and segment-level averaging."""
import pytest
import torch
import torchvision

from wespeaker_avkd.models.visual_resnet import VisualResNet34, segment_embedding
from wespeaker_avkd.registry import MODELS


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MODELS.build("VisualResNet34", embed_dim=512)


def test_trunk_is_torchvision_resnet34_with_embedding_head(model):
    reference = torchvision.models.resnet34(weights=None).state_dict()
    ours = model.trunk.state_dict()
    trunk_keys = [k for k in ours if not k.startswith("fc.")]
    assert trunk_keys == [k for k in reference if not k.startswith("fc.")]
    assert all(ours[k].shape == reference[k].shape for k in trunk_keys)
    assert isinstance(model.trunk.fc[0], torch.nn.Linear) and model.trunk.fc[0].weight.shape == (512, 512)
    assert isinstance(model.trunk.fc[1], torch.nn.BatchNorm1d)


@pytest.mark.parametrize("size", [(32, 32), (48, 40), (112, 112)])
def test_forward_any_size_from_32(model, size):
    model.train()
    out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 512)
    out.sum().backward()


def test_size_errors(model):
    with pytest.raises(ValueError, match="at least 32x32 pixels, got 31x64"):
        model(torch.randn(2, 3, 31, 64))
    with pytest.raises(ValueError, match=r"\(batch, 3, height, width\)"):
        model(torch.randn(2, 1, 64, 64))


def test_segment_embedding_is_mean_of_frame_embeddings(model):
    model.eval()
    frames = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        seg = segment_embedding(model, frames)
        want = torch.stack([model(frames[b]).mean(0) for b in range(2)])
    assert seg.shape == (2, 512)
    torch.testing.assert_close(seg, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="frames, 3, height, width"):
        segment_embedding(model, torch.randn(2, 3, 32, 32))


def test_small_embedding_dim():
    assert VisualResNet34(embed_dim=64).eval()(torch.randn(1, 3, 32, 32)).shape == (1, 64)
