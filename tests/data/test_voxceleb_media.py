"""VoxCeleb's real formats: PyAV decoding against the sources the fixture tree was encoded from, VoxCeleb1's
name-keyed frames, faces refused early, resumable conversions and unreadable inputs (data/voxceleb)."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from wespeaker_avkd.data.kaldi_dir import read_multi_table, read_table
from wespeaker_avkd.data.toy_corpus import generate_corpus, load_config
from wespeaker_avkd.data.voxceleb import convert as convert_lib
from wespeaker_avkd.data.voxceleb import prepare_voxceleb
from wespeaker_avkd.data.voxceleb.decode import decode_audio, decode_face_frames, frame_times
from wespeaker_avkd.data.voxceleb.fixture import make_fixture_tree, vox1_name
from wespeaker_avkd.data.voxceleb.layout import LayoutError, read_vox1_meta, read_wespeaker_dir

SMALL = {"layout": {"train_speakers": 3, "eval_speakers": 3, "dev_speakers": 0, "videos_per_speaker": [2, 2],
                    "segments_per_video": [1, 1]},
         "audio": {"duration": [1.0, 1.2]}, "face": {"frames_per_segment": 2}}
QUIET = {"log": lambda m: None, "dev_speakers": 0, "progress": False, "nj": 1}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """(toy corpus, VoxCeleb tree encoded from it) shared by the tests of this module (read-only for them)."""
    base = tmp_path_factory.mktemp("vox")
    corpus = str(base / "corpus")
    generate_corpus(corpus, load_config(None, SMALL), num_workers=1, progress=False)
    make_fixture_tree(corpus, str(base / "root"))
    return corpus, str(base / "root")


def _copy_root(tree, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(tree[1], root)
    return str(root)


def _snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    ref, test = ref.astype(float), test.astype(float)
    return 10 * np.log10((ref ** 2).sum() / ((ref - test) ** 2).sum())


def test_m4a_decodes_to_its_source_within_codec_tolerance(tree):
    corpus, root = tree
    wav = read_table(os.path.join(corpus, "train", "wav.scp"))
    for utt in sorted(wav):
        src, sr = sf.read(wav[utt], dtype="int16")
        got = decode_audio(os.path.join(root, "voxceleb2", "dev", "aac", utt + ".m4a"))
        assert sr == 16000 and got.dtype == np.int16
        assert len(src) <= len(got) < len(src) + 1024   # AAC pads its last 1024-sample frame at most
        n = len(src)
        # 64 kb/s AAC of the toy voices (some with added noise): correlation 0.98-0.9995, SNR 14-30 dB here; a
        # shift by one sample, another rate or a lost channel would fall far below these bounds
        assert np.corrcoef(src.astype(float), got[:n].astype(float))[0, 1] > 0.97, utt
        assert _snr_db(src, got[:n]) > 12, utt


def test_mp4_frames_match_the_source_images(tree):
    corpus, root = tree
    wav, faces = (read_table(os.path.join(corpus, "train", "wav.scp")),
                  read_multi_table(os.path.join(corpus, "train", "faces.scp")))
    for utt in sorted(wav)[:3]:
        duration, k = sf.info(wav[utt]).duration, len(faces[utt])
        # k frames over the track, one in the middle of each source image's slice
        frames = decode_face_frames(os.path.join(root, "voxceleb2", "dev", "mp4", utt + ".mp4"), k / duration, k, 48)
        assert len(frames) == k
        for got, path in zip(frames, faces[utt]):
            ref = np.asarray(Image.open(path).convert("RGB").resize((48, 48)), dtype=float)
            mse = ((np.asarray(got, dtype=float) - ref) ** 2).mean()
            assert 10 * np.log10(255 ** 2 / mse) > 28, (utt, path)


def test_frame_times_rate_count_and_centres():
    assert frame_times(8.0, 1.0, 10) == [0.5 + i for i in range(8)]
    assert len(frame_times(8.0, 1.0, 5)) == 5 and len(frame_times(0.2, 1.0, 5)) == 1   # capped; at least one
    t = frame_times(3.0, 2.0, 100)
    assert len(t) == 6 and all(0 < x < 3.0 for x in t) and np.allclose(np.diff(t), 0.5)


# Runs prepare_voxceleb with `import av` failing, as it does where PyAV is not installed.
NO_AV = """import sys
class NoAv:
    def find_spec(self, name, path=None, target=None):
        if name == "av" or name.startswith("av."):
            raise ImportError("No module named 'av'")
