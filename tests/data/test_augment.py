"""WeSpeaker's pipeline steps (data/augment.py): hand-computed cases, statistics over many draws, the generated
noise/RIR sets and the dataset hook (off = the same items as before, on = WeSpeaker's semantics)."""
import io
import os
import pickle

import numpy as np
import pytest
import soundfile as sf
import torch

from wespeaker_avkd.data import augment as A
from wespeaker_avkd.data import noise_sets as N
from wespeaker_avkd.data.dataset_args import AudioDatasetArgs
from wespeaker_avkd.data.datasets import AudioDataset
from wespeaker_avkd.data.samplers import SeededBatchSampler, seeded_rng
from wespeaker_avkd.utils.schema import Where

RATE = 16000


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- noise, reverberation
def test_snr_range_by_musan_category():
    assert A.snr_range("noise/free-sound/x.wav") == (0, 15)
    assert A.snr_range("speech/babble/x.wav") == (10, 30)
    assert A.snr_range("music/tones/x.wav") == (5, 15)
    assert A.snr_range("other/x.wav") == (0, 15)


def test_add_noise_hand_computed():
    audio = np.full(4, 0.5, np.float32)          # power 0.25
    noise = np.array([1, -1, 1, -1], np.float32)  # power 1
    out = A.add_noise(audio, noise, 10.0)
    # WeSpeaker: gain^2 = 10^((10 log10(0.25 + 1e-4) - 10 log10(1 + 1e-4) - 10) / 10) = 0.0251 * (0.2501/0.25)
    gain = np.sqrt((0.25 + 1e-4) / (1 + 1e-4) / 10)
    np.testing.assert_allclose(out, audio + gain * noise, rtol=1e-6)


def test_measured_snr_within_configured_range_over_many_draws(tmp_path):
    rng = _rng(1)
    keys = {"noise/a/n.wav": 0, "speech/b/s.wav": 1, "music/c/m.wav": 2}
    scp = tmp_path / "wav.scp"
    lines = []
    for key, i in keys.items():
        p = tmp_path / f"{i}.wav"
        sf.write(p, (0.3 * rng.standard_normal(RATE)).astype(np.float32), RATE, subtype="FLOAT")
        lines.append(f"{key} {p}\n")
    scp.write_text("".join(lines))
    noises = A.AudioSet(str(scp))
    measured = {"noise": [], "speech": [], "music": []}
    for _ in range(600):
        audio = (0.2 * rng.standard_normal(800)).astype(np.float32)
        key, noise, _ = noises.draw(rng)
        noise = A.random_chunk(noise, len(audio), rng)
        lo, hi = A.snr_range(key)
        out = A.add_noise(audio, noise, float(rng.uniform(lo, hi)))
        added = out - audio
        measured[key.split("/")[0]].append(10 * np.log10(np.mean(audio.astype(np.float64) ** 2)
                                                         / np.mean(added.astype(np.float64) ** 2)))
    for cat, (lo, hi) in A.SNR_RANGES.items():
        snrs = np.array(measured[cat])
        assert len(snrs) > 100
        # within the range up to the 1e-4 power floor's bias (< 0.02 dB at these levels), and covering it
        assert snrs.min() > lo - 0.05 and snrs.max() < hi + 0.05, cat
        assert snrs.min() < lo + 0.5 and snrs.max() > hi - 0.5, cat


def test_reverberate_hand_computed():
    audio = np.array([1, 2, 3, 4], np.float32)
    # a two-tap RIR [3, 4] has energy 5: normalised [0.6, 0.8]; full convolution cut to 4 samples
    out = A.reverberate(audio, np.array([3.0, 4.0]))
    np.testing.assert_allclose(out, [0.6, 2.0, 3.4, 4.8], rtol=1e-6)
    np.testing.assert_allclose(A.reverberate(audio, np.array([0.0, 2.0])), [0, 1, 2, 3])
    with pytest.raises(ValueError, match="all zeros"):
        A.reverberate(audio, np.zeros(3))


def test_peak_normalize():
    np.testing.assert_allclose(A.peak_normalize(np.array([0.5, -2.0])), [0.5 / 2.0001, -2 / 2.0001], rtol=1e-6)


