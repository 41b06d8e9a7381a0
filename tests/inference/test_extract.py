"""Extraction (xvector.ark/scp, mean_vec, skip/redo) and the teacher's KD export, on a tiny model and data."""
import json
import os
import sys

import kaldiio
import numpy as np
import pytest
import torch

from wespeaker_avkd.checkpoint import save_checkpoint
from wespeaker_avkd.config.train_config import save_config
from wespeaker_avkd.inference.extract import extract_embeddings
from wespeaker_avkd.inference.kd_export import export_teacher

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: the trainer's fakes
from train.fakes import tiny_config  # noqa: E402


def _setup(tmp_path, tiny):
    """A data dir with feats.scp (random fbank, VoxCeleb-style keys) and an exp dir with config, spk2id and
    avg_model.pt."""
    utt2spk = {f"id0000{i % 3}/v{i}/00001": f"id0000{i % 3}" for i in range(7)}
    data, feats = tiny.feats_dir(tmp_path / "data", utt2spk, [20 + i for i in range(7)])
    cfg = tiny_config(data, dataset_args={"feat_source": "feats"})
    exp, net = tiny.untrained_exp(tmp_path / "exp", cfg, utt2spk.values())
    return data, exp, net, feats


def test_extract_matches_model_and_skips_when_done(tmp_path, tiny_dirs):
    data, exp, net, feats = _setup(tmp_path, tiny_dirs)
    out = os.path.join(exp, "embeddings", "train")
    scp = extract_embeddings(exp, data, out, mean_vec=True, progress=False)
    table = {k: v for k, v in kaldiio.load_scp(scp).items()}
    assert sorted(table) == sorted(feats)
    with torch.no_grad():
        for key, mat in feats.items():
            cmn = torch.from_numpy(mat - mat.mean(0))[None]  # the eval loader gives CMN'd whole utterances
            np.testing.assert_allclose(table[key], net.encoder(cmn)[0].numpy(), atol=1e-5)
    mean = np.load(os.path.join(out, "mean_vec.npy"))
    np.testing.assert_allclose(mean, np.mean([table[k] for k in table], axis=0), atol=1e-6)
    # complete and made from the same inputs: skipped
    scp_mtime = os.stat(scp).st_mtime_ns
    extract_embeddings(exp, data, out, mean_vec=True, progress=False)
    assert os.stat(scp).st_mtime_ns == scp_mtime
    # a touched but identical checkpoint is the same input (content, not mtime): still skipped
    ckpt = os.path.join(exp, "models", "avg_model.pt")
    os.utime(ckpt, (1, 1))
    extract_embeddings(exp, data, out, mean_vec=True, progress=False)
    assert os.stat(scp).st_mtime_ns == scp_mtime
    # a checkpoint with other weights makes it stale: redone, and the previous ark is gone
    state = torch.load(ckpt, weights_only=True)
    state["fc.bias"] += 1.0
    save_checkpoint(ckpt, state)
    old_ark = _arks(out)
    extract_embeddings(exp, data, out, mean_vec=True, progress=False)
    assert os.stat(scp).st_mtime_ns != scp_mtime and _arks(out) != old_ark and len(_arks(out)) == 1
    again = kaldiio.load_scp(scp)
    assert not np.allclose(again[sorted(table)[0]], table[sorted(table)[0]])


def _arks(out):
    return sorted(f for f in os.listdir(out) if f.endswith(".ark"))


def test_kd_export(tmp_path, tiny_dirs):
    data, exp, net, feats = _setup(tmp_path, tiny_dirs)
    scp = extract_embeddings(exp, data, os.path.join(exp, "embeddings", "train"), progress=False)
    out = export_teacher(exp, scp)
    weight = np.load(os.path.join(out, "projection_weight.npy"))
    np.testing.assert_array_equal(weight, net.projection.weight.detach().numpy())
    exported = kaldiio.load_scp(os.path.join(out, "xvector.scp"))
    original = kaldiio.load_scp(scp)
    assert sorted(exported) == sorted(original)
    for key in original:
        np.testing.assert_array_equal(exported[key], original[key])
    assert open(os.path.join(out, "spk2id")).read() == open(os.path.join(exp, "spk2id")).read()


def test_amp_config_embeds_under_the_bf16_trunk_on_cpu(tmp_path, tiny_dirs):
    """A config trained with `amp: true` on CPU is embedded as it was trained: encoder under bfloat16 autocast,
    output float32; the result equals the model run under torch.autocast(bfloat16) and differs from float32 by
    bf16 rounding only."""
    from wespeaker_avkd.config.train_config import load_yaml

    data, exp, net, feats = _setup(tmp_path, tiny_dirs)
    cfg = load_yaml(os.path.join(exp, "config.yaml"))
    cfg["amp"] = True
    save_config(cfg, os.path.join(exp, "config.yaml"))
    scp = extract_embeddings(exp, data, os.path.join(exp, "embeddings", "bf16"), progress=False)
    table = kaldiio.load_scp(scp)
    with torch.no_grad():
        for key, mat in feats.items():
            cmn = torch.from_numpy(mat - mat.mean(0))[None]
            with torch.autocast("cpu", dtype=torch.bfloat16):
                want = net.encoder(cmn)[0].float().numpy()
            full = net.encoder(cmn)[0].numpy()
            got = table[key]
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, want, atol=1e-6)
            assert not np.array_equal(got, full)
            np.testing.assert_allclose(got, full, atol=0.05 * np.abs(full).max() + 1e-3)


