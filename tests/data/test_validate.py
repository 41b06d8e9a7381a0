"""Validator: a clean dir passes; each kind of problem is reported with its file, line and message."""
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from wespeaker_avkd.data.validate import validate, validate_data_dir, wav_truncation
from wespeaker_avkd.scoring import ScoringError, read_trial_rows

UTTS = {"id00001/vidA/00001": "id00001", "id00001/vidB/00001": "id00001", "id00002/vidC/00001": "id00002"}


def _make_dir(root, sample_rate=16000):
    """A tiny valid data dir: 3 utts, 2 speakers, wavs, 2 frames each, trials in both forms."""
    d = root / "data"
    (d / "trials").mkdir(parents=True)
    (d / "trials_voxceleb").mkdir()
    wav, faces = [], []
    for i, utt in enumerate(sorted(UTTS)):
        w = root / "media" / (utt + ".wav")
        w.parent.mkdir(parents=True, exist_ok=True)
        sf.write(w, np.zeros(1600) + 0.01 * i, sample_rate, subtype="PCM_16")
        frames = []
        for f in range(2):
            p = root / "media" / utt / f"{f}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8, 3), 10 * i, np.uint8)).save(p)
            frames.append(str(p))
        wav.append(f"{utt} {w}\n")
        faces.append(f"{utt} {' '.join(frames)}\n")
    (d / "wav.scp").write_text("".join(wav))
    (d / "faces.scp").write_text("".join(faces))
    (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(UTTS.items())))
    (d / "spk2utt").write_text("id00001 id00001/vidA/00001 id00001/vidB/00001\nid00002 id00002/vidC/00001\n")
    (d / "trials" / "O").write_text("id00001/vidA/00001 id00001/vidB/00001 target\n"
                                    "id00001/vidA/00001 id00002/vidC/00001 nontarget\n")
    (d / "trials_voxceleb" / "O.txt").write_text("1 id00001/vidA/00001 id00001/vidB/00001\n")
    return d


def _messages(d, deep=False):
    return [str(p) for p in validate_data_dir(str(d), deep=deep)]


def _one(d, deep=False):
    msgs = _messages(d, deep)
    assert msgs, "expected at least one problem"
    return msgs


def test_clean_dir_passes(tmp_path):
    d = _make_dir(tmp_path)
    assert _messages(d, deep=True) == []


def test_missing_audio(tmp_path):
    d = _make_dir(tmp_path)
    os.remove(tmp_path / "media" / "id00001/vidB/00001.wav")
    msgs = _one(d)
    assert any(m.startswith(f"{d}/wav.scp:2: utterance 'id00001/vidB/00001': audio file missing") for m in msgs)


def test_missing_image(tmp_path):
    d = _make_dir(tmp_path)
    os.remove(tmp_path / "media" / "id00002/vidC/00001" / "1.png")
    msgs = _one(d)
    assert any(m.startswith(f"{d}/faces.scp:3: utterance 'id00002/vidC/00001': image file missing") for m in msgs)


def test_utt_without_speaker(tmp_path):
    d = _make_dir(tmp_path)
    (d / "utt2spk").write_text("id00001/vidA/00001 id00001\nid00001/vidB/00001 id00001\n")
    (d / "spk2utt").write_text("id00001 id00001/vidA/00001 id00001/vidB/00001\n")
    assert f"{d}/wav.scp:3: utterance 'id00002/vidC/00001' has no speaker in {d}/utt2spk" in _one(d)


def test_speaker_without_utts(tmp_path):
    d = _make_dir(tmp_path)
    with open(d / "spk2utt", "a") as f:
        f.write("id00003\n")
    msgs = _one(d)
    assert f"{d}/spk2utt:3: speaker 'id00003' has no utterances" in msgs


def test_duplicate_key(tmp_path):
    d = _make_dir(tmp_path)
    with open(d / "utt2spk", "a") as f:
        f.write("id00002/vidC/00001 id00002\n")
    assert f"{d}/utt2spk:4: duplicate key 'id00002/vidC/00001' (first on line 3)" in _one(d)


