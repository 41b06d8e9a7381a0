"""Fusion teachers: shapes, gate range, augmentation only in training, and that fusion beats each modality."""
import pytest
import torch
import torch.nn.functional as F

from wespeaker_avkd.models.fusion_base import EmbeddingAugment
from wespeaker_avkd.models.projections import ArcMarginProduct
from wespeaker_avkd.registry import FUSIONS


def test_registered_and_default_shapes():
    assert {"gate", "concat", "attention"} <= set(FUSIONS.names())
    torch.manual_seed(0)
    audio, visual = torch.randn(4, 512), torch.randn(4, 512)
    for name in ("gate", "concat", "attention"):
        assert FUSIONS.build(name)(audio, visual).shape == (4, 512)


def test_gate_values_lie_in_open_unit_interval_and_mix_projections():
    torch.manual_seed(0)
    fusion = FUSIONS.build("gate", audio_dim=6, visual_dim=5, embed_dim=7).eval()
    audio, visual = 10 * torch.randn(9, 6), torch.randn(9, 5)
    fused, z = fusion(audio, visual, return_gate=True)
    assert z.shape == (9, 7) and (z > 0).all() and (z < 1).all()
    a, v = F.normalize(audio, dim=1), F.normalize(visual, dim=1)  # inputs are L2-normalised first
    torch.testing.assert_close(fused, z * fusion.visual_proj(v) + (1 - z) * fusion.audio_proj(a))
    torch.testing.assert_close(fusion.gate_values(audio, visual), z)
    assert fusion.gate_net[0].weight.shape == (8, 11) and fusion.gate_net[3].weight.shape == (7, 8)


def test_attention_weights_are_a_softmax_over_two_modalities():
    torch.manual_seed(0)
    fusion = FUSIONS.build("attention", audio_dim=6, visual_dim=5, embed_dim=7)
    fused, w = fusion(torch.randn(3, 6), torch.randn(3, 5), return_gate=True)
    assert fused.shape == (3, 7) and w.shape == (3, 2)
    torch.testing.assert_close(w.sum(1), torch.ones(3))
    assert FUSIONS.build("concat", audio_dim=6, visual_dim=5, embed_dim=7).gate_values(
        torch.randn(3, 6), torch.randn(3, 5)) is None


def test_input_errors_name_the_modality():
    fusion = FUSIONS.build("gate", audio_dim=6, visual_dim=5, embed_dim=7)
    with pytest.raises(ValueError, match=r"audio embeddings must be \(batch, 6\), got \(3, 5\)"):
        fusion(torch.randn(3, 5), torch.randn(3, 5))  # swapped order: audio comes first
    with pytest.raises(ValueError, match="3 audio but 2 visual"):
        fusion(torch.randn(3, 6), torch.randn(2, 5))


def test_augmentation_is_off_by_default_and_only_in_training():
    torch.manual_seed(0)
    audio, visual = torch.randn(32, 6), torch.randn(32, 5)
    plain = FUSIONS.build("gate", audio_dim=6, visual_dim=5, embed_dim=7)
    augmented = FUSIONS.build("gate", audio_dim=6, visual_dim=5, embed_dim=7, aug_prob=1.0)
    augmented.load_state_dict(plain.state_dict())
    plain.eval(), augmented.eval()
    torch.testing.assert_close(augmented(audio, visual), plain(audio, visual))
    plain.train(), augmented.train()
    assert not torch.allclose(augmented(audio, visual), plain(audio, visual))


def test_embedding_augment_modes():
    torch.manual_seed(0)
    audio, visual = torch.randn(200, 16) + 1.0, torch.randn(200, 16) + 1.0
    drop = EmbeddingAugment(prob=1.0, modes=("drop",)).train()
    a, v = drop(audio, visual)
    a_zero, v_zero = (a == 0).all(1), (v == 0).all(1)
    assert (a_zero ^ v_zero).all() and 40 < int(a_zero.sum()) < 160  # exactly one modality, either one
    assert torch.equal(a[~a_zero], audio[~a_zero]) and torch.equal(v[~v_zero], visual[~v_zero])
    a, _ = EmbeddingAugment(prob=1.0, modes=("perturb",), perturb_std=0.01).train()(audio, visual)
    changed = (a != audio).any(1)
    assert changed.any() and (a - audio).abs().max() < 0.1
    a, _ = EmbeddingAugment(prob=1.0, modes=("noise",)).train()(audio, visual)
    changed = (a != audio).any(1)
    assert abs(float(a[changed].mean())) < 0.3  # mean ~1 of the original is gone: replaced by zero-mean noise
    none = EmbeddingAugment(prob=0.5).eval()
    assert none(audio, visual)[0] is audio
    with pytest.raises(ValueError, match="aug_modes"):
        EmbeddingAugment(prob=0.5, modes=("mixup",))
    with pytest.raises(ValueError, match="aug_prob"):
        EmbeddingAugment(prob=1.5)


def _ambiguous_task(n, gen):
    """4 classes: audio cannot tell 0 from 1, visual cannot tell 2 from 3 (each alone caps at ~75 %)."""
    audio_centres = torch.randn(3, 16, generator=gen)[[0, 0, 1, 2]]
    visual_centres = torch.randn(3, 16, generator=gen)[[0, 1, 2, 2]]
    return audio_centres, visual_centres


def _sample(centres, label, gen):
    a_c, v_c = centres
    return (a_c[label] + 0.25 * torch.randn(len(label), 16, generator=gen),
            v_c[label] + 0.25 * torch.randn(len(label), 16, generator=gen))


def _nearest_centre_accuracy(train_x, train_y, test_x, test_y):
    centres = torch.stack([F.normalize(train_x[train_y == c], dim=1).mean(0) for c in range(4)])
    pred = (F.normalize(test_x, dim=1) @ F.normalize(centres, dim=1).t()).argmax(1)
    return float((pred == test_y).float().mean())


@pytest.mark.parametrize("name", ["gate", "concat", "attention"])
def test_trained_fusion_beats_each_modality_alone(name):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    centres = _ambiguous_task(4, gen)
    y_train, y_test = torch.randint(0, 4, (512,), generator=gen), torch.randint(0, 4, (512,), generator=gen)
    (a_train, v_train), (a_test, v_test) = _sample(centres, y_train, gen), _sample(centres, y_test, gen)
    audio_acc = _nearest_centre_accuracy(a_train, y_train, a_test, y_test)
    visual_acc = _nearest_centre_accuracy(v_train, y_train, v_test, y_test)
    assert max(audio_acc, visual_acc) < 0.85

    fusion = FUSIONS.build(name, audio_dim=16, visual_dim=16, embed_dim=16)
    head = ArcMarginProduct(16, 4, scale=16.0, margin=0.2)
    opt = torch.optim.Adam(list(fusion.parameters()) + list(head.parameters()), lr=0.02)
    for step in range(60):
        idx = torch.randint(0, 512, (64,), generator=gen)
        loss = F.cross_entropy(head(fusion(a_train[idx], v_train[idx]), y_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    fusion.eval()
    with torch.no_grad():
        pred = head.cosine(fusion(a_test, v_test)).argmax(1)
    fused_acc = float((pred == y_test).float().mean())
    assert fused_acc > max(audio_acc, visual_acc) + 0.1, (fused_acc, audio_acc, visual_acc)
    if name == "gate":
        z = fusion.gate_values(a_test, v_test)
        assert (z > 0).all() and (z < 1).all()
