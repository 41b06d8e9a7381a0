"""Our fbank against kaldi-native-fbank (an independent C++ Kaldi implementation) and CMN/wav reading."""
import numpy as np
import pytest
import soundfile as sf
import torch

from wespeaker_avkd.data.fbank import apply_cmn, compute_fbank, load_wav

knf = pytest.importorskip("kaldi_native_fbank")


def _knf_fbank(wave: np.ndarray) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = 16000
    opts.frame_opts.frame_length_ms = 25.0
    opts.frame_opts.frame_shift_ms = 10.0
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "hamming"
    opts.frame_opts.snip_edges = True
    opts.frame_opts.remove_dc_offset = True   # torchaudio's default
    opts.frame_opts.preemph_coeff = 0.97      # torchaudio's default
    opts.mel_opts.num_bins = 40
    opts.use_energy = False
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(16000, (wave.astype(np.float64) * 32768.0).astype(np.float32).tolist())
    fb.input_finished()
    return np.stack([np.asarray(fb.get_frame(i)) for i in range(fb.num_frames_ready)])


@pytest.mark.parametrize("seconds", [0.5, 2.3])
def test_fbank_matches_kaldi_native_fbank(tmp_path, seconds):
    rng = np.random.default_rng(0)
    n = int(16000 * seconds)
    t = np.arange(n) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(n)
    path = tmp_path / "x.wav"
    sf.write(path, wave, 16000, subtype="PCM_16")
    w, sr = load_wav(path)
    assert sr == 16000 and w.dtype == torch.float32 and w.shape == (n,)
    ours = compute_fbank(w).numpy()
    ref = _knf_fbank(w.numpy())
    assert ours.shape == ref.shape == (1 + (n - 400) // 160, 40)
    assert np.max(np.abs(ours - ref)) < 1e-3


def test_cmn_zero_mean_and_shape():
    feats = torch.randn(50, 40) * 3 + 7
    out = apply_cmn(feats)
    assert out.shape == feats.shape
    assert torch.allclose(out.mean(0), torch.zeros(40), atol=1e-5)
    assert torch.allclose(out - out[0], feats - feats[0], atol=1e-5)  # only a per-bin offset removed


def test_compute_fbank_rejects_2d():
    with pytest.raises(ValueError, match="1-D"):
        compute_fbank(torch.zeros(2, 16000))


def test_load_wav_names_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    with pytest.raises(RuntimeError, match="bad.wav"):
        load_wav(bad)