def test_reverb_or_noise_probability_and_choice(sets):
    rng = _rng(2)
    audio = (0.1 * rng.standard_normal(4000)).astype(np.float32)
    rirs, noises = A.AudioSet(sets["rirs"]), A.AudioSet(sets["noise"])
    changed = sum(not np.array_equal(A.reverb_or_noise(audio, rng, 0.6, rirs, noises, RATE), audio)
                  for _ in range(400))
    assert 0.5 < changed / 400 < 0.7  # aug_prob 0.6
    assert all(np.array_equal(A.reverb_or_noise(audio, rng, 0.0, rirs, noises, RATE), audio) for _ in range(20))
    out = A.reverb_or_noise(audio, _rng(3), 1.0, rirs, noises, RATE)
    assert out.shape == audio.shape and np.max(np.abs(out)) <= 1.0


# ---------------------------------------------------------------- speed, resampling, length
@pytest.mark.parametrize("speed", A.SPEEDS)
def test_speed_perturb_changes_length_by_the_factor(speed):
    wave = torch.sin(torch.arange(32000) * 2 * np.pi * 440 / RATE)
    out = A.speed_perturb(wave, RATE, speed)
    assert len(out) == int(np.ceil(len(wave) / speed))
    # the pitch moves with the speed (sox `speed`): the spectral peak is at 440 x speed Hz
    peak = np.argmax(np.abs(np.fft.rfft(out.numpy()))) * RATE / len(out)
    assert abs(peak - 440 * speed) < 2


def test_speed_label_expansion():
    assert [A.speed_label(5, k, 100) for k in range(3)] == [5, 105, 205]
    assert A.num_classes(100, True) == 300 and A.num_classes(100, False) == 100


def test_resample_length_and_content():
    wave = torch.sin(torch.arange(8000) * 2 * np.pi * 300 / 8000)
    out = A.resample(wave, 8000, RATE)
    assert len(out) == A.resampled_length(8000, 8000, RATE) == 16000
    ref = torch.sin(torch.arange(16000) * 2 * np.pi * 300 / RATE)
    assert torch.allclose(out[200:-200], ref[200:-200], atol=1e-2)
    assert A.resample(wave, RATE, RATE) is wave


def test_filter_bounds_and_cap():
    assert A.filter_bounds(100, 800, 10, RATE) == (16000, 128000)
    data = np.arange(10)
    assert A.cap_length(data, 20, _rng()) is data
    cut = A.cap_length(data, 4, _rng())
    assert len(cut) == 4 and np.all(np.diff(cut) == 1)


# ---------------------------------------------------------------- features, order
def test_spec_aug_masks_within_bounds():
    rng = _rng(4)
    applied = 0
    for _ in range(300):
        feats = torch.ones(50, 40)
        out = A.spec_aug(feats, rng, num_t_mask=2, num_f_mask=1, max_t=10, max_f=8, prob=0.6)
        assert torch.equal(feats, torch.ones(50, 40))  # the input is not changed
        zero_rows = int((out == 0).all(1).sum())
        zero_cols = int((out == 0).all(0).sum())
        if zero_rows or zero_cols:
            applied += 1
            assert 1 <= zero_cols <= 8  # one frequency band of width 1..8
            assert 1 <= zero_rows <= 20  # two time bands of width 1..10 (may overlap)
    assert 0.5 < applied / 300 < 0.7


def test_spec_aug_hand_computed():
    class Fixed:  # the draws of a generator, in order: prob, t start, t width, f start, f width
        def __init__(self):
            self.values = iter([0.0, 3, 2, 5, 1])

        def random(self):
            return next(self.values)

        def integers(self, lo, hi):
            return next(self.values)

    out = A.spec_aug(torch.ones(6, 7), Fixed(), 1, 1, 10, 8, 0.5)
    expected = torch.ones(6, 7)
    expected[3:5, :] = 0
    expected[:, 5:6] = 0
    assert torch.equal(out, expected)


def test_buffer_shuffle():
    items = list(range(10))
    out = A.buffer_shuffle(items, 4, _rng(5))
    assert sorted(out[:4]) == [0, 1, 2, 3] and sorted(out[4:8]) == [4, 5, 6, 7] and sorted(out[8:]) == [8, 9]
    assert out != items
    assert A.buffer_shuffle(items, 1, _rng()) == items


def test_samples_per_epoch_and_sampler():
    assert A.samples_per_epoch(50, 0) == 50 and A.samples_per_epoch(50, 120) == 120
    s = SeededBatchSampler(50, 10, seed=1, num_samples=120)
    s.set_epoch(0)
    batches = list(s)
    assert len(s) == len(batches) == 12
    flat = [i for b in batches for i, _, _ in b]
    assert flat[50:100] == flat[:50] and sorted(flat[:50]) == list(range(50))  # the epoch's order, repeated
    plain = SeededBatchSampler(50, 10, seed=1)
    plain.set_epoch(0)
    assert [b for b in plain] == [b for b in SeededBatchSampler(50, 10, seed=1, num_samples=50)]


