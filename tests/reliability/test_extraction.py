"""Extraction is keyed by content, survives interruption, batches equal-length utterances exactly, runs job files."""
import os

import numpy as np
import pytest
import torch
import torch.nn as nn

from wespeaker_avkd.inference.extract import ModelCache, embed_batch, extract_embeddings
from wespeaker_avkd.inference.jobs import read_jobs, run_jobs
from wespeaker_avkd.registry import MODELS
from wespeaker_avkd.scoring import load_embeddings

MODEL = "TinyConvExtractNet"

if MODEL not in MODELS._classes:
    @MODELS.register(MODEL)
    class TinyConvExtractNet(nn.Module):
        """(B, T, F) -> (B, D): a temporal convolution + mean/std pooling (length matters, unlike a plain mean)."""

        def __init__(self, feat_dim: int = 6, embed_dim: int = 8) -> None:
            super().__init__()
            self.embed_dim = embed_dim
            self.conv = nn.Conv1d(feat_dim, 16, 3)
            self.fc = nn.Linear(32, embed_dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.conv(x.transpose(1, 2)))
            return self.fc(torch.cat([h.mean(2), h.std(2)], 1))


def _write_data(tiny, path, lengths, seed=0):
    """A feats data dir (random features of the given frame counts, 3 speakers) -> (dir, {utt: matrix})."""
    return tiny.feats_dir(path, tiny.speakers(len(lengths), 3), lengths, seed)


def _write_exp(tiny, path, data, eval_batch=16):
    """An untrained TinyConvExtractNet exp dir over `data` -> (dir, net)."""
    cfg = {"modality": "audio", "model": MODEL, "model_args": {"feat_dim": 6, "embed_dim": 8},
           "projection_args": {"project_type": "arc_margin", "scale": 16.0}, "train_data": data,
           "dataset_args": {"feat_source": "feats"}, "eval_dataloader_args": {"batch_size": eval_batch}}
    return tiny.untrained_exp(path, cfg, [f"spk{i}" for i in range(3)])


def _reference(net, feats):
    with torch.no_grad():
        return {k: net.encoder(torch.from_numpy(m - m.mean(0))[None])[0].numpy() for k, m in feats.items()}


def _table(scp):
    keys, emb = load_embeddings(scp)
    return dict(zip(keys, emb))


def test_changed_data_dir_content_gives_new_embeddings_and_mean(tmp_path, tiny_dirs):
    data, feats = _write_data(tiny_dirs, tmp_path / "data", [20, 21, 22, 23, 24, 25])
    exp, net = _write_exp(tiny_dirs, tmp_path / "exp", data)
    out = os.path.join(exp, "embeddings", "train")
    scp = extract_embeddings(exp, data, out, mean_vec=True, progress=False)
    mean_before = np.load(os.path.join(out, "mean_vec.npy"))
    assert len(_table(scp)) == 6
    # same path, other content: a subset of the utterances (as a re-made train_mean subset would be)
    for name in ("feats.scp", "utt2spk"):
        lines = open(os.path.join(data, name)).read().splitlines()[:3]
        open(os.path.join(data, name), "w").write("\n".join(lines) + "\n")
    scp = extract_embeddings(exp, data, out, mean_vec=True, progress=False)
    table = _table(scp)
    assert sorted(table) == sorted(list(feats)[:3])
    mean_after = np.load(os.path.join(out, "mean_vec.npy"))
    np.testing.assert_allclose(mean_after, np.mean([table[k] for k in table], axis=0), atol=1e-6)
    assert not np.allclose(mean_before, mean_after)


def test_rewritten_feature_ark_behind_the_same_scp_is_noticed(tmp_path, tiny_dirs):
    data, feats = _write_data(tiny_dirs, tmp_path / "data", [20, 20, 30])
    exp, net = _write_exp(tiny_dirs, tmp_path / "exp", data)
    out = os.path.join(exp, "emb")
    first = _table(extract_embeddings(exp, data, out, progress=False))
    scp_text = open(os.path.join(data, "feats.scp")).read()
    _write_data(tiny_dirs, tmp_path / "data", [20, 20, 30], seed=1)  # same keys, lengths and offsets: an identical scp
    assert open(os.path.join(data, "feats.scp")).read() == scp_text
    os.utime(os.path.join(data, "feats.ark"), ns=(1, 1))  # other mtime (a rewrite within one clock tick)
    second = _table(extract_embeddings(exp, data, out, progress=False))
    key = sorted(first)[0]
    assert not np.allclose(first[key], second[key])


class _Interrupt(RuntimeError):
    pass


def _failing_embedder(after):
    calls = []

    def embed(net, modality, inputs, device):
        calls.append(1)
        if len(calls) > after:
            raise _Interrupt("simulated crash in the middle of the extraction")
        return embed_batch(net, modality, inputs, device)

    return embed


