"""bin.embed: embeddings of wav files / face images equal the recipe's extraction (inference/extract.py) of the same
data dir, and an independent recomputation (kaldi fbank + CMN, PIL transform) through the encoder."""
import os

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi
from PIL import Image

from wespeaker_avkd.bin import embed as embed_cli
from wespeaker_avkd.data.kaldi_dir import read_multi_table, read_table
from wespeaker_avkd.inference.extract import extract_embeddings, load_trained


def _recipe(exp, data, tmp_path):
    """{key: embedding} written by the recipe's extraction of data."""
    scp = extract_embeddings(exp, data, str(tmp_path / "recipe"), progress=False)
    return {k: np.asarray(v) for k, v in kaldiio.load_scp(scp).items()}


def _printed(capsys):
    """{key: vector} from bin.embed's 'key v1 v2 ...' lines."""
    out = {}
    for line in capsys.readouterr().out.splitlines():
        key, *values = line.split()
        out[key] = np.array([float(v) for v in values], dtype=np.float32)
    return out


def _assert_tables_equal(got, want, atol=1e-5):
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key].shape == want[key].shape == (512,)
        np.testing.assert_allclose(got[key], want[key], atol=atol, rtol=0, err_msg=key)


def test_audio_wav_scp_and_files_equal_recipe_extraction(audio_exp, tmp_path, capsys):
    exp, data = audio_exp
    want = _recipe(exp, data, tmp_path)
    capsys.readouterr()
    out = tmp_path / "emb"
    assert embed_cli.main(["--exp_dir", exp, "--wav_scp", os.path.join(data, "wav.scp"),
                           "--out", f"ark,scp:{out}.ark,{out}.scp"]) == 0
    _assert_tables_equal({k: np.asarray(v) for k, v in kaldiio.load_scp(f"{out}.scp").items()}, want)
    # single files, keyed by their path, printed
    wav = read_table(os.path.join(data, "wav.scp"))
    keys = sorted(wav)[:3]
    assert embed_cli.main(["--exp_dir", exp, "--inputs"] + [wav[k] for k in reversed(keys)]) == 0
    printed = _printed(capsys)
    assert list(printed) == sorted(printed)  # sorted by key, as bin.extract writes
    _assert_tables_equal(printed, {wav[k]: want[k] for k in keys})
    # independent reference: Kaldi fbank (16-bit scale, hamming, 40 bins) and CMN written out here
    _, net, _ = load_trained(exp)
    for key in keys:
        wave, sr = sf.read(wav[key], dtype="float32")
        fb = kaldi.fbank(torch.from_numpy(wave)[None] * 32768, num_mel_bins=40, frame_length=25, frame_shift=10,
                         dither=0.0, sample_frequency=sr, window_type="hamming", use_energy=False)
        with torch.no_grad():
            ref = net.encoder((fb - fb.mean(0))[None])[0].numpy()
        np.testing.assert_allclose(printed[wav[key]], ref, atol=1e-4, rtol=0)


def test_visual_faces_scp_and_list_equal_recipe_extraction(visual_exp, tmp_path, capsys):
    exp, data = visual_exp
    want = _recipe(exp, data, tmp_path)
    capsys.readouterr()
    assert embed_cli.main(["--exp_dir", exp, "--faces_scp", os.path.join(data, "faces.scp")]) == 0
    _assert_tables_equal(_printed(capsys), want)
    # a --list with 'key frame ...' lines: same segments
    faces = read_multi_table(os.path.join(data, "faces.scp"))
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{k} {' '.join(v)}\n" for k, v in faces.items()))
    assert embed_cli.main(["--exp_dir", exp, "--list", str(listing)]) == 0
    _assert_tables_equal(_printed(capsys), want)
    # one image: independent transform (PIL resize to 32, (x - 0.5) / 0.5) through the encoder
    frame = faces[sorted(faces)[0]][0]
    assert embed_cli.main(["--exp_dir", exp, "--inputs", frame]) == 0
    img = Image.open(frame).convert("RGB").resize((32, 32), Image.BILINEAR)
    x = (torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1) - 0.5) / 0.5
    _, net, _ = load_trained(exp)
    with torch.no_grad():
        ref = net.encoder(x[None])[0].numpy()
    np.testing.assert_allclose(_printed(capsys)[frame], ref, atol=1e-4, rtol=0)


