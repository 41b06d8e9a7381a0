"""prepare_voxceleb.sh on a tiny tree in the official VoxCeleb layout."""
import hashlib
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
from wespeaker_avkd.data.voxceleb import prepare_voxceleb, read_official_trials, select_dev_speakers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "egs", "voxceleb", "v_kd", "local", "prepare_voxceleb.sh")
VOX2 = {"id00012": {"21Uxsk56VDQ": 2, "2DLq_Kkc1r8": 1}, "id00015": {"0fijmz4vTVU": 2}}
# More VoxCeleb2 dev identities (two videos of two segments each) for the held-out dev part.
VOX2_DEV = {f"id{n:05d}": {f"vidA{n:07d}": 2, f"vidB{n:07d}": 2} for n in range(20, 28)}
GENDER = {spk: "mf"[n % 2] for n, spk in enumerate(sorted({**VOX2, **VOX2_DEV}))}
VOX1 = {"id10270": {"5r0dWxy17C8": 2, "x6uYqmx31kE": 1}, "id10271": {"1gtz-CUIygI": 2}, "id10273": {"0OCW1HUxZyg": 1}}


def _tree(root, vox2=VOX2):
    """VoxCeleb2 dev + VoxCeleb1 + faces + the three official lists; returns the eval utterance ids."""
    rng = np.random.default_rng(0)
    for part, spks, audio_dir in (("voxceleb2", vox2, "dev/wav"),
                                  ("voxceleb1", VOX1, "wav")):
        for spk, videos in spks.items():
            for video, n_seg in videos.items():
                for s in range(1, n_seg + 1):
                    seg = f"{s:05d}"
                    a = root / part / audio_dir / spk / video / (seg + ".wav")
                    a.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(a, 0.1 * rng.standard_normal(8000), 16000, subtype="PCM_16")
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
    res = subprocess.run(["bash", SCRIPT, "--data_root", str(root), "--out", str(out), "--dev_speakers", "0"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not (out / "dev").exists()
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
    counts = prepare_voxceleb(str(root), str(tmp_path / "data"), log=logs.append, dev_speakers=0)
    assert counts["train"]["utterances"] == 4
    assert any("train: 4 of 5 utterances kept; left out: 1 without face frames" in m for m in logs)
    assert validate_data_dir(str(tmp_path / "data" / "train")) == []


def test_trial_key_missing_is_an_error(tmp_path):
    root = tmp_path / "vox"
    _tree(root)
    with open(root / "voxceleb1" / "veri_test2.txt", "a") as f:
        f.write("0 id10270/x6uYqmx31kE/00001.wav id19999/zzzzzzzzzzz/00001.wav\n")
    with pytest.raises(KeyError, match="id19999/zzzzzzzzzzz/00001"):
        prepare_voxceleb(str(root), str(tmp_path / "data"), log=lambda m: None, dev_speakers=0)


def _hash_choice(speakers, n, seed):
    """Independent reference: the n ids with the smallest sha256 of "<seed>:<id>"."""
    return sorted(sorted(speakers, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())[:n])


def test_dev_choice_is_seeded_and_stable():
    speakers = [f"id{n:05d}" for n in range(1, 400)]
    chosen = select_dev_speakers(speakers, 30, seed=0)
    assert chosen == _hash_choice(speakers, 30, 0) and len(set(chosen)) == 30
    assert select_dev_speakers(list(reversed(speakers)), 30, seed=0) == chosen  # order of the scan is irrelevant
    assert select_dev_speakers(speakers, 30, seed=1) != chosen
    # a speaker that was not chosen going missing, or new speakers arriving, keeps every chosen one that still ranks
    fewer = [s for s in speakers if s != next(s for s in speakers if s not in chosen)]
    assert select_dev_speakers(fewer, 30, seed=0) == chosen
    more = select_dev_speakers(speakers + [f"id{n:05d}" for n in range(400, 450)], 30, seed=0)
    assert set(more) - set(chosen) <= {f"id{n:05d}" for n in range(400, 450)}
    with pytest.raises(ValueError, match="at least one must stay"):
        select_dev_speakers(speakers[:5], 5)


def test_script_builds_dev_part(tmp_path):
    root = tmp_path / "vox"
    eval_utts, _ = _tree(root, vox2={**VOX2, **VOX2_DEV})
    with open(root / "voxceleb2" / "vox2_meta.csv", "w") as f:
        f.write("VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \n")
        f.writelines(f"{s} ,n{s[2:]} ,{g} ,dev \n" for s, g in GENDER.items())
    out = tmp_path / "data"
    res = subprocess.run(["bash", SCRIPT, "--data_root", str(root), "--out", str(out), "--dev_speakers", "4",
                          "--dev_seed", "3"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "data/dev/trials/H" in res.stdout
    dev_spk = _hash_choice(sorted({**VOX2, **VOX2_DEV}), 4, 3)
    u_train, u_dev = read_table(out / "train" / "utt2spk"), read_table(out / "dev" / "utt2spk")
    assert sorted(set(u_dev.values())) == dev_spk
    assert set(u_train.values()) == set(VOX2) | set(VOX2_DEV) - set(dev_spk)  # train excludes the dev identities
    assert not set(u_dev.values()) & set(read_table(out / "eval" / "utt2spk").values())
    assert validate_data_dir(str(out / "dev"), deep=True) == []
    assert sorted(read_table(out / "eval" / "wav.scp")) == eval_utts
    lists = {}
    for name in "OEH":
        rows = [line.split() for line in (out / "dev" / "trials" / name).read_text().splitlines()]
        vox = (out / "dev" / "trials_voxceleb" / (name + ".txt")).read_text().splitlines()
        assert vox == [f"{int(r[2] == 'target')} {r[0]} {r[1]}" for r in rows]
        n_t = sum(r[2] == "target" for r in rows)
        assert n_t == len(rows) - n_t > 0
        for a, b, lab in rows:
            assert (u_dev[a] == u_dev[b]) == (lab == "target")
            if lab == "target":
                assert a.split("/")[1] != b.split("/")[1]  # targets pair two videos, as VoxCeleb's
            elif name == "H":
                assert GENDER[u_dev[a]] == GENDER[u_dev[b]]  # H: same-gender nontargets only
        lists[name] = rows
    # same inputs, same lists
    again = prepare_voxceleb(str(root), str(tmp_path / "again"), log=lambda m: None, dev_speakers=4, dev_seed=3)
    assert again["trials"]["dev"]["E"]["trials"] == len(lists["E"])
    assert (tmp_path / "again" / "dev" / "trials" / "E").read_text() == (out / "dev" / "trials" / "E").read_text()


def test_dev_errors_are_named(tmp_path):
    root = tmp_path / "vox"
    _tree(root)
    res = subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.prepare_voxceleb", "--data_root", str(root),
                          "--out", str(tmp_path / "data")], capture_output=True, text=True)  # default 100 > 2 here
    assert res.returncode != 0 and "dev_speakers = 100" in res.stderr and "Traceback" not in res.stderr
    (root / "voxceleb2" / "vox2_meta.csv").write_text("VoxCeleb2 ID,Gender\nid00012,x\n")
    with pytest.raises(ValueError, match="vox2_meta.csv:2"):
        prepare_voxceleb(str(root), str(tmp_path / "data"), log=lambda m: None, dev_speakers=1)
    res = subprocess.run(["bash", SCRIPT, "--data_root", str(root), "--dev_speakers", "1;touch x"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode != 0 and "non-negative integer" in res.stderr and not (tmp_path / "x").exists()


def test_official_list_read_with_the_scorers_grammar(tmp_path):
    path = tmp_path / "veri_test2.txt"
    path.write_text("1 id10270/a/00001.wav id10270/b/00001.wav\n\n0 id10270/a/00001.wav id10271/c/00002\n")
    assert read_official_trials(str(path)) == [("id10270/a/00001", "id10270/b/00001", "target"),
                                               ("id10270/a/00001", "id10271/c/00002", "nontarget")]
    path.write_text("1 id10270/a/00001.wav id10270/b/00001.wav\nid10270/a/00001.wav id10270/b/00001.wav target\n")
    with pytest.raises(ValueError, match=r"veri_test2.txt:2: unknown label 'id10270/a/00001.wav' \(VoxCeleb form"):
        read_official_trials(str(path))
    path.write_text("")
    with pytest.raises(ValueError, match=r"veri_test2.txt: empty trial list"):
        read_official_trials(str(path))
