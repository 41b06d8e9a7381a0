"""Bad inputs give named errors: truncated/corrupt embedding and feature arks (file, key, offset), truncated wavs
and non-image faces (found by the default validation), changed audio behind an unchanged key (fbank recomputed),
and outputs that keep the user's umask."""
import os
import stat
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from wespeaker_avkd.data.features import FbankError, extract_fbank_dir, read_feats
from wespeaker_avkd.scoring import ScoringError, load_embeddings
from wespeaker_avkd.utils.fileio import atomic_write


@pytest.fixture()
def ark(tmp_path):
    """5 embeddings k0..k4 (16-d) in e.ark/e.scp, and the ark's bytes."""
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/e.ark,{tmp_path}/e.scp") as w:
        for i in range(5):
            w[f"k{i}"] = np.full(16, i, np.float32)
    return tmp_path, (tmp_path / "e.ark").read_bytes()


def _broken(tmp_path, data):
    (tmp_path / "b.ark").write_bytes(data)
    (tmp_path / "b.scp").write_text((tmp_path / "e.scp").read_text().replace("e.ark", "b.ark"))
    return str(tmp_path / "b.scp"), str(tmp_path / "b.ark")


def _offset(tmp_path, key):
    return dict(line.split() for line in (tmp_path / "e.scp").read_text().splitlines())[key].rsplit(":", 1)[1]


@pytest.mark.parametrize("cut,detail", [(10, "ValueError: buffer size"), (70, "(AssertionError)")])
def test_truncated_embedding_ark_names_the_key(ark, cut, detail):
    tmp_path, data = ark
    scp, ark_path = _broken(tmp_path, data[:len(data) - cut])
    with pytest.raises(ScoringError) as err:
        load_embeddings(scp)
    assert str(err.value).startswith(f"{scp}: cannot read embeddings: entry 'k4' (line 5) at "
                                     f"{ark_path}:{_offset(tmp_path, 'k4')}: corrupt or truncated ark entry")
    assert detail in str(err.value)
    with pytest.raises(ScoringError, match=rf"^{ark_path}: cannot read embeddings: the entry after 'k3' \(entry 5\)"):
        load_embeddings(ark_path)


def test_garbled_embedding_entry_names_the_key(ark):
    tmp_path, data = ark
    i = data.index(b"k2 ") + 3
    scp, ark_path = _broken(tmp_path, data[:i] + b"\x80\x81XY" + data[i + 4:])
    with pytest.raises(ScoringError, match=r"entry 'k2' \(line 3\) at .*b.ark:\d+: corrupt or truncated ark entry \("):
        load_embeddings(scp)


def test_binary_file_given_as_scp(ark):
    tmp_path, data = ark
    (tmp_path / "x.scp").write_bytes(data)
    with pytest.raises(ScoringError, match=r"x.scp:1: not UTF-8 text \(an ark given where an scp is expected\?\)"):
        load_embeddings(tmp_path / "x.scp")


def test_score_cli_names_the_broken_entry(ark):
    tmp_path, data = ark
    scp, _ = _broken(tmp_path, data[:len(data) - 10])
    (tmp_path / "T").write_text("k0 k1 target\n")
    r = subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.score", "--embeddings", scp, "--trials",
                        str(tmp_path / "T"), "--output_dir", str(tmp_path / "s")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "entry 'k4' (line 5)" in r.stderr


def test_truncated_feats_entry_named(ark):
    tmp_path, data = ark
    _, ark_path = _broken(tmp_path, data[:len(data) - 10])
    good = f"{ark_path}:{_offset(tmp_path, 'k0')}"
    np.testing.assert_array_equal(read_feats(good, "k0", "feats.scp"), np.zeros(16, np.float32))
    bad = f"{ark_path}:{_offset(tmp_path, 'k4')}"
    with pytest.raises(FbankError, match=rf"^feats.scp: cannot read the features of utterance 'k4' at {bad}: "
                                         r"corrupt, truncated or missing ark entry \(ValueError"):
        read_feats(bad, "k4", "feats.scp")


