"""Loaders: shapes, CMN, labels, determinism (seed, epoch, workers), DDP sharding, KD/fusion embeddings."""
import os
import shutil

import kaldiio
import numpy as np
import pytest
import torch
from loader_sections import build_eval_loader, build_train_loader

from wespeaker_avkd.data.augment import random_chunk
from wespeaker_avkd.data.datasets import even_indices, load_face
from wespeaker_avkd.data.fbank import apply_cmn, compute_fbank, load_wav
from wespeaker_avkd.data.features import extract_fbank_dir
from wespeaker_avkd.data.kaldi_dir import make_spk2id, read_multi_table, read_table
from wespeaker_avkd.data.loaders import set_loader_epoch
from wespeaker_avkd.data.samplers import SeededBatchSampler, seeded_rng

AUDIO_ARGS = {"feat_source": "wav", "num_frms": [50, 80]}
VIS_ARGS = {"image_size": 40, "num_eval_frames": 3, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


@pytest.fixture(scope="module")
def train_dir(small_corpus, tmp_path_factory):
    """A copy of the small corpus's training tables (tests may add feats.scp to it)."""
    d = tmp_path_factory.mktemp("train_copy")
    for name in ("wav.scp", "utt2spk", "spk2utt", "faces.scp"):
        shutil.copy(small_corpus[0] / "train" / name, d / name)
    return d


def _spk2id(d):
    return make_spk2id(read_table(os.path.join(d, "utt2spk")).values())


def _batches(loader, epoch):
    set_loader_epoch(loader, epoch)
    return list(loader)


def test_audio_train_batches(train_dir):
    spk2id = _spk2id(train_dir)
    utt2spk = read_table(train_dir / "utt2spk")
    loader = build_train_loader("audio", str(train_dir), spk2id, AUDIO_ARGS, {"batch_size": 16}, seed=3)
    batches = _batches(loader, 0)
    assert len(batches) == len(utt2spk) // 16  # drop_last by default
    lengths = set()
    for b in batches:
        x = b["inputs"]
        assert x.dim() == 3 and x.shape[0] == 16 and x.shape[2] == 40 and 50 <= x.shape[1] <= 80
        lengths.add(x.shape[1])
        assert torch.allclose(x.mean(1), torch.zeros(16, 40), atol=1e-3)  # CMN on the chunk
        assert b["labels"].tolist() == [spk2id[utt2spk[k]] for k in b["keys"]]
        assert "teacher_emb" not in b
    assert len(lengths) > 1  # one length per batch, drawn per batch
    # The chunk is the CMN'd fbank of a (T - 1) * 160 + 400-sample window of the wave, at the start that the
    # sampler's per-item seed selects.
    index, frames, item_seed = next(iter(loader.batch_sampler))[0]
    key, x0 = batches[0]["keys"][0], batches[0]["inputs"][0]
    wave = load_wav(read_table(train_dir / "wav.scp")[key])[0].numpy()
    crop = random_chunk(wave, (frames - 1) * 160 + 400, seeded_rng(item_seed))
    assert torch.allclose(apply_cmn(compute_fbank(torch.from_numpy(crop))), x0, atol=1e-5)


def test_determinism_epochs_and_workers(train_dir):
    spk2id = _spk2id(train_dir)

    def make(nw):
        return build_train_loader("audio", str(train_dir), spk2id, AUDIO_ARGS, {"batch_size": 8, "num_workers": nw},
                                  seed=11)

    a0, a1 = _batches(make(0), 0), _batches(make(0), 1)
    b0 = _batches(make(2), 0)
    assert [b["keys"] for b in a0] == [b["keys"] for b in b0]
    assert all(torch.equal(x["inputs"], y["inputs"]) for x, y in zip(a0, b0))
    assert [b["keys"] for b in a0] != [b["keys"] for b in a1]
    assert sorted(k for b in a0 for k in b["keys"]) != [] and len({k for b in a0 for k in b["keys"]}) == 8 * len(a0)


def test_ddp_sharding():
    n = 103
    samplers = [SeededBatchSampler(n, 10, seed=5, rank=r, world_size=3, drop_last=False) for r in range(3)]
    for s in samplers:
        s.set_epoch(2)
    shards = [[i for batch in s for i, _, _ in batch] for s in samplers]
    assert len({len(list(s)) for s in samplers}) == 1  # every rank the same number of batches
    assert set().union(*map(set, shards)) == set(range(n))
    assert sum(map(len, shards)) == 105  # padded by wrapping to a multiple of world_size
    assert shards[0] == [i for batch in samplers[0] for i, _, _ in batch]  # re-iterable, same epoch -> same


def test_random_chunk_repeats_short():
    data = np.arange(5)[:, None]
    out = random_chunk(data, 12, np.random.default_rng(0))
    assert out[:, 0].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    long = random_chunk(np.arange(100)[:, None], 10, np.random.default_rng(0))[:, 0]
    assert long.tolist() == list(range(long[0], long[0] + 10))


def test_feats_source_matches_wav_source(train_dir, tmp_path):
    extract_fbank_dir(str(train_dir), str(tmp_path / "fbank"), nj=2, progress=False)
    args_f = {"feat_source": "feats"}
    ev_f = build_eval_loader("audio", str(train_dir), args_f, {"batch_size": 4})
    ev_w = build_eval_loader("audio", str(train_dir), {"feat_source": "wav"}, {"batch_size": 4})
    for k, (bf, bw) in enumerate(zip(ev_f, ev_w)):
        # whole utterances: a batch holds only utterances of equal frame count (one tensor, no padding)
        assert bf["keys"] == bw["keys"] and bf["inputs"].shape == bw["inputs"].shape
        assert bf["inputs"].shape[0] == len(bf["keys"]) <= 4
        assert torch.allclose(bf["inputs"], bw["inputs"], atol=1e-4)
        if k == 5:
            break
    # Resumable: a removed block is recomputed, the others are kept as they are.
    scps = sorted(p for p in os.listdir(tmp_path / "fbank") if p.startswith("raw_fbank") and p.endswith(".scp"))
    kept = {p: os.path.getmtime(tmp_path / "fbank" / p) for p in scps}
    os.remove(tmp_path / "fbank" / scps[0])
    table = extract_fbank_dir(str(train_dir), str(tmp_path / "fbank"), nj=2, progress=False)
    assert len(table) == len(read_table(train_dir / "wav.scp"))
    assert all(os.path.getmtime(tmp_path / "fbank" / p) == t for p, t in kept.items() if p != scps[0])
    train = build_train_loader("audio", str(train_dir), _spk2id(train_dir), {"num_frms": [30, 30]},
                               {"batch_size": 4}, seed=0)
    assert next(iter(train))["inputs"].shape == (4, 30, 40)
    os.remove(train_dir / "feats.scp")


def test_visual_loaders(train_dir):
    faces = read_multi_table(train_dir / "faces.scp")
    loader = build_train_loader("visual", str(train_dir), _spk2id(train_dir), VIS_ARGS, {"batch_size": 6}, seed=1)
    b = _batches(loader, 0)[0]
    assert b["inputs"].shape == (6, 3, 40, 40)
    mean, std = torch.tensor(VIS_ARGS["mean"]).view(3, 1, 1), torch.tensor(VIS_ARGS["std"]).view(3, 1, 1)
    for key, x in zip(b["keys"], b["inputs"]):
        cands = [(load_face(p, 40) - mean) / std for p in faces[key]]
        assert any(torch.allclose(x, c) for c in cands)  # one of the segment's frames
    ev = next(iter(build_eval_loader("visual", str(train_dir), VIS_ARGS, {"batch_size": 5})))
    assert ev["inputs"].shape == (5, 3, 3, 40, 40) and "labels" not in ev
    key = ev["keys"][0]
    want = [faces[key][i] for i in even_indices(len(faces[key]), 3)]
    assert torch.allclose(ev["inputs"][0, 2], (load_face(want[2], 40) - mean) / std)
    assert even_indices(10, 3) == [0, 4, 9] and even_indices(2, 3) == [0, 0, 1] and even_indices(7, 1) == [3]


def _write_emb(path, keys, dim, seed):
    rng = np.random.default_rng(seed)
    table = {k: rng.standard_normal(dim).astype(np.float32) for k in keys}
    kaldiio.save_ark(str(path).replace(".scp", ".ark"), table, scp=str(path))
    return table


def test_teacher_and_fusion_embeddings(train_dir, tmp_path):
    utts = sorted(read_table(train_dir / "utt2spk"))
    teacher = _write_emb(tmp_path / "teacher.scp", utts, 16, 0)
    loader = build_train_loader("visual", str(train_dir), _spk2id(train_dir), VIS_ARGS, {"batch_size": 4}, seed=0,
                                teacher_scp=str(tmp_path / "teacher.scp"))
    b = next(iter(loader))
    assert b["teacher_emb"].shape == (4, 16) and b["teacher_emb"].dtype == torch.float32
    assert all(np.allclose(b["teacher_emb"][i].numpy(), teacher[k]) for i, k in enumerate(b["keys"]))
    _write_emb(tmp_path / "partial.scp", utts[1:], 16, 0)
    with pytest.raises(KeyError, match=f"teacher embedding missing for utterance '{utts[0]}'"):
        build_train_loader("audio", str(train_dir), _spk2id(train_dir), AUDIO_ARGS, {"batch_size": 4}, seed=0,
                           teacher_scp=str(tmp_path / "partial.scp"))
    a = _write_emb(tmp_path / "a.scp", utts, 12, 1)
    v = _write_emb(tmp_path / "v.scp", utts, 8, 2)
    scps = {"audio": str(tmp_path / "a.scp"), "visual": str(tmp_path / "v.scp")}
    fb = next(iter(build_train_loader("fusion", str(train_dir), _spk2id(train_dir), {}, {"batch_size": 4},
                                      seed=0, embedding_scps=scps)))
    xa, xv = fb["inputs"]
    assert xa.shape == (4, 12) and xv.shape == (4, 8) and fb["labels"].shape == (4,)
    assert np.allclose(xa[1].numpy(), a[fb["keys"][1]]) and np.allclose(xv[1].numpy(), v[fb["keys"][1]])
    ev = next(iter(build_eval_loader("fusion", str(train_dir), {}, {"batch_size": 3}, embedding_scps=scps)))
    assert ev["keys"] == utts[:3] and ev["inputs"][0].shape == (3, 12)


def test_unknown_speaker_is_an_error(train_dir):
    spk2id = _spk2id(train_dir)
    dropped = sorted(spk2id)[0]
    del spk2id[dropped]
    with pytest.raises(KeyError, match=f"speaker '{dropped}'"):
        build_train_loader("audio", str(train_dir), spk2id, AUDIO_ARGS, {"batch_size": 4}, seed=0)
