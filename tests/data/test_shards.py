"""Tar shards: WeSpeaker's member layout, round trips against the raw loaders, the DDP x worker split, resumable
writing, WeSpeaker-written shards, and training from shards vs raw files."""
import io
import json
import os
import shutil
import tarfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from loader_sections import build_eval_loader, build_train_loader, eval_input_files

from wespeaker_avkd.data import shard_writer, shards
from wespeaker_avkd.data.features import extract_fbank_dir
from wespeaker_avkd.data.kaldi_dir import make_spk2id, read_multi_table, read_table, write_table
from wespeaker_avkd.data.loaders import set_loader_epoch
from wespeaker_avkd.data.shard_writer import make_shards
from wespeaker_avkd.data.shards import ShardError, epoch_batches
from wespeaker_avkd.data.shards import readers as shard_readers
from wespeaker_avkd.data.toy_corpus import generate_corpus, load_config
from wespeaker_avkd.kinds import kind_of

AUDIO = {"feat_source": "wav", "num_frms": [20, 30], "fbank_args": {"dither": 1.0}}
VISUAL = {"image_size": 24, "num_eval_frames": 2, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
TABLES = ("wav.scp", "utt2spk", "spk2utt", "faces.scp")


# 4 training identities x 2 videos x 2 segments: 16 utterances (even: 2 ranks get equal parts unpadded)
CORPUS = {"layout": {"train_speakers": 4, "eval_speakers": 4, "dev_speakers": 3, "videos_per_speaker": [2, 2],
                     "segments_per_video": [2, 2]},
          "audio": {"duration": [0.4, 0.6]}, "face": {"image_size": 32, "frames_per_segment": 3},
          "trials": {"O_max_targets": 10, "E_max_targets": 20, "H_max_targets": 20, "H_neighbours": 1},
          "dev_trials": {"O_max_targets": 10, "E_max_targets": 20, "H_max_targets": 20, "H_neighbours": 1}}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A tiny corpus' train part copied (tables only) with fbank, packed 5 utterances a shard."""
    root = tmp_path_factory.mktemp("shard_corpus")
    generate_corpus(str(root / "corpus"), load_config(None, CORPUS), num_workers=1, progress=False)
    train = root / "train"
    train.mkdir()
    for name in TABLES:
        shutil.copy(root / "corpus" / "train" / name, train / name)
    extract_fbank_dir(str(train), str(root / "fbank"), nj=1, progress=False)
    make_shards(str(train), str(root / "shards"), utts_per_shard=5, progress=False)
    return train


def _spk2id(d):
    return make_spk2id(read_table(os.path.join(d, "utt2spk")).values())


def _batches(loader, epoch=1):
    set_loader_epoch(loader, epoch)
    return list(loader)


def _same_batches(a, b):
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert x["keys"] == y["keys"]
        for key in ("labels", "teacher_emb"):
            if key in x:
                assert torch.equal(x[key], y[key])
        xs, ys = (x["inputs"], y["inputs"]) if isinstance(x["inputs"], list) else ([x["inputs"]], [y["inputs"]])
        assert len(xs) == len(ys) and all(torch.equal(p, q) for p, q in zip(xs, ys))


def test_members_follow_wespeaker_layout(corpus):
    utt2spk = read_table(corpus / "utt2spk")
    faces = read_multi_table(corpus / "faces.scp")
    paths = shards.read_shard_list(str(corpus / "shard.list"))
    assert len(paths) == -(-len(utt2spk) // 5)
    seen = []
    for path in paths:
        with tarfile.open(path) as tar:
            names = [m.name for m in tar.getmembers()]
            for m in tar.getmembers():
                assert m.mtime == 0 and m.uid == 0
            # WeSpeaker's grouping: consecutive members, key = name up to the last dot
            groups = []
            for name in names:
                key, postfix = name[:name.rfind(".")], name[name.rfind(".") + 1:]
                if not groups or groups[-1][0] != key:
                    groups.append((key, []))
                groups[-1][1].append(postfix)
            for key, postfixes in groups:
                nfaces = len(faces[key])
                assert postfixes == ["spk", "wav", "npy"] + [f"face{i:03d}" for i in range(nfaces)]
                assert tar.extractfile(f"{key}.spk").read().decode() == utt2spk[key]
                assert "/" in key  # VoxCeleb-style keys keep their slashes
                seen.append(key)
            first = groups[0][0]
            with open(read_table(corpus / "wav.scp")[first], "rb") as f:
                assert tar.extractfile(f"{first}.wav").read() == f.read()
    assert seen == sorted(utt2spk)  # sorted key order, 5 a shard


def test_index_file_matches_the_tar_headers(corpus, tmp_path):
    paths = shards.read_shard_list(str(corpus / "shard.list"))
    for i, path in enumerate(paths):
        assert shards.read_index_file(path, i) == shards.index_shard(path, i)  # the writer's offsets are right
    copy = tmp_path / "copy.tar"
    shutil.copy(paths[0], copy)
    shutil.copy(paths[0] + shards.INDEX_SUFFIX, str(copy) + shards.INDEX_SUFFIX)
    assert shards.read_index_file(str(copy), 0) is None  # another mtime: the tar may differ, it is scanned


@pytest.mark.parametrize("modality,args", [("audio", AUDIO), ("audio", {**AUDIO, "feat_source": "feats"}),
                                           ("visual", VISUAL)])
def test_eval_from_shards_equals_raw(corpus, modality, args):
    dl = {"batch_size": 4}
    raw = list(build_eval_loader(modality, str(corpus), args, dl))
    shard = list(build_eval_loader(modality, str(corpus), {**args, "data_type": "shard"}, dl))
    _same_batches(raw, shard)
    files = eval_input_files(modality, str(corpus), {**args, "data_type": "shard"})
    assert files == sorted(shards.read_shard_list(str(corpus / "shard.list")))


@pytest.mark.parametrize("modality,args,workers", [("audio", AUDIO, 0), ("audio", AUDIO, 2),
                                                   ("audio", {**AUDIO, "feat_source": "feats"}, 0),
                                                   ("visual", VISUAL, 0)])
def test_unshuffled_training_from_shards_equals_map_loader(corpus, modality, args, workers):
    """Without shuffling, one rank reads the sorted shards in order: the very batches of the map loader (chunk
    lengths, crops, dither, face frames), whatever the number of workers."""
    args = {**args, "shuffle": False}
    dl = {"batch_size": 3, "num_workers": workers, "drop_last": False}
    raw = build_train_loader(modality, str(corpus), _spk2id(corpus), args, dl, seed=7)
    shard = build_train_loader(modality, str(corpus), _spk2id(corpus), {**args, "data_type": "shard"}, dl, seed=7)
    assert len(raw) == len(shard)
    for epoch in (1, 2):
        _same_batches(_batches(raw, epoch), _batches(shard, epoch))


def _worker_keys(dataset, rank_workers, monkeypatch):
    """Keys each (worker) of a rank's dataset yields, iterating it as DataLoader worker w of n would."""
    out = []
    for w in range(rank_workers):
        monkeypatch.setattr(shard_readers, "get_worker_info",
                            lambda w=w: SimpleNamespace(id=w, num_workers=rank_workers))
        out.append([key for batch in dataset for key in batch["keys"]])
    return out


@pytest.mark.parametrize("shuffle", [False, True])
def test_two_ranks_two_workers_see_every_utterance_once(corpus, shuffle, monkeypatch):
    utts = sorted(read_table(corpus / "utt2spk"))
    assert len(utts) % 2 == 0  # equal rank parts without padding
    args = {**AUDIO, "data_type": "shard", "shuffle": shuffle, "shuffle_args": {"shuffle_size": 4}}
    dl = {"batch_size": 2, "drop_last": False}
    for epoch in (1, 2):
        seen = []
        per_rank = []
        for rank in (0, 1):
            loader = build_train_loader("audio", str(corpus), _spk2id(corpus), args, dl, seed=3, rank=rank,
                                        world_size=2)
            set_loader_epoch(loader, epoch)
            parts = _worker_keys(loader.dataset, 2, monkeypatch)
            assert all(parts) and not set(parts[0]) & set(parts[1])
            per_rank.append(sum(map(len, parts)))
            seen += parts[0] + parts[1]
        assert sorted(seen) == utts  # exactly once per epoch
        assert per_rank[0] == per_rank[1]  # DDP: equal steps


def test_epoch_plan_split_and_padding():
    counts = [5, 5, 3]  # 13 utterances, 2 ranks: 7 each, one wrapped repeat
    for shuffle in (False, True):
        parts = [np.concatenate(epoch_batches(counts, 3, 1, 2, r, 2, shuffle, 4, drop_last=False)) for r in (0, 1)]
        assert len(parts[0]) == len(parts[1]) == 7
        allitems = np.concatenate(parts)
        assert sorted(set(allitems.tolist())) == list(range(13)) and len(allitems) == 14
    a = epoch_batches(counts, 3, 1, 2, 0, 1, True, 4, False)
    b = epoch_batches(counts, 3, 1, 3, 0, 1, True, 4, False)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b))  # each epoch its own order
    assert len(epoch_batches(counts, 3, 1, 2, 0, 1, False, 4, drop_last=True)) == 4