def test_unsorted(tmp_path):
    d = _make_dir(tmp_path)
    lines = (d / "wav.scp").read_text().splitlines(True)
    (d / "wav.scp").write_text(lines[1] + lines[0] + lines[2])
    msgs = _one(d)
    assert any(m.startswith(f"{d}/wav.scp:2: not sorted: 'id00001/vidA/00001' comes after") for m in msgs)


def test_wrong_sample_rate(tmp_path):
    d = _make_dir(tmp_path)
    sf.write(tmp_path / "media" / "id00001/vidA/00001.wav", np.zeros(800), 8000, subtype="PCM_16")
    msgs = _one(d)
    assert any(m.startswith(f"{d}/wav.scp:1: utterance 'id00001/vidA/00001': sample rate 8000 Hz, expected 16000")
               for m in msgs)


def test_trial_key_not_in_dir(tmp_path):
    d = _make_dir(tmp_path)
    with open(d / "trials" / "O", "a") as f:
        f.write("id00001/vidA/00001 id09999/zzz/00001 nontarget\n")
    with open(d / "trials_voxceleb" / "O.txt", "a") as f:
        f.write("0 id09998/zzz/00001 id00001/vidA/00001\n")
    msgs = _one(d)
    assert f"{d}/trials/O:3: trial key 'id09999/zzz/00001' is not in the data dir" in msgs
    assert f"{d}/trials_voxceleb/O.txt:2: trial key 'id09998/zzz/00001' is not in the data dir" in msgs


def test_trial_lines_follow_the_scorers_grammar(tmp_path):
    """Every bad line is named, with the compiled parser's message and line numbering: for the scorer, and so
    here, a lone CR separates fields without ending the line and a form feed is part of a field."""
    d = _make_dir(tmp_path)
    good = "id00001/vidA/00001 id00001/vidB/00001"
    (d / "trials" / "O").write_bytes(f"{good} target\n{good} tgt\n{good}\n{good} target\r{good} target\n"
                                     f"{good} \x0ctarget\n{good} nontarget\n".encode())
    (d / "trials_voxceleb" / "O.txt").write_text(f"1 {good}\n{good} target\n")
    msgs = [m for m in _one(d) if "/trials" in m]
    o, vox = f"{d}/trials/O", f"{d}/trials_voxceleb/O.txt"
    assert msgs == [f"{o}:2: unknown label 'tgt' (Kaldi form: expected target or nontarget)",
                    f"{o}:3: malformed trial line: expected 3 fields 'enroll test target|nontarget', the form of "
                    "this list, got 2",
                    f"{o}:4: malformed trial line: expected 3 fields 'enroll test target|nontarget', the form of "
                    "this list, got 6",
                    f"{o}:5: unknown label '\\x0ctarget' (Kaldi form: expected target or nontarget)",
                    f"{vox}:2: unknown label 'id00001/vidA/00001' (VoxCeleb form: expected 1 or 0 first)"]
    # The scorer names the same first line with the same message.
    with pytest.raises(ScoringError) as err:
        read_trial_rows(d / "trials" / "O", list(UTTS))
    assert str(err.value) == msgs[0]


def test_empty_trial_list(tmp_path):
    d = _make_dir(tmp_path)
    (d / "trials" / "E").write_text("\n  \n")
    assert f"{d}/trials/E: empty trial list (no trial lines)" in _one(d)


def test_corrupt_wav_deep(tmp_path):
    d = _make_dir(tmp_path)
    path = tmp_path / "media" / "id00001/vidB/00001.wav"
    data = path.read_bytes()
    path.write_bytes(data[:44] + b"")  # header only, claims samples that are not there
    msgs = _one(d, deep=True)
    assert any(m.startswith(f"{d}/wav.scp:2: utterance 'id00001/vidB/00001': corrupt or unreadable audio")
               for m in msgs)