sys.meta_path.insert(0, NoAv())
from wespeaker_avkd.bin.prepare_voxceleb import main
from wespeaker_avkd.utils.errors import run_main
sys.exit(run_main("prepare_voxceleb", main, sys.argv[1:]))
"""


def test_missing_pyav_names_the_extra(tree, tmp_path):
    res = subprocess.run([sys.executable, "-c", NO_AV, "--data_root", tree[1], "--out", str(tmp_path / "data"),
                          "--dev_speakers", "0"], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert 'pip install -e ".[voxceleb]"' in res.stderr and not (tmp_path / "data").exists()


def test_vox1_names_map_to_ids(tree, tmp_path):
    corpus, root = tree[0], _copy_root(tree, tmp_path)
    eval_spk = sorted(set(read_table(os.path.join(corpus, "eval", "utt2spk")).values()))
    meta = read_vox1_meta(os.path.join(root, "voxceleb1", "vox1_meta.csv"))
    assert meta == {vox1_name(s): s for s in eval_spk}
    # a name folder absent from the meta file is left out and said so; its utterances have no faces
    gone = eval_spk[0]
    lines = [ln for ln in open(os.path.join(root, "voxceleb1", "vox1_meta.csv")) if not ln.startswith(gone)]
    open(os.path.join(root, "voxceleb1", "vox1_meta.csv"), "w").writelines(lines)
    logs = []
    counts = prepare_voxceleb(root, str(tmp_path / "data"), **{**QUIET, "log": logs.append})
    faces = read_multi_table(tmp_path / "data" / "eval" / "faces.scp")
    src_faces = read_multi_table(os.path.join(corpus, "eval", "faces.scp"))
    assert sorted(faces) == sorted(u for u in src_faces if not u.startswith(gone))
    for utt, frames in faces.items():   # the frames of <Name>/1.6/<video>/<int(segment)>/
        spk, video, seg = utt.split("/")
        assert [os.path.dirname(f) for f in frames] == [
            os.path.join(root, "voxceleb1", "unzippedIntervalFaces", "data", vox1_name(spk), "1.6", video,
                         str(int(seg)))] * len(src_faces[utt])
    assert counts["dropped"]["eval"]["no_faces"] == sum(u.startswith(gone) for u in src_faces)
    assert any(vox1_name(gone) in m and "not in vox1_meta.csv" in m for m in logs)
    open(os.path.join(root, "voxceleb1", "vox1_meta.csv"), "w").write("id\tname\n")
    with pytest.raises(LayoutError, match=r"vox1_meta.csv:1: expected a tab-separated header"):
        read_vox1_meta(os.path.join(root, "voxceleb1", "vox1_meta.csv"))


def _prepare(root, out, *extra):
    return subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.prepare_voxceleb", "--data_root", root,
                           "--out", str(out), "--dev_speakers", "0", "--nj", "1", "--no_progress", *extra],
                          capture_output=True, text=True)


@pytest.mark.parametrize("folder", [("voxceleb2", "dev", "mp4"), ("voxceleb1", "unzippedIntervalFaces")])
def test_missing_face_folder_stops_before_any_conversion(tree, tmp_path, folder):
    root = _copy_root(tree, tmp_path)
    shutil.rmtree(os.path.join(root, *folder))
    res = _prepare(root, tmp_path / "data", "--need_faces", "true")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prepare_voxceleb: ")
    named = "voxceleb2/dev/mp4" if folder[0] == "voxceleb2" else "voxceleb1/mp4"
    assert named in lines[0] and ("faces" in lines[0])
    assert not (tmp_path / "data").exists()   # nothing converted, nothing written
    assert _prepare(root, tmp_path / "data", "--need_faces", "false").returncode == 0   # audio only is allowed


def _media_bytes(out):
    """{relative path: bytes} of every converted file (wav and frames) under OUT."""
    found = {}
    for sub in ("wav_vox2", "faces_vox2"):
        for dirpath, _, names in os.walk(os.path.join(out, sub)):
            for n in names:
                p = os.path.join(dirpath, n)
                found[os.path.relpath(p, out)] = open(p, "rb").read()
    return found


def test_killed_conversion_rerun_gives_the_same_files(tree, tmp_path, monkeypatch):
    root = _copy_root(tree, tmp_path)
    prepare_voxceleb(root, str(tmp_path / "whole"), **{**QUIET, "nj": 2})   # 2 processes here, 1 below
    reference = _media_bytes(tmp_path / "whole")
    assert sum(p.endswith(".wav") for p in reference) == 6 and sum(p.endswith(".jpg") for p in reference) >= 6

    out = tmp_path / "killed"
    real, calls, strays = dict(convert_lib.CONVERTERS), {"audio": 0, "faces": 0}, []

    def dying(kind, k):
        def convert(job, args):
            calls[kind] += 1
            if calls[kind] == k:   # killed while writing: half a file under a temporary name, then gone
                os.makedirs(os.path.dirname(job.dst), exist_ok=True)
                stray = job.dst + ".tmp" if kind == "faces" else os.path.join(
                    os.path.dirname(job.dst), "." + os.path.basename(job.dst) + ".k1ll3d.tmp")
                open(stray, "wb").write(b"half")
                strays.append(stray)
                raise KeyboardInterrupt
            return real[kind](job, args)
        return convert

    monkeypatch.setitem(convert_lib.CONVERTERS, "audio", dying("audio", 4))
    with pytest.raises(KeyboardInterrupt):
        prepare_voxceleb(root, str(out), **QUIET)
    assert len(convert_lib.read_journal(str(out / ".wav_vox2.journal"))) == 3
    monkeypatch.setitem(convert_lib.CONVERTERS, "audio", real["audio"])
    monkeypatch.setitem(convert_lib.CONVERTERS, "faces", dying("faces", 2))
    with pytest.raises(KeyboardInterrupt):
        prepare_voxceleb(root, str(out), **QUIET)
    monkeypatch.setitem(convert_lib.CONVERTERS, "faces", real["faces"])
    # a finished file damaged behind the journal's back is redone too
    some_wav = sorted(p for p in reference if p.endswith(".wav"))[0]
    with open(out / some_wav, "r+b") as f:
        f.truncate(100)
    logs = []
    prepare_voxceleb(root, str(out), **{**QUIET, "log": logs.append})
    assert "wav_vox2: 1 converted, 5 already current, 0 unreadable" in logs
    assert "faces_vox2: 5 converted, 1 already current, 0 unreadable" in logs
    got = _media_bytes(out)
    assert {p for p in got if p.endswith((".wav", ".jpg"))} == set(reference)
    assert all(got[p] == reference[p] for p in reference)
    assert len(strays) == 2 and not any(os.path.exists(p) for p in strays)   # temporaries of the kill are gone
    # a source rewritten (new mtime) is converted again; another argument redoes every file
    m4a = sorted(read_table(os.path.join(tree[0], "train", "wav.scp")))[0]
    os.utime(os.path.join(root, "voxceleb2", "dev", "aac", m4a + ".m4a"), ns=(1, 1))
    logs.clear()
    prepare_voxceleb(root, str(out), **{**QUIET, "log": logs.append})
    assert "wav_vox2: 1 converted, 5 already current, 0 unreadable" in logs
    assert "faces_vox2: 0 converted, 6 already current, 0 unreadable" in logs
    journal = [json.loads(line) for line in open(out / ".wav_vox2.journal")]
    assert len(journal) == 6   # rewritten to the current entries, not appended forever


def test_corrupt_m4a_and_mp4_are_named_and_skipped(tree, tmp_path):
    root = _copy_root(tree, tmp_path)
    utts = sorted(read_table(os.path.join(tree[0], "train", "wav.scp")))
    bad_audio = os.path.join(root, "voxceleb2", "dev", "aac", utts[0] + ".m4a")
    bad_video = os.path.join(root, "voxceleb2", "dev", "mp4", utts[1] + ".mp4")
    open(bad_audio, "wb").write(b"\0" * 300)
    data = open(bad_video, "rb").read()
    open(bad_video, "wb").write(data[: len(data) // 3])   # truncated: no moov atom
    res = _prepare(root, tmp_path / "data", "--need_faces", "true")
    assert res.returncode == 0, res.stderr
    assert "2 unreadable input files were skipped" in res.stderr
    assert bad_audio in res.stderr and bad_video in res.stderr
    assert "train: 4 of 5 utterances kept; left out: 0 without face frames, 1 with an unreadable face track " \
           "(and 1 unreadable audio files before that)" in res.stdout
    kept = read_table(tmp_path / "data" / "train" / "wav.scp")
    assert sorted(kept) == utts[2:] and sorted(read_multi_table(tmp_path / "data" / "train" / "faces.scp")) == utts[2:]


def test_wespeaker_data_dirs_are_read(tree, tmp_path):
    corpus, root = tree
    ws = tmp_path / "wespeaker"
    for part, src in (("vox2_dev", "train"), ("vox1", "eval")):
        (ws / part).mkdir(parents=True)
        wav = read_table(os.path.join(corpus, src, "wav.scp"))
        if part == "vox1":   # wav.scp + utt2spk, keys ending in .wav as WeSpeaker writes them
            (ws / part / "wav.scp").write_text("".join(f"{u}.wav {p}\n" for u, p in sorted(wav.items())))
            (ws / part / "utt2spk").write_text("".join(f"{u}.wav {u.split('/')[0]}\n" for u in sorted(wav)))
        else:                # WeSpeaker's raw list: json lines key/wav/spk
            lines = [json.dumps({"key": u + ".wav", "wav": p, "spk": u.split("/")[0]}) for u, p in sorted(wav.items())]
            (ws / part / "raw.list").write_text("".join(line + "\n" for line in lines))
    (ws / "vox1" / "trials").mkdir()
    rows = [ln.split() for ln in open(os.path.join(corpus, "eval", "trials", "O"))]
    kaldi = "".join(f"{a}.wav {b}.wav {lab}\n" for a, b, lab in rows)
    (ws / "vox1" / "trials" / "vox1_O_cleaned.kaldi").write_text(kaldi)
    out = tmp_path / "data"
    res = subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.prepare_voxceleb", "--wespeaker_data", str(ws),
                          "--out", str(out), "--dev_speakers", "0", "--no_progress"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert read_table(out / "train" / "wav.scp") == read_table(os.path.join(corpus, "train", "wav.scp"))
    assert read_table(out / "eval" / "wav.scp") == read_table(os.path.join(corpus, "eval", "wav.scp"))
    assert (out / "eval" / "trials" / "O").read_text() == open(os.path.join(corpus, "eval", "trials", "O")).read()
    (ws / "vox1" / "wav.scp").write_text("id10001/a/00001.wav /x.wav\n")
    (ws / "vox1" / "utt2spk").write_text("id10001/a/00001.wav id99999\n")
    with pytest.raises(LayoutError, match=r"utt2spk:id10001/a/00001.wav: expected an utterance key"):
        read_wespeaker_dir(str(ws / "vox1"))


def test_no_ffmpeg_binary_is_called():
    pkg = os.path.dirname(convert_lib.__file__)
    for name in os.listdir(pkg):
        if name.endswith(".py"):
            text = open(os.path.join(pkg, name)).read()
            assert "subprocess" not in text and "shutil.which" not in text, name
