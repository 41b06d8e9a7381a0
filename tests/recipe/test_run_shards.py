"""run.sh --data_type shard: stage 2 packs every part into tar shards, the baselines train and embed from them,
and (unshuffled, the equal path) give the same embeddings as the default run from raw files."""
import os
import subprocess

import pytest
import yaml

from wespeaker_avkd.data.shards import read_shard_list

from .recipe_runs import RUN, TINY, assert_same_embeddings, run_recipe


def _run(tmp_path, exp, *args):
    return run_recipe(tmp_path, "--exp", str(exp), "--corpus_config", os.path.join(TINY, "corpus.yaml"),
                      "--config", str(tmp_path / "unshuffled.yaml"), "--stop_stage", "4", *args)


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
    assert_same_embeddings(tmp_path / "raw", tmp_path / "shard")


def test_bad_data_type_is_refused_before_any_work(tmp_path):
    out = subprocess.run(["bash", RUN, "--data_type", "lmdb", "--data", str(tmp_path / "data")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "--data_type must be raw or shard, got lmdb" in out.stderr
    assert not (tmp_path / "data").exists()