# ---------------------------------------------------------------- sets
@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    speech = root / "speech.scp"
    rng = _rng(6)
    lines = []
    for i in range(4):
        p = root / f"v{i}.wav"
        sf.write(p, (0.1 * rng.standard_normal(RATE)).astype(np.float32), RATE, subtype="PCM_16")
        lines.append(f"u{i} {p}\n")
    speech.write_text("".join(lines))
    return {"noise": N.write_noise_set(str(root / "musan"), str(speech), per_kind=2, seconds=1.0),
            "rirs": N.write_rir_set(str(root / "rirs"), count=3)}


def test_generated_sets(sets):
    noises = A.AudioSet(sets["noise"])
    cats = {k.split("/")[0] for k in noises.keys}
    assert cats == {"noise", "speech", "music"} and len(noises.keys) == 10
    wave, rate = noises.read("noise/pink/noise-pink-0000.wav")
    assert rate == RATE and len(wave) == RATE and abs(np.max(np.abs(wave)) - N.PEAK) < 1e-3
    rirs = A.AudioSet(os.path.dirname(sets["rirs"]))
    rir, _ = rirs.read(rirs.keys[0])
    assert np.argmax(np.abs(rir)) == 0  # direct path first, then decay


def test_rir_decay_matches_rt60():
    rir = N.synthetic_rir(RATE, 0.4, _rng(7), seconds=0.5)
    energy = np.cumsum(rir[::-1] ** 2)[::-1]  # Schroeder integral
    db = 10 * np.log10(energy / energy[int(0.003 * RATE)])
    t = np.arange(len(rir)) / RATE
    slope = np.polyfit(t[(db < -5) & (db > -25)], db[(db < -5) & (db > -25)], 1)[0]
    assert abs(-60 / slope - 0.4) < 0.08


def test_coloured_noise_spectral_slope():
    for exponent in (0.0, 1.0, 2.0):
        x = N.coloured_noise(2 ** 16, exponent, _rng(8))
        p = np.abs(np.fft.rfft(x)) ** 2
        f = np.arange(len(p))
        band = (f > 100) & (f < 10000)
        slope = np.polyfit(np.log10(f[band]), np.log10(p[band]), 1)[0]
        assert abs(slope + exponent) < 0.1