# The config part of the extraction stamp (extract.json) of two tiny exp dirs, and the digest of the data-dir
# part, pinned: the stamp decides "already done, skip", so any change here re-extracts every finished run.
# Computed on branch typed-extract at 4923c2e (before extraction parsed config.yaml into a ModelConfig) by running
# these same exp dirs (cwd-relative data dir, GOLDEN_CONFIGS) through extract_embeddings and printing
# json.dumps(stamp["config"], sort_keys=True) and digest_of(stamp["data_dir"]).
GOLDEN_STAMP_CONFIG = {
    "minimal": '{"amp": null, "dataset_args": {"feat_source": "feats"}, "modality": "audio", "model": "TinyTestNet", '
               '"model_args": {"embed_dim": 8, "feat_dim": 6}, "plugins": null}',
    "full": '{"amp": true, "dataset_args": {"fbank_args": {"num_mel_bins": 6}, "feat_source": "feats", "num_frms": '
            '[10, 20]}, "modality": "audio", "model": "TinyTestNet", "model_args": {"embed_dim": 8, "feat_dim": 6}, '
            '"plugins": []}',
}
GOLDEN_DATA_DIR_DIGEST = "a1a2a17f57942af8672976a76a31add1f47e0fe758729aa9ccd8c95cec8f1ea7"
# "outputs" (the fingerprints of mean_vec.npy etc.) is a record, not an input: a stamp without it stays valid.
GOLDEN_STAMP_KEYS = ["checkpoint", "config", "data_dir", "dim", "embedding_scps", "listed_files", "mean_vec",
                     "num_utts", "outputs", "scp", "version"]


def _golden_configs(data):
    """The two configs of the pinned stamps: the minimal one tests write and a complete one (amp, plugins)."""
    return {
        "minimal": {"modality": "audio", "model": "TinyTestNet", "model_args": {"feat_dim": 6, "embed_dim": 8},
                    "dataset_args": {"feat_source": "feats"}, "eval_dataloader_args": {"batch_size": 2}},
        "full": tiny_config(data, dataset_args={"feat_source": "feats", "num_frms": [10, 20],
                                                "fbank_args": {"num_mel_bins": 6}}, amp=True, plugins=[]),
    }


@pytest.mark.parametrize("name", sorted(GOLDEN_STAMP_CONFIG))
def test_extraction_stamp_is_pinned(tmp_path, tiny_dirs, monkeypatch, name):
    from pathlib import Path

    from wespeaker_avkd.utils.fingerprint import digest_of

    monkeypatch.chdir(tmp_path)
    utt2spk = {f"id0000{i % 3}/v{i}/00001": f"id0000{i % 3}" for i in range(5)}
    data, _ = tiny_dirs.feats_dir(Path("data"), utt2spk, [20 + i for i in range(5)])
    exp, _ = tiny_dirs.untrained_exp(Path(name), _golden_configs(data)[name], utt2spk.values())
    extract_embeddings(exp, data, os.path.join(exp, "emb"), mean_vec=True, progress=False)
    stamp = json.load(open(os.path.join(exp, "emb", "extract.json")))
    assert json.dumps(stamp["config"], sort_keys=True) == GOLDEN_STAMP_CONFIG[name]
    assert digest_of(stamp["data_dir"]) == GOLDEN_DATA_DIR_DIGEST
    assert sorted(stamp) == GOLDEN_STAMP_KEYS and stamp["version"] == 2 and stamp["mean_vec"] is True


@pytest.mark.parametrize("change, message", [
    ({"dataset_args": {"feat_source": "fbank"}}, r"config key 'dataset_args.feat_source': must be one of"),
    ({"model_args": {"feat_dim": 6, "embed_dimm": 8}}, r"config key 'model_args.embed_dimm': is not known"),
    ({"amp": "yes"}, r"config key 'amp': expected true or false"),
    ({"eval_dataloader_args": {"batch_size": 0}}, r"config key 'eval_dataloader_args.batch_size': must be a "),
    ({"modality": None}, r"config key 'modality': must be one of"),
])
def test_bad_saved_config_is_refused_naming_file_and_key(tmp_path, tiny_dirs, change, message):
    import re

    from wespeaker_avkd.config.train_config import ConfigError, load_yaml

    data, exp, _, _ = _setup(tmp_path, tiny_dirs)
    path = os.path.join(exp, "config.yaml")
    save_config({**load_yaml(path), **change}, path)
    with pytest.raises(ConfigError, match=f"^{re.escape(path)}: {message}"):
        extract_embeddings(exp, data, os.path.join(exp, "emb"), progress=False)


def test_saved_config_keys_extraction_does_not_read_are_ignored(tmp_path, tiny_dirs):
    """Training-only keys (an old run's, WeSpeaker's augmentation) are not read; a missing modality is refused."""
    import re

    from wespeaker_avkd.config.train_config import ConfigError, load_yaml

    data, exp, _, feats = _setup(tmp_path, tiny_dirs)
    path = os.path.join(exp, "config.yaml")
    cfg = load_yaml(path)
    save_config({**cfg, "gpus": "[0,1]", "dataset_args": {**cfg["dataset_args"], "spec_aug": True},
                 "dataloader_args": {"batch_size": 8, "old_key": 1}}, path)
    scp = extract_embeddings(exp, data, os.path.join(exp, "emb"), progress=False)
    assert sorted(kaldiio.load_scp(scp)) == sorted(feats)
    save_config({k: v for k, v in cfg.items() if k != "modality"}, path)
    with pytest.raises(ConfigError, match=f"^{re.escape(path)}: config: missing required key 'modality'"):
        extract_embeddings(exp, data, os.path.join(exp, "emb2"), progress=False)