def test_wespeaker_checkpoint_with_config(audio_exp, tmp_path, capsys):
    """A flat WeSpeaker-layout state_dict (encoder + projection.*) with its config embeds like the exp dir."""
    exp, data = audio_exp
    cfg, net, _ = load_trained(exp)
    flat = dict(net.encoder.state_dict())
    flat.update({f"projection.{k}": v for k, v in net.projection.state_dict().items()})
    torch.save(flat, tmp_path / "avg_model.pt")
    wav_scp = os.path.join(data, "wav.scp")
    assert embed_cli.main(["--exp_dir", exp, "--wav_scp", wav_scp]) == 0
    want = _printed(capsys)
    assert embed_cli.main(["--wespeaker_checkpoint", str(tmp_path / "avg_model.pt"),
                           "--config", os.path.join(exp, "config.yaml"), "--wav_scp", wav_scp]) == 0
    _assert_tables_equal(_printed(capsys), want, atol=0)


@pytest.mark.parametrize("argv, message", [
    (["--inputs", "a.wav", "--list", "l.txt"], "exactly one of"),
    (["--inputs", "a.wav", "a.wav"], "given twice"),
    (["--faces_scp", "FACES"], "audio model; it embeds a wav.scp, not a faces.scp"),
    (["--wav_scp", "WAV", "--out", "scp:x.scp"], "expected ark,scp"),
    (["--inputs", "no_such.wav"], "no_such.wav"),
])
def test_bad_inputs_are_one_line_errors(audio_exp, visual_exp, tmp_path, capsys, argv, message):
    exp, data = audio_exp
    argv = [a.replace("FACES", os.path.join(visual_exp[1], "faces.scp")).replace("WAV", os.path.join(data, "wav.scp"))
            for a in argv]
    assert embed_cli.main(["--exp_dir", exp] + argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_wespeaker_config_and_checkpoint_key_for_key(audio_exp, tmp_path, capsys):
    """WeSpeaker's own resnet.yaml (its key names, fbank dither 1.0, embed 256) with a flat WeSpeaker state_dict:
    the embedding is the encoder's on undithered Kaldi fbank + CMN computed here."""
    from pathlib import Path

    from wespeaker_avkd.registry import MODELS

    conf = Path(__file__).resolve().parents[1] / "config" / "data" / "wespeaker_resnet.yaml"
    torch.manual_seed(5)
    model = MODELS.build("ResNet34", feat_dim=40, embed_dim=256, pooling_func="TSTP", two_emb_layer=False).eval()
    flat = {f"module.{k}": v for k, v in model.state_dict().items()}  # as saved from DDP
    flat["module.projection.weight"] = torch.randn(7, 256)
    torch.save(flat, tmp_path / "avg_model.pt")
    wav = sorted(read_table(os.path.join(audio_exp[1], "wav.scp")).values())[0]
    assert embed_cli.main(["--wespeaker_checkpoint", str(tmp_path / "avg_model.pt"), "--config", str(conf),
                           "--inputs", wav]) == 0
    got = _printed(capsys)[wav]
    wave, sr = sf.read(wav, dtype="float32")
    fb = kaldi.fbank(torch.from_numpy(wave)[None] * 32768, num_mel_bins=40, frame_length=25, frame_shift=10,
                     dither=0.0, sample_frequency=sr, window_type="hamming", use_energy=False)
    with torch.no_grad():
        ref = model((fb - fb.mean(0))[None])[0].numpy()
    assert got.shape == (256,)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
