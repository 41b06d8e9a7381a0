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


def _wav_dir(path, seconds=(0.6, 1.1, 1.7)):
    """wav.scp of a few 16 kHz PCM16 files (tones with a slow modulation, in noise)."""
    from wespeaker_avkd.data.kaldi_dir import write_table

    rng = np.random.default_rng(4)
    path.mkdir()
    table = {}
    for i, sec in enumerate(seconds):
        t = np.arange(int(16000 * sec)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (150 + 90 * i) * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
        sf.write(path / f"u{i}.wav", wave + 0.02 * rng.standard_normal(t.size), 16000, subtype="PCM_16")
        table[f"u{i}"] = str(path / f"u{i}.wav")
    write_table(path / "wav.scp", table)
    return str(path)


def _kaldi_compression_bound(mat: np.ndarray) -> np.ndarray:
    """Per column, the most Kaldi's speech-feature compression (kSpeechFeature) can move a value: a byte code
    piecewise-linear between the column's 0/25/75/100 percentiles (64, 128 and 63 steps, half a step at most
    when rounding), the percentiles themselves 16-bit codes on the matrix's [min, max] range."""
    col_range = mat.max(axis=0) - mat.min(axis=0)
    return col_range / 63 / 2 + (mat.max() - mat.min()) / 65535 + 1e-5


def test_compressed_fbank_round_trips_within_kaldis_error_and_the_dataset_reads_it(tmp_path):
    import kaldiio

    from wespeaker_avkd.bin.compute_fbank import main as compute_fbank_main
    from wespeaker_avkd.data.datasets import AudioDataset
    from wespeaker_avkd.data.features import extract_fbank_dir, read_feats
    from wespeaker_avkd.data.kaldi_dir import read_table

    data = _wav_dir(tmp_path / "data")
    plain = extract_fbank_dir(data, str(tmp_path / "plain"), nj=1, progress=False)
    compute_fbank_main(["--data", data, "--out", str(tmp_path / "cm"), "--nj", "1", "--compress", "--no_progress"])
    compressed = read_table(str(tmp_path / "cm" / "feats.scp"))
    assert sorted(compressed) == sorted(plain)
    dataset = AudioDataset(sorted(compressed), compressed, "feats")
    for index, utt in enumerate(sorted(plain)):
        want = kaldiio.load_mat(plain[utt])
        got = read_feats(compressed[utt], utt, "feats.scp")
        bound = _kaldi_compression_bound(want)
        assert got.shape == want.shape and got.dtype == np.float32
        err = np.abs(got - want)
        assert 0 < err.max() and np.all(err <= bound), (utt, float((err - bound).max()))
        # the dataset decompresses transparently: CMN'd whole utterance within twice the bound (value + mean)
        cmn = dataset.make_input(index, 0, None).numpy()
        assert np.all(np.abs(cmn - (want - want.mean(axis=0))) <= 2 * bound)
    arks = {kind: sum(p.stat().st_size for p in (tmp_path / kind).glob("*.ark")) for kind in ("plain", "cm")}
    assert arks["cm"] < 0.3 * arks["plain"]  # a byte a value instead of a float32
    # a compressed block is not reused for an uncompressed request (the stamp records the compression)
    extract_fbank_dir(data, str(tmp_path / "cm"), nj=1, progress=False)
    assert sum(p.stat().st_size for p in (tmp_path / "cm").glob("*.ark")) == arks["plain"]
    with pytest.raises(ValueError, match="compression_method must be one of 1-7"):
        extract_fbank_dir(data, str(tmp_path / "x"), nj=1, progress=False, compression_method=9)
