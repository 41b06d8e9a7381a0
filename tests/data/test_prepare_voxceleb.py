"""prepare_voxceleb.sh on a tiny tree in the official VoxCeleb layout."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from wespeaker_avkd.data.kaldi_dir import read_multi_table, read_table
from wespeaker_avkd.data.validate import validate_data_dir
from wespeaker_avkd.data.voxceleb import prepare_voxceleb

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "egs", "voxceleb", "v_kd", "local", "prepare_voxceleb.sh")
VOX2 = {"id00012": {"21Uxsk56VDQ": 2, "2DLq_Kkc1r8": 1}, "id00015": {"0fijmz4vTVU": 2}}
VOX1 = {"id10270": {"5r0dWxy17C8": 2, "x6uYqmx31kE": 1}, "id10271": {"1gtz-CUIygI": 2}, "id10273": {"0OCW1HUxZyg": 1}}


def _tree(root, audio_ext=".wav"):
    """VoxCeleb2 dev + VoxCeleb1 + faces + the three official lists; returns the eval utterance ids."""
    rng = np.random.default_rng(0)
    for part, spks, audio_dir in (("voxceleb2", VOX2, "dev/" + ("wav" if audio_ext == ".wav" else "aac")),
                                  ("voxceleb1", VOX1, "wav")):
        for spk, videos in spks.items():
            for video, n_seg in videos.items():
                for s in range(1, n_seg + 1):
                    seg = f"{s:05d}"
                    a = root / part / audio_dir / spk / video / (seg + audio_ext)
                    a.parent.mkdir(parents=True, exist_ok=True)
                    if audio_ext == ".wav":
                        sf.write(a, 0.1 * rng.standard_normal(8000), 16000, subtype="PCM_16")
                    else:
                        a.write_bytes(b"\0" * 64)
                    fdir = root / part / "faces" / spk / video / seg
                    fdir.mkdir(parents=True, exist_ok=True)
                    for k in range(2):
                        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(fdir / f"{k:04d}.jpg")
    utts = sorted(f"{s}/{v}/{i:05d}" for s, vs in VOX1.items() for v, n in vs.items() for i in range(1, n + 1))
    lists = {"veri_test2.txt": 4, "list_test_all2.txt": 6, "list_test_hard2.txt": 5}
    for fname, n in lists.items():
        with open(root / "voxceleb1" / fname, "w") as f:
            for i in range(n):
                a, b = utts[i % len(utts)], utts[(i + 1 + i // 3) % len(utts)]
                f.write(f"{int(a.split('/')[0] == b.split('/')[0])} {a}.wav {b}.wav\n")
    return utts, lists


def test_script_builds_valid_dirs_with_official_counts(tmp_path):
    root = tmp_path / "vox"
    utts, lists = _tree(root)
    out = tmp_path / "data"
    res = subprocess.run(["bash", SCRIPT, "--data_root", str(root), "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert validate_data_dir(str(out / "train"), deep=True) == []
    assert validate_data_dir(str(out / "eval"), deep=True) == []
    assert sorted(read_table(out / "eval" / "wav.scp")) == utts
    train = read_table(out / "train" / "utt2spk")
    assert len(train) == 5 and set(train.values()) == {"id00012", "id00015"}
    faces = read_multi_table(out / "train" / "faces.scp")
    assert all(len(v) == 2 and v[0].endswith("0000.jpg") for v in faces.values())
    for name, fname in (("O", "veri_test2.txt"), ("E", "list_test_all2.txt"), ("H", "list_test_hard2.txt")):
        official = (root / "voxceleb1" / fname).read_text().splitlines()
        kaldi = (out / "eval" / "trials" / name).read_text().splitlines()
        vox = (out / "eval" / "trials_voxceleb" / (name + ".txt")).read_text().splitlines()
        assert len(kaldi) == len(vox) == lists[fname] == len(official)
        for o, k, v in zip(official, kaldi, vox):
            lab, a, b = o.split()
            assert k == f"{a[:-4]} {b[:-4]} {'target' if lab == '1' else 'nontarget'}"
            assert v == f"{lab} {a[:-4]} {b[:-4]}"


def test_segments_without_faces_are_left_out(tmp_path):
    root = tmp_path / "vox"
    _tree(root)
    shutil.rmtree(root / "voxceleb2" / "faces" / "id00015" / "0fijmz4vTVU" / "00002")
    logs = []
    counts = prepare_voxceleb(str(root), str(tmp_path / "data"), log=logs.append)
    assert counts["train"]["utterances"] == 4
    assert any("1 of 5 utterances have no face frames" in m for m in logs)
    assert validate_data_dir(str(tmp_path / "data" / "train")) == []


def test_trial_key_missing_is_an_error(tmp_path):
    root = tmp_path / "vox"
    _tree(root)
    with open(root / "voxceleb1" / "veri_test2.txt", "a") as f:
        f.write("0 id10270/x6uYqmx31kE/00001.wav id19999/zzzzzzzzzzz/00001.wav\n")
    with pytest.raises(KeyError, match="id19999/zzzzzzzzzzz/00001"):
        prepare_voxceleb(str(root), str(tmp_path / "data"), log=lambda m: None)


@pytest.mark.skipif(shutil.which("ffmpeg") is not None, reason="ffmpeg installed: the conversion path would run")
def test_m4a_without_ffmpeg_says_so(tmp_path):
    root = tmp_path / "vox"
    _tree(root, audio_ext=".m4a")
    res = subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.prepare_voxceleb", "--data_root", str(root),
                          "--out", str(tmp_path / "data")], capture_output=True, text=True)
    assert res.returncode != 0
    assert "ffmpeg is not installed" in res.stderr and "voxceleb2/dev/wav" in res.stderr