@pytest.mark.parametrize("force", [False, True])
def test_interrupted_extraction_leaves_the_previous_result(tmp_path, tiny_dirs, force):
    data, feats = _write_data(tiny_dirs, tmp_path / "data", list(range(20, 32)))
    exp, net = _write_exp(tiny_dirs, tmp_path / "exp", data, eval_batch=1)
    out = os.path.join(exp, "embeddings", "train")
    scp = extract_embeddings(exp, data, out, mean_vec=True, progress=False)
    before = {name: open(os.path.join(out, name), "rb").read() for name in os.listdir(out)}
    table = _table(scp)
    if not force:  # a changed input (an utterance fewer) makes the run redo the extraction ...
        for name in ("feats.scp", "utt2spk"):
            lines = open(os.path.join(data, name)).read().splitlines()[:-1]
            open(os.path.join(data, name), "w").write("\n".join(lines) + "\n")
    with pytest.raises(_Interrupt):  # ... which dies after 3 of its batches
        extract_embeddings(exp, data, out, mean_vec=True, progress=False, force=force,
                           embedder=_failing_embedder(3))
    after = {name: open(os.path.join(out, name), "rb").read() for name in os.listdir(out)}
    assert after == before  # the previous result, byte for byte, and no half-written file beside it
    again = _table(scp)
    assert sorted(again) == sorted(table) and all(np.array_equal(again[k], table[k]) for k in table)


def test_equal_length_batches_match_batch_of_one(tmp_path, tiny_dirs):
    lengths = [20, 35, 20, 20, 41, 35, 20, 7, 35, 20, 41, 5]  # groups of equal frame counts, and singletons
    data, feats = _write_data(tiny_dirs, tmp_path / "data", lengths)
    ref = _reference(_write_exp(tiny_dirs, tmp_path / "one", data, eval_batch=1)[1], feats)
    results = {}
    for batch in (1, 4):
        exp, _ = _write_exp(tiny_dirs, tmp_path / f"b{batch}", data, eval_batch=batch)
        scp = extract_embeddings(exp, data, os.path.join(exp, "emb"), mean_vec=True, progress=False)
        results[batch] = scp
        assert [line.split()[0] for line in open(scp)] == sorted(feats)  # data-dir order, whatever the batches
    one, four = _table(results[1]), _table(results[4])
    assert max(float(np.abs(one[k] - four[k]).max()) for k in feats) < 1e-5
    assert max(float(np.abs(ref[k] - four[k]).max()) for k in feats) < 1e-5


def test_batches_never_mix_lengths():
    from wespeaker_avkd.data.samplers import LengthGroupedBatchSampler

    lengths = [5, 3, 5, None, 3, 5, 5, 5]
    batches = [[i for i, _, _ in b] for b in LengthGroupedBatchSampler(lengths, 3)]
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert all(len({lengths[i] for i in b}) == 1 and len(b) <= 3 for b in batches)
    assert [3] in batches


def test_jobs_file_runs_in_one_process_and_loads_each_model_once(tmp_path, tiny_dirs):
    data, feats = _write_data(tiny_dirs, tmp_path / "data dir", [20, 20, 25])
    sub, _ = _write_data(tiny_dirs, tmp_path / "sub set", [20, 30])
    exp, net = _write_exp(tiny_dirs, tmp_path / "exp a", data)
    jobs = tmp_path / "jobs.tsv"
    jobs.write_text(f"# exp\tdata\tout\tmean\tscps\n{exp}\t{data}\t{tmp_path}/out 1\t1\t-\n\n"
                    f"{exp}\t{sub}\t{tmp_path}/out 2\t0\t-\n")
    parsed = read_jobs(str(jobs))
    assert [j.where for j in parsed] == [f"{jobs}:2", f"{jobs}:4"] and parsed[0].mean_vec and not parsed[1].mean_vec
    cache = ModelCache()
    scps = run_jobs(parsed, progress=False, models=cache)
    assert cache.loads == 1
    ref = _reference(net, feats)
    out = _table(scps[0])
    assert max(float(np.abs(ref[k] - out[k]).max()) for k in feats) < 1e-5
    assert os.path.isfile(tmp_path / "out 1" / "mean_vec.npy")
    assert not os.path.exists(tmp_path / "out 2" / "mean_vec.npy")


@pytest.mark.parametrize("line, message", [
    ("a\tb\tc\t1", "expected 5 tab-separated fields"),
    ("a\tb\tc\tyes\t-", "mean_vec must be 0 or 1"),
    ("a\t\tc\t0\t-", "field data_dir is empty"),
    ("a\tb\tc\t0\taudio", "not MODALITY=PATH"),
])
def test_bad_jobs_line_names_file_and_line(tmp_path, line, message):
    jobs = tmp_path / "jobs.tsv"
    jobs.write_text("x\ty\tz\t0\t-\n" + line + "\n")
    with pytest.raises(ValueError, match=f"{jobs}:2: .*{message}"):
        read_jobs(str(jobs))


def test_bin_extract_jobs_cli_reports_a_bad_line(tmp_path, capsys):
    from wespeaker_avkd.bin.extract import main

    jobs = tmp_path / "jobs.tsv"
    jobs.write_text("only\ttwo\n")
    assert main(["--jobs", str(jobs), "--no_progress"]) == 2
    assert f"{jobs}:1" in capsys.readouterr().err
