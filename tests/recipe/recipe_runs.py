"""Shared by the slow recipe tests: run.sh on tmp dirs with the tiny configs, the fixture tree in the official
VoxCeleb layouts with its stage 1 options, and the raw-vs-shard embedding comparison."""
from __future__ import annotations

import os
import subprocess

import numpy as np

from wespeaker_avkd.data.toy_corpus import generate_corpus, load_config
from wespeaker_avkd.data.voxceleb.fixture import make_fixture_tree
from wespeaker_avkd.utils.embedding_table import load_embeddings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(ROOT, "egs", "voxceleb", "run.sh")
TINY = os.path.join(ROOT, "egs", "voxceleb", "v_kd", "conf", "tiny")
# stage 1 on the fixture tree: 6 of its VoxCeleb2 identities held out as dev, 2 frames of 32 px per face track
FIXTURE_OPTIONS = ["--dev_speakers", "6", "--dev_max_targets", "40", "--face_fps", "2", "--face_max_frames", "2",
                   "--face_size", "32"]


def run_recipe(tmp_path, *args: str, env: dict | None = None) -> str:
    """stdout of run.sh with the tiny configs on tmp_path/{data,fbank} and args (--exp, ...); asserts exit 0."""
    cmd = ["bash", RUN, "--data", str(tmp_path / "data"), "--fbank", str(tmp_path / "fbank"), "--conf_dir", TINY,
           "--progress", "false", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3000,
                         env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def make_fixture(tmp_path) -> tuple[str, str]:
    """(corpus, vox root): the tiny toy corpus at tmp_path/corpus encoded into the official layouts at tmp_path/vox."""
    corpus, vox = str(tmp_path / "corpus"), str(tmp_path / "vox")
    generate_corpus(corpus, load_config(os.path.join(TINY, "corpus.yaml")), progress=False)
    make_fixture_tree(corpus, vox)
    return corpus, vox


def assert_same_embeddings(raw_exp, shard_exp, systems=("audio_baseline", "visual_baseline"),
                           parts=("train", "dev", "eval")) -> None:
    """Every part's xvector.scp/ark of each system under <exp>/seed1: the same keys and bitwise-equal vectors."""
    for system in systems:
        for part in parts:
            raw = load_embeddings(str(raw_exp / "seed1" / system / "embeddings" / part / "xvector.scp"))
            shard = load_embeddings(str(shard_exp / "seed1" / system / "embeddings" / part / "xvector.scp"))
            assert raw[0] == shard[0] and np.array_equal(raw[1], shard[1]), (system, part)