def test_workers_give_single_process_order(corpus):
    args = {**AUDIO, "data_type": "shard", "shuffle_args": {"shuffle_size": 4}}
    one = build_train_loader("audio", str(corpus), _spk2id(corpus), args, {"batch_size": 2}, seed=5)
    two = build_train_loader("audio", str(corpus), _spk2id(corpus), args, {"batch_size": 2, "num_workers": 2},
                             seed=5)
    _same_batches(_batches(one, 3), _batches(two, 3))


def _tree(d):
    """Every file of a shard folder: the bytes, for the index files their content less the tar's mtime."""
    out = {}
    for name in sorted(os.listdir(d)):
        data = open(os.path.join(d, name), "rb").read()
        if name.endswith(shards.INDEX_SUFFIX):
            record = json.loads(data)
            data = (record["tar"][0], record["utts"])
        out[name] = data
    return out


def test_interrupted_write_resumes_to_the_same_files(corpus, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    for name in TABLES + ("feats.scp",):
        shutil.copy(corpus / name, data / name)
    whole = tmp_path / "whole"
    make_shards(str(data), str(whole), list_path=str(tmp_path / "whole.list"), utts_per_shard=4, nj=2,
                progress=False)  # side by side: the same bytes as one process

    real = shard_writer.write_shard
    calls = []

    def dying(path, utts, wav_scp):
        calls.append(path)
        if len(calls) == 3:
            real(path, utts, wav_scp)  # the tar is complete, the process dies before its index and stamp
            raise KeyboardInterrupt
        return real(path, utts, wav_scp)

    monkeypatch.setattr(shard_writer, "write_shard", dying)
    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        make_shards(str(data), str(part), list_path=str(tmp_path / "part.list"), utts_per_shard=4, progress=False)
    first = os.stat(part / "shard_000000.tar").st_ino
    (part / "shard_000003.tar").write_bytes(b"half a tar")  # a writer killed mid-way (no stamp)
    (part / ".shard_000004.tar.k1ll3d.tmp").write_bytes(b"half")  # a writer killed inside atomic_write
    calls.clear()
    make_shards(str(data), str(part), list_path=str(tmp_path / "part.list"), utts_per_shard=4, progress=False)
    assert _tree(part) == _tree(whole)
    assert os.stat(part / "shard_000000.tar").st_ino == first  # finished shards were kept
    assert os.path.basename(calls[0]) == "shard_000002.tar"
    rerun = sorted(calls)
    calls.clear()
    make_shards(str(data), str(part), list_path=str(tmp_path / "part.list"), utts_per_shard=4, progress=False)
    assert not calls and rerun  # everything current: nothing rewritten
    os.utime(read_table(data / "wav.scp")[sorted(read_table(data / "utt2spk"))[0]], ns=(1, 1))
    make_shards(str(data), str(part), list_path=str(tmp_path / "part.list"), utts_per_shard=4, progress=False)
    assert [os.path.basename(c) for c in calls] == ["shard_000000.tar"]  # a changed input rewrites its shard


def _wespeaker_shard(corpus, out, keys):
    """A shard as WeSpeaker's tools/make_shard_list.py writes one: per utterance `<key>.spk` then `<key>.wav`,
    default tar member metadata; keys as WeSpeaker's VoxCeleb preparation makes them (ending in '.wav')."""
    wav = read_table(corpus / "wav.scp")
    utt2spk = read_table(corpus / "utt2spk")
    with tarfile.open(out, "w") as tar:
        for key in keys:
            for suffix, data in (("spk", utt2spk[key].encode("utf8")), ("wav", open(wav[key], "rb").read())):
                info = tarfile.TarInfo(f"{key}.wav.{suffix}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_wespeaker_written_shards_train_and_extract(corpus, tmp_path):
    utts = sorted(read_table(corpus / "utt2spk"))
    data = tmp_path / "ws"
    data.mkdir()
    paths = []
    for i in range(0, len(utts), 4):
        paths.append(str(tmp_path / f"shards_{i // 4:09d}.tar"))
        _wespeaker_shard(corpus, paths[-1], utts[i:i + 4])
    (data / "shard.list").write_text("".join(p + "\n" for p in paths))
    utt2spk = read_table(corpus / "utt2spk")
    write_table(data / "utt2spk", {f"{u}.wav": utt2spk[u] for u in utts})
    args = {**AUDIO, "data_type": "shard"}
    loader = build_train_loader("audio", str(data), _spk2id(data), args, {"batch_size": 3}, seed=1)
    batches = _batches(loader)
    assert len(batches) == len(utts) // 3 and batches[0]["inputs"].shape[0] == 3
    assert all(k.endswith(".wav") and k[:-4] in utt2spk for b in batches for k in b["keys"])
    # extraction reads them whole: the same fbank as from the raw files
    ws = {k[:-4]: x for b in build_eval_loader("audio", str(data), args, {"batch_size": 1}) for k, x in
          zip(b["keys"], b["inputs"])}
    raw = {k: x for b in build_eval_loader("audio", str(corpus), AUDIO, {"batch_size": 1}) for k, x in
           zip(b["keys"], b["inputs"])}
    assert ws.keys() == raw.keys() and all(torch.equal(ws[k], raw[k]) for k in raw)


def test_stale_or_bad_shards_are_named(corpus, tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    utt2spk = read_table(corpus / "utt2spk")
    write_table(data / "utt2spk", dict(list(utt2spk.items())[:-1]))
    shutil.copy(corpus / "shard.list", data / "shard.list")
    args = {**AUDIO, "data_type": "shard"}
    with pytest.raises(ShardError, match="not in .*utt2spk.*repack"):
        build_train_loader("audio", str(data), _spk2id(data), args, {"batch_size": 2}, seed=1)
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"\x1f\x8b" + b"not a tar" * 100)
    (data / "shard.list").write_text(f"{bad}\n")
    with pytest.raises(ShardError, match="bad.tar.*not a readable uncompressed tar"):
        build_eval_loader("audio", str(data), args, {"batch_size": 2})
    (data / "shard.list").write_text("")
    with pytest.raises(ShardError, match="names no shard"):
        build_eval_loader("audio", str(data), args, {"batch_size": 2})


def test_data_type_contradicting_feat_source_is_refused():
    from wespeaker_avkd.data.dataset_args import AudioDatasetArgs
    from wespeaker_avkd.utils.schema import ConfigError, Where

    with pytest.raises(ConfigError, match="data_type.*contradicts feat_source 'feats'"):
        AudioDatasetArgs.from_dict({"data_type": "raw", "feat_source": "feats"}, Where("dataset_args", {}))
    assert AudioDatasetArgs.from_dict({"data_type": "shard"}, Where("dataset_args", {})).data_type == "shard"
    with pytest.raises(ConfigError, match="data_type"):
        AudioDatasetArgs.from_dict({"data_type": "lmdb"}, Where("dataset_args", {}))


@pytest.mark.slow
@pytest.mark.parametrize("modality", ["audio", "visual"])
def test_training_from_shards_and_raw_files_gives_the_same_embeddings(corpus, tmp_path, modality):
    """Unshuffled training (the equal path: same batches) from shards and from raw files gives the same
    checkpoint, and each model embeds the same from shards as from raw files."""
    from wespeaker_avkd.config.train_config import load_config as load_train_config
    from wespeaker_avkd.inference.extract import extract_embeddings
    from wespeaker_avkd.train.trainer import run_training
    from wespeaker_avkd.utils.embedding_table import load_embeddings

    conf = os.path.join(os.path.dirname(__file__), "..", "..", "egs", "voxceleb", "v_kd", "conf", "tiny",
                        f"{modality}.yaml")
    embeddings = {}
    for data_type in ("raw", "shard"):
        cfg = load_train_config(conf)
        cfg.update(train_data=str(corpus), num_epochs=1, tensorboard=False, dev_eval=None,
                   dataloader_args={"batch_size": 4, "num_workers": 0, "drop_last": True})
        cfg["dataset_args"] = {**cfg["dataset_args"], "shuffle": False, "data_type": data_type}
        if kind_of(modality).takes_fbank:
            cfg["dataset_args"]["feat_source"] = "wav"
        exp = tmp_path / data_type
        run_training(cfg, str(exp), device="cpu", num_threads=1, progress=False)
        scp = extract_embeddings(str(exp), str(corpus), str(exp / "emb"), progress=False)
        embeddings[data_type] = load_embeddings(scp)
    state = {d: torch.load(tmp_path / d / "models" / "avg_model.pt", weights_only=True) for d in ("raw", "shard")}
    assert state["raw"].keys() == state["shard"].keys()
    assert all(torch.equal(state["raw"][k], state["shard"][k]) for k in state["raw"])
    (keys_raw, emb_raw), (keys_shard, emb_shard) = embeddings["raw"], embeddings["shard"]
    assert keys_raw == keys_shard and np.array_equal(emb_raw, emb_shard)


def test_shard_list_names_regular_files_only(tmp_path):
    """A pipe (or a missing file) in a shard list is refused naming the list and line, before tarfile opens it."""
    fifo = tmp_path / "pipe.tar"
    os.mkfifo(fifo)
    listing = tmp_path / "shard.list"
    listing.write_text("\npipe.tar\n")
    with pytest.raises(ShardError, match=r"shard.list:2: 'pipe.tar' is not a regular file"):
        shards.read_shard_list(str(listing))
    listing.write_text("https://example.org/a.tar\n")
    with pytest.raises(ShardError, match=r"shard.list:1: .* is not a regular file"):
        shards.read_shard_list(str(listing))
