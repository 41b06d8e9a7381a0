"""The recipe (egs/voxceleb/run.sh stages 1-9) from raw files in the official VoxCeleb layouts: the fixture
tree's m4a audio and mp4 face tracks (decoded in-process; an `ffmpeg` on PATH that records any call must stay
unused), VoxCeleb1's name-keyed frames with vox1_meta.csv, the official lists, with the tiny configs."""
import json
import os
import subprocess

import pytest

from wespeaker_avkd.data.kaldi_dir import read_multi_table, read_table

from .recipe_runs import FIXTURE_OPTIONS, RUN, TINY, make_fixture, run_recipe


@pytest.mark.slow
def test_recipe_runs_on_the_official_layouts(tmp_path):
    corpus, vox = make_fixture(tmp_path)
    trap = tmp_path / "bin"
    trap.mkdir()
    (trap / "ffmpeg").write_text(f"#!/bin/sh\ntouch {tmp_path / 'ffmpeg_called'}\nexit 1\n")
    (trap / "ffmpeg").chmod(0o755)
    (tmp_path / "epochs.yaml").write_text("num_epochs: 1\n")
    data, exp = tmp_path / "data", tmp_path / "exp"
    run_recipe(tmp_path, "--data_root", vox, *FIXTURE_OPTIONS, "--exp", str(exp), "--config",
               str(tmp_path / "epochs.yaml"), "--seeds", "1", "--modalities", "visual", "--kd_combos", "KL",
               env={"PATH": f"{trap}:{os.environ['PATH']}"})
    assert not (tmp_path / "ffmpeg_called").exists()
    src = {part: read_table(os.path.join(corpus, part, "utt2spk")) for part in ("train", "dev", "eval")}
    train, dev = read_table(data / "train" / "utt2spk"), read_table(data / "dev" / "utt2spk")
    assert sorted({**train, **dev}) == sorted({**src["train"], **src["dev"]})   # VoxCeleb2 dev = toy train + dev
    assert len(set(dev.values())) == 6 and not set(dev.values()) & set(train.values())
    assert sorted(read_table(data / "eval" / "utt2spk")) == sorted(src["eval"])
    faces = read_multi_table(data / "train" / "faces.scp")
    assert sorted(faces) == sorted(train) and all(len(v) == 2 and "/faces_vox2/" in v[0] for v in faces.values())
    eval_faces = read_multi_table(data / "eval" / "faces.scp")
    assert all("/unzippedIntervalFaces/data/" in v[0] for v in eval_faces.values())
    wav = read_table(data / "train" / "wav.scp")
    assert all("/wav_vox2/" in p for p in wav.values())
    for t in ("O", "E", "H"):   # the official lists, in their order
        official = (tmp_path / "corpus" / "eval" / "trials" / t).read_text()
        assert (data / "eval" / "trials" / t).read_text() == official
    teacher = exp / "seed1" / "teacher"
    for t in ("O", "E", "H"):
        assert json.load(open(teacher / "scores" / "eval" / f"{t}.json"))["num_trials"] > 0
    assert (exp / "seed1" / "visual_kd_kl" / "scores" / "eval" / "O.json").exists()
    assert (exp / "report" / "results.md").stat().st_size > 0


def test_stage1_refuses_a_tree_without_faces_before_any_work(tmp_path):
    for folder in ("voxceleb2/dev/aac/id00001/v", "voxceleb1/wav/id10001/v", "voxceleb1/unzippedIntervalFaces/data"):
        (tmp_path / "vox" / folder).mkdir(parents=True)
    (tmp_path / "vox" / "voxceleb1" / "vox1_meta.csv").write_text("VoxCeleb1 ID\tVGGFace1 ID\n")
    data = tmp_path / "data"
    out = subprocess.run(["bash", RUN, "--data_root", str(tmp_path / "vox"), "--data", str(data), "--exp",
                          str(tmp_path / "exp"), "--conf_dir", TINY, "--stop_stage", "3"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.startswith("prepare_voxceleb:")]
    assert len(lines) == 1 and f"{tmp_path / 'vox' / 'voxceleb2' / 'dev' / 'mp4'} not found" in lines[0], out.stderr
    assert not data.exists()   # refused before any conversion or table
