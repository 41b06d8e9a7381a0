"""run.sh --data_type shard: stage 2 packs every part into tar shards, the baselines train and embed from them,
and (unshuffled, the equal path) give the same embeddings as the default run from raw files."""
import os
import subprocess

import numpy as np
import pytest
import yaml

from wespeaker_avkd.data.shards import read_shard_list
from wespeaker_avkd.utils.embedding_table import load_embeddings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(ROOT, "egs", "voxceleb", "run.sh")
TINY = os.path.join(ROOT, "egs", "voxceleb", "v_kd", "conf", "tiny")


def _run(tmp_path, exp, *args):
    cmd = ["bash", RUN, "--data", str(tmp_path / "data"), "--fbank", str(tmp_path / "fbank"), "--exp", str(exp),
           "--corpus_config", os.path.join(TINY, "corpus.yaml"), "--conf_dir", TINY,
           "--config", str(tmp_path / "unshuffled.yaml"), "--progress", "false", "--stop_stage", "4", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3000, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_shard_run_embeds_like_the_raw_run(tmp_path):
    (tmp_path / "unshuffled.yaml").write_text(yaml.safe_dump({"num_epochs": 1, "dataset_args": {"shuffle": False}}))
    _run(tmp_path, tmp_path / "raw")
    _run(tmp_path, tmp_path / "shard", "--stage", "2", "--data_type", "shard", "--shard_dir", str(tmp_path / "shards"))
    for part in ("train", "train_mean", "dev", "eval"):
        paths = read_shard_list(str(tmp_path / "data" / part / "shard.list"))
        assert all(p.startswith(str(tmp_path / "shards" / part)) for p in paths)
    for system in ("audio_baseline", "visual_baseline"):
        cfg = yaml.safe_load(open(tmp_path / "shard" / "seed1" / system / "config.yaml"))
        assert cfg["dataset_args"]["data_type"] == "shard"
        for part in ("train", "dev", "eval"):
            raw = load_embeddings(str(tmp_path / "raw" / "seed1" / system / "embeddings" / part / "xvector.scp"))
            shard = load_embeddings(str(tmp_path / "shard" / "seed1" / system / "embeddings" / part / "xvector.scp"))
            assert raw[0] == shard[0] and np.array_equal(raw[1], shard[1]), (system, part)


def test_bad_data_type_is_refused_before_any_work(tmp_path):
    out = subprocess.run(["bash", RUN, "--data_type", "lmdb", "--data", str(tmp_path / "data")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "--data_type must be raw or shard, got lmdb" in out.stderr
    assert not (tmp_path / "data").exists()