def test_scan_set_keys_as_wespeaker(tmp_path):
    for rel in ("musan/noise/free-sound/a.wav", "musan/music/fma/b.wav", "musan/README"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    scp = N.scan_set(str(tmp_path / "musan"), str(tmp_path / "out"))
    keys = [line.split()[0] for line in open(scp)]
    assert keys == ["music/fma/b.wav", "noise/free-sound/a.wav"]
    with pytest.raises(A.AugmentError, match="no .wav"):
        N.scan_set(str(tmp_path / "out"), str(tmp_path / "o2"))  # holds a wav.scp only


def test_audio_set_errors(tmp_path):
    with pytest.raises(A.AugmentError, match="not a wav.scp"):
        A.AudioSet(str(tmp_path / "missing"))
    (tmp_path / "data.mdb").write_bytes(b"")
    try:
        import lmdb  # noqa: F401
    except ImportError:
        with pytest.raises(A.AugmentError, match="install the python package 'lmdb'"):
            A.AudioSet(str(tmp_path))


def test_lmdb_key_list_refuses_objects():
    evil = pickle.dumps(os.getcwd)  # a global: refused, never resolved (let alone called)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        A._KeysOnly(io.BytesIO(evil)).load()
    assert A._KeysOnly(io.BytesIO(pickle.dumps(["a", "b"]))).load() == ["a", "b"]


# ---------------------------------------------------------------- the dataset hook
def _dataset(tmp_path, args, n=3, seconds=1.5):
    rng = _rng(9)
    sources = {}
    for i in range(n):
        p = tmp_path / f"u{i}.wav"
        sf.write(p, (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32), RATE, subtype="PCM_16")
        sources[f"u{i}"] = str(p)
    utts = sorted(sources)
    augmenter = A.Augmenter(AudioDatasetArgs.from_dict(args, Where("dataset_args")), num_speakers=n)
    return AudioDataset(utts, sources, "wav", None, augmenter=augmenter,
                        labels=list(range(n)))


def test_hook_off_is_identity(tmp_path):
    plain = _dataset(tmp_path, {})
    default_args = {"speed_perturb": False, "aug_prob": 0.0, "spec_aug": False, "filter": False}
    off = _dataset(tmp_path, default_args)
    for item in [(0, 60, 11), (2, 90, 12), (1, 0, 0)]:
        a, b = plain[item], off[item]
        assert torch.equal(a["input"], b["input"]) and a["label"] == b["label"]


def test_hook_speed_perturb_labels_and_lengths(tmp_path, sets):
    ds = _dataset(tmp_path, {"speed_perturb": True, "aug_prob": 1.0, "spec_aug": True,
                             "reverb_data": sets["rirs"], "noise_data": sets["noise"]})
    seen = set()
    for seed in range(30):
        out = ds[(1, 80, seed)]
        k = int(seeded_rng(seed).integers(3))  # the item's first draw is its speed
        assert out["label"] == 1 + 3 * k and out["input"].shape == (80, 40)
        seen.add(k)
        assert torch.equal(out["input"], ds[(1, 80, seed)]["input"])  # seeded: the same item twice
    assert seen == {0, 1, 2}
    assert ds[(1, 0, 0)]["label"] == 1  # evaluation items are never perturbed


def test_lmdb_set_as_wespeaker_writes_it(tmp_path, sets):
    """An lmdb in the layout of WeSpeaker's tools/make_lmdb.py (wav bytes per key, the key list pickled under
    b'__keys__') reads as the same set as the wav.scp it was made from."""
    lmdb = pytest.importorskip("lmdb", reason="the optional lmdb package is not installed")
    from wespeaker_avkd.data.kaldi_dir import read_table

    table = read_table(sets["noise"])
    db = lmdb.open(str(tmp_path / "noise_lmdb"), map_size=1 << 26)
    with db.begin(write=True) as txn:
        for key, path in table.items():
            txn.put(key.encode(), open(path, "rb").read())
        txn.put(b"__keys__", pickle.dumps(list(table)))
    db.close()
    from_lmdb, from_scp = A.AudioSet(str(tmp_path / "noise_lmdb")), A.AudioSet(sets["noise"])
    assert sorted(from_lmdb.keys) == from_scp.keys
    key = from_scp.keys[3]
    np.testing.assert_array_equal(from_lmdb.read(key)[0], from_scp.read(key)[0])


def test_loader_filter_and_epoch_size(tmp_path):
    """filter drops utterances under min_num_frames (from the wav headers) before sampling; sample_num_per_epoch
    sets the batches per epoch; pipeline keys on precomputed features are refused naming the file."""
    from loader_sections import build_train_loader

    rng = _rng(10)
    wav_scp, utt2spk = [], []
    for i, seconds in enumerate([0.5, 0.9, 1.0, 1.6, 2.0, 3.0]):
        p = tmp_path / f"u{i}.wav"
        sf.write(p, (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32), RATE, subtype="PCM_16")
        wav_scp.append(f"u{i} {p}\n")
        utt2spk.append(f"u{i} s{i % 2}\n")
    (tmp_path / "wav.scp").write_text("".join(wav_scp))
    (tmp_path / "utt2spk").write_text("".join(utt2spk))
    args = {"feat_source": "wav", "num_frms": [50, 50], "filter": True,
            "filter_args": {"min_num_frames": 100, "max_num_frames": 150}, "sample_num_per_epoch": 8}
    loader = build_train_loader("audio", str(tmp_path), {"s0": 0, "s1": 1}, args, {"batch_size": 2}, seed=0)
    assert loader.dataset.utts == ["u2", "u3", "u4", "u5"]  # 0.5 s and 0.9 s are under 100 frames (1 s)
    assert len(loader) == 4  # 8 samples an epoch in batches of 2
    keys = [k for b in loader for k in b["keys"]]
    assert len(keys) == 8 and set(keys) == {"u2", "u3", "u4", "u5"}
    (tmp_path / "feats.scp").write_text("")
    with pytest.raises(A.AugmentError, match=r"speed_perturb act on the waveform, but the audio input is .*feats.scp"):
        build_train_loader("audio", str(tmp_path), {"s0": 0, "s1": 1}, {"feat_source": "auto", "speed_perturb": True},
                           {"batch_size": 2}, seed=0)