def test_garbage_wav(tmp_path):
    d = _make_dir(tmp_path)
    (tmp_path / "media" / "id00001/vidB/00001.wav").write_bytes(b"RIFF garbage" * 10)
    msgs = _one(d)
    assert any("wav.scp:2: utterance 'id00001/vidB/00001': corrupt or unreadable audio" in m for m in msgs)


def test_corrupt_image_deep(tmp_path):
    """An image whose header is intact but whose pixel data is cut: only decoding (--deep) finds it."""
    d = _make_dir(tmp_path)
    path = tmp_path / "media" / "id00001/vidA/00001" / "0.png"
    data = path.read_bytes()
    path.write_bytes(data[:data.index(b"IDAT") + 6])  # signature + IHDR kept, image data cut
    assert _messages(d, deep=False) == []  # the cheap check reads headers only
    msgs = _one(d, deep=True)
    assert any(m.startswith(f"{d}/faces.scp:1: utterance 'id00001/vidA/00001': corrupt image {path}") for m in msgs)


@pytest.mark.parametrize("content", [b"", b"not an image at all\n", b"\x89PNG\r\n\x1a\n" + b"\0" * 4])
def test_non_image_face_found_by_default(tmp_path, content):
    d = _make_dir(tmp_path)
    path = tmp_path / "media" / "id00002/vidC/00001" / "1.png"
    path.write_bytes(content)
    msgs = _one(d, deep=False)
    assert msgs == [f"{d}/faces.scp:3: utterance 'id00002/vidC/00001': not an image {path} " + msgs[0].split(
        f"not an image {path} ")[1]]


def test_truncated_wav_found_by_default(tmp_path):
    """libsndfile reads a truncated wav without complaint (frames clamped to what is there): the default check
    compares the RIFF header with the file size, and load_wav (fbank) refuses it naming the file."""
    d = _make_dir(tmp_path)
    path = tmp_path / "media" / "id00001/vidB/00001.wav"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 1000])
    assert sf.info(str(path)).frames == (len(data) - 1000 - 44) // 2  # the library alone does not notice
    msgs = _one(d, deep=False)
    assert msgs == [f"{d}/wav.scp:2: utterance 'id00001/vidB/00001': corrupt or unreadable audio {path} "
                    "(truncated: the header declares 3200 bytes of audio, the file holds 2200 (1600 frames, "
                    "1100 present))"]
    assert _one(d, deep=True) == msgs
    from wespeaker_avkd.data.fbank import load_wav

    with pytest.raises(RuntimeError, match=rf"^{path}: cannot read audio \(truncated"):
        load_wav(path)


def test_wav_header_check_accepts_odd_chunks(tmp_path):
    """Extra chunks (LIST) before data and an odd-sized chunk's pad byte are walked, not mistaken for truncation."""
    path = tmp_path / "x.wav"
    sf.write(path, np.zeros(100), 16000, subtype="PCM_16")
    data = path.read_bytes()
    i = data.index(b"data")
    extra = b"LIST" + (3).to_bytes(4, "little") + b"abc\0"
    fixed = data[:4] + (len(data) - 8 + len(extra)).to_bytes(4, "little") + data[8:i] + extra + data[i:]
    path.write_bytes(fixed)
    assert wav_truncation(path) is None and sf.info(str(path)).frames == 100
    path.write_bytes(fixed[:-2])
    assert wav_truncation(path).startswith("truncated: the header declares 200 bytes of audio, the file holds 198")


def test_cli_exit_codes(tmp_path):
    d = _make_dir(tmp_path)
    ok = subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.validate_data", str(d), "--deep"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    os.remove(tmp_path / "media" / "id00001/vidA/00001.wav")
    dirs, problems = validate([str(tmp_path)])
    assert dirs == [str(d)] and problems  # the root is searched for data dirs
    bad = subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.validate_data", str(d)],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "audio file missing" in bad.stdout