def test_training_dataset_names_a_truncated_feats_entry(tmp_path):
    """The audio dataset (training and eval loaders) reads feats.scp through read_feats: a truncated ark entry
    stops with the utterance and its ark offset named, not kaldiio's bare 'buffer size' error."""
    from wespeaker_avkd.data.datasets import AudioDataset

    feats = {f"u{i}": np.full((30, 40), i, np.float32) for i in range(3)}
    kaldiio.save_ark(str(tmp_path / "f.ark"), feats, scp=str(tmp_path / "f.scp"))
    data = (tmp_path / "f.ark").read_bytes()
    (tmp_path / "f.ark").write_bytes(data[:len(data) - 100])
    table = dict(line.split() for line in (tmp_path / "f.scp").read_text().splitlines())
    ds = AudioDataset(sorted(feats), table, "feats")
    assert ds.make_input(0, 0, None).shape == (30, 40)
    with pytest.raises(FbankError, match=r"cannot read the features of utterance 'u2' at .*f\.ark:\d+: corrupt"):
        ds.make_input(2, 0, None)


def _data_dir(tmp_path, n=3, seconds=0.3):
    d = tmp_path / "data"
    d.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        w = tmp_path / f"u{i}.wav"
        sf.write(w, 0.1 * rng.standard_normal(int(16000 * seconds)), 16000, subtype="PCM_16")
        lines.append(f"u{i} {w}\n")
    (d / "wav.scp").write_text("".join(lines))
    return d


def _feats(out):
    table = dict(line.split() for line in (out / "feats.scp").read_text().splitlines())
    return {k: kaldiio.load_mat(v) for k, v in table.items()}


def test_fbank_blocks_keyed_by_content(tmp_path):
    d = _data_dir(tmp_path)
    out = tmp_path / "fbank"
    first = _feats(out) if extract_fbank_dir(str(d), str(out), nj=1, progress=False) else None
    ark_mtime = {p: p.stat().st_mtime_ns for p in out.glob("*.ark")}
    extract_fbank_dir(str(d), str(out), nj=1, progress=False)  # same inputs: blocks reused, nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.ark")} == ark_mtime
    # point u1 at other audio (the file u0 has): its block is recomputed
    (d / "wav.scp").write_text((d / "wav.scp").read_text().replace(f"{tmp_path}/u1.wav", f"{tmp_path}/u0.wav"))
    second = _feats(out) if extract_fbank_dir(str(d), str(out), nj=1, progress=False) else None
    np.testing.assert_array_equal(second["u1"], first["u0"])
    assert not np.array_equal(second["u1"], first["u1"])
    # other fbank settings: recomputed too
    extract_fbank_dir(str(d), str(out), nj=1, fbank_args={"num_mel_bins": 24}, progress=False)
    assert _feats(out)["u2"].shape[1] == 24


def test_fbank_names_the_truncated_wav(tmp_path):
    d = _data_dir(tmp_path)
    w = tmp_path / "u2.wav"
    w.write_bytes(w.read_bytes()[:-500])
    with pytest.raises(FbankError, match=rf"^utterance 'u2' \({w}\): {w}: cannot read audio \(truncated"):
        extract_fbank_dir(str(d), str(tmp_path / "fbank"), nj=1, progress=False)
    r = subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.compute_fbank", "--data", str(d), "--out",
                        str(tmp_path / "fbank"), "--nj", "1", "--no_progress"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and f"utterance 'u2' ({w})" in r.stderr


def test_validate_default_finds_truncated_wav_and_non_image(tmp_path):
    d = _data_dir(tmp_path)
    (d / "utt2spk").write_text("u0 s0\nu1 s0\nu2 s1\n")
    (d / "spk2utt").write_text("s0 u0 u1\ns1 u2\n")
    from PIL import Image

    faces = []
    for i in range(3):
        p = tmp_path / f"f{i}.png"
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(p)
        faces.append(f"u{i} {p}\n")
    (d / "faces.scp").write_text("".join(faces))
    cmd = [sys.executable, "-m", "wespeaker_avkd.bin.validate_data", str(d)]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    (tmp_path / "u1.wav").write_bytes((tmp_path / "u1.wav").read_bytes()[:-100])
    (tmp_path / "f2.png").write_text("<html>not a face</html>")
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{d}/wav.scp:2: utterance 'u1': corrupt or unreadable audio {tmp_path}/u1.wav (truncated" in r.stdout
    assert f"{d}/faces.scp:3: utterance 'u2': not an image {tmp_path}/f2.png" in r.stdout


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_keeps_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        with atomic_write(tmp_path / "out.txt") as f:
            f.write("x")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")  # what open() gives under the same umask
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == mode == stat.S_IMODE(plain.stat().st_mode)
