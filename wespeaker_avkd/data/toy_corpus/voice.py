"""Procedural voices: a source-filter synthesiser (pulse train at an identity pitch, formant resonators
scaled by an identity vocal-tract length, random phone-like content) with per-session channel and noise."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from scipy import signal

# Peterson & Barney (1952) adult-male mean F1-F3 (Hz) of ten American English vowels.
VOWEL_FORMANTS = np.array([
    [270, 2290, 3010], [390, 1990, 2550], [530, 1840, 2480], [660, 1720, 2410], [730, 1090, 2440],
    [570, 840, 2410], [440, 1020, 2240], [300, 870, 2240], [640, 1190, 2390], [490, 1350, 1690],
], dtype=np.float64)
HIGH_FORMANTS = np.array([3500.0, 4500.0])  # F4, F5: weakly vowel-dependent, mostly vocal-tract length
NASAL_FORMANTS = np.array([250.0, 1100.0, 2300.0])
BANDWIDTHS = np.array([70.0, 100.0, 140.0, 200.0, 260.0])
PHONE_KINDS = ("vowel", "nasal", "fricative", "silence")
PHONE_PROBS = np.array([0.55, 0.12, 0.2, 0.13])
N_FFT, HOP = 512, 128  # 32 ms frames, 8 ms hop at 16 kHz


@dataclasses.dataclass
class VoiceIdentity:
    """An identity's voice: pitch (Hz), vocal-tract scale, own formant offsets, tilt, breath, rate, habits."""

    gender: str
    f0: float
    vtl: float
    formant_offsets: np.ndarray  # (5,) log offsets of F1..F5
    tilt_db: float
    breathiness: float
    phone_ms: float
    f0_depth: float
    vowel_pref: np.ndarray       # (10,) probabilities of the ten vowels
    fricative_hz: float          # centre of this speaker's fricatives
    timbre_coef: np.ndarray      # (timbre_terms,) dB amplitudes of the identity's spectral colouring (nasal/sinus)
    timbre_phase: np.ndarray     # (timbre_terms,)
    mbrola_voice: str = ""       # recorded base voice (audio.backend: mbrola), "" for the numpy synthesiser

    def warped(self, log_warp: float) -> VoiceIdentity:
        """The same voice with the vocal tract warped by exp(log_warp): an audio twin."""
        return dataclasses.replace(self, vtl=self.vtl * float(np.exp(log_warp)))


@dataclasses.dataclass
class AudioSession:
    """Per-session (video) audio conditions: pitch/formant shift, channel EQ, noise, corruption."""

    f0_shift: float
    vtl_shift: float
    channel_coef: np.ndarray   # (4,) dB amplitudes of the cosine EQ terms
    channel_phase: np.ndarray  # (4,)
    noise_tilt: float          # background-noise colour: 0 white, 1 pink-ish
    noise_coef: np.ndarray     # (4,) dB amplitudes of the noise's own smooth spectral shape
    noise_phase: np.ndarray    # (4,)
    snr_db: float              # SNR of clean sessions; drawn per segment inside corrupt_snr for "noise"
    corruption: str            # none | noise | band
    band_hz: tuple = (0.0, 0.0)


def sample_voice(rng: np.random.Generator, cfg: Mapping) -> VoiceIdentity:
    """Draw a voice identity from the audio knobs of the corpus config."""
    gender = "m" if rng.random() < 0.5 else "f"
    lo, hi = cfg["f0_male"] if gender == "m" else cfg["f0_female"]
    f0 = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    # Female vocal tracts are shorter on average (formants about 15 % higher).
    vtl = float(np.exp((0.14 if gender == "f" else 0.0) + rng.normal(0.0, cfg["vtl_spread"])))
    return VoiceIdentity(
        gender=gender, f0=f0, vtl=vtl,
        formant_offsets=rng.normal(0.0, cfg["formant_jitter"], 5),
        tilt_db=float(rng.uniform(*cfg["tilt_db"])),
        breathiness=float(rng.uniform(*cfg["breathiness"])),
        phone_ms=float(rng.uniform(*cfg["phone_ms"])),
        f0_depth=float(rng.uniform(0.04, 0.18)),
        vowel_pref=rng.dirichlet(np.full(len(VOWEL_FORMANTS), float(cfg["vowel_habit"]))),
        fricative_hz=float(rng.uniform(2800.0, 6500.0)),
        timbre_coef=rng.normal(0.0, cfg["timbre_db"] / np.sqrt(cfg["timbre_terms"]), cfg["timbre_terms"]),
        timbre_phase=rng.uniform(0.0, 2 * np.pi, cfg["timbre_terms"]),
    )


def sample_audio_session(rng: np.random.Generator, cfg: Mapping) -> AudioSession:
    """Draw one session's channel, noise and (with corrupt_prob) corruption."""
    corruption = "none"
    band = (0.0, 0.0)
    snr = float(rng.uniform(*cfg["snr_db"]))
    if rng.random() < cfg["corrupt_prob"]:
        corruption = "noise" if rng.random() < 0.5 else "band"
        if corruption == "noise":
            snr = float(rng.uniform(*cfg["corrupt_snr_db"]))
        else:
            (lo_min, lo_max), (hi_min, hi_max) = cfg["corrupt_band_hz"]
            band = (float(rng.uniform(lo_min, lo_max)), float(rng.uniform(hi_min, hi_max)))
    return AudioSession(
        f0_shift=float(rng.normal(0.0, cfg["session_f0_shift"])),
        vtl_shift=float(rng.normal(0.0, cfg["session_vtl_shift"])),
        channel_coef=rng.normal(0.0, cfg["channel_db"] / 2.0, 4),
        channel_phase=rng.uniform(0.0, 2 * np.pi, 4),
        noise_tilt=float(rng.uniform(0.0, 1.0)),
        noise_coef=rng.normal(0.0, cfg["noise_colour_db"] / 2.0, 4),
        noise_phase=rng.uniform(0.0, 2 * np.pi, 4),
        snr_db=snr, corruption=corruption, band_hz=band,
    )


def _phone_track(rng: np.random.Generator, voice: VoiceIdentity, n_frames: int, frame_s: float):
    """Per-frame formants (T, 5), voicing (T,), fricative level (T,) of a random phone sequence."""
    formants = np.empty((n_frames, 5))
    voicing = np.zeros(n_frames)
    fric = np.zeros(n_frames)
    t = 0
    while t < n_frames:
        dur = max(2, int(round(voice.phone_ms * np.exp(rng.normal(0.0, 0.2)) / 1000.0 / frame_s)))
        kind = PHONE_KINDS[rng.choice(len(PHONE_KINDS), p=PHONE_PROBS)]
        vowel = VOWEL_FORMANTS[rng.choice(len(VOWEL_FORMANTS), p=voice.vowel_pref)]
        seg = slice(t, min(n_frames, t + dur))
        if kind == "nasal":
            formants[seg, :3] = NASAL_FORMANTS
            voicing[seg] = 0.35
        else:
            formants[seg, :3] = vowel * np.exp(rng.normal(0.0, 0.04, 3))
            voicing[seg] = {"vowel": 1.0, "fricative": 0.0, "silence": 0.0}[kind]
            fric[seg] = 0.35 if kind == "fricative" else 0.0
        formants[seg, 3:] = HIGH_FORMANTS
        t += dur
    # Coarticulation: formants glide over about 40 ms, amplitudes over about 24 ms.
    formants = signal.convolve2d(np.pad(formants, ((2, 2), (0, 0)), mode="edge"), np.ones((5, 1)) / 5, "valid")
    voicing = np.convolve(np.pad(voicing, 1, mode="edge"), np.ones(3) / 3, "valid")
    fric = np.convolve(np.pad(fric, 1, mode="edge"), np.ones(3) / 3, "valid")
    return formants, voicing, fric


def _resonator_gain(freqs: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """|H(f)| of a cascade of second-order resonators: freqs (K,), formants (T, 5) -> (T, K)."""
    f = freqs[None, :, None]
    fc = formants[:, None, :]
    bw = BANDWIDTHS[None, None, :] * (fc / np.array([500, 1500, 2500, 3500, 4500])[None, None, :]) ** 0.5
    return np.prod(fc ** 2 / np.sqrt((fc ** 2 - f ** 2) ** 2 + (bw * f) ** 2), axis=-1)


def _cosine_curve(freqs: np.ndarray, coef: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """A smooth spectral curve in dB over freqs (K,): sum_k coef_k cos(pi (k+1) f / f_max + phase_k)."""
    k = np.arange(1, len(coef) + 1)[:, None]
    return (coef[:, None] * np.cos(np.pi * k * freqs[None, :] / freqs[-1] + phase[:, None])).sum(0)


def synthesize(rng: np.random.Generator, voice: VoiceIdentity, session: AudioSession, duration: float,
               sample_rate: int = 16000) -> np.ndarray:
    """One utterance of `voice` in `session`: float32 (duration * sample_rate,) with peak below 1."""
    n = int(round(duration * sample_rate))
    n_frames = n // HOP + 1
    frame_s = HOP / sample_rate
    formants, voicing, fric = _phone_track(rng, voice, n_frames, frame_s)
    scale = voice.vtl * np.exp(session.vtl_shift) * np.exp(voice.formant_offsets)
    formants = np.minimum(formants * scale[None, :], 0.45 * sample_rate)
    formants = np.maximum.accumulate(np.maximum(formants, 150.0), axis=1) + np.arange(5) * 50.0

    # Glottal source: pulse train on an intonation contour with jitter.
    f0_frames = voice.f0 * np.exp(session.f0_shift) * np.exp(
        voice.f0_depth * np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * np.arange(n_frames) * frame_s
                                + rng.uniform(0, 2 * np.pi))
        + rng.normal(0.0, 0.01, n_frames))
    f0 = np.interp(np.arange(n), np.arange(n_frames) * HOP, f0_frames)
    phase = np.cumsum(f0 / sample_rate)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    noise = rng.standard_normal(n)

    _, _, P = signal.stft(pulses, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even")
    _, _, N = signal.stft(noise, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even")
    T = P.shape[1]
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    idx = np.minimum(np.arange(T), n_frames - 1)
    env = _resonator_gain(freqs, formants[idx]).T                      # (K, T)
    tilt = 10 ** (voice.tilt_db * np.log2(np.maximum(freqs, 100.0) / 100.0) / 20.0)
    fric_env = np.exp(-0.5 * ((freqs - voice.fricative_hz) / 1200.0) ** 2)
    v = voicing[idx][None, :]
    spec = (v * P * tilt[:, None] * np.sqrt(np.mean(f0) / 100.0) * 6.0
            + voice.breathiness * v * N * tilt[:, None]) * env + fric[idx][None, :] * N * fric_env[:, None]
    spec = spec * colour_gain(freqs, voice, session)[:, None]
    _, speech = signal.istft(spec, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=True)
    return finish_session(rng, speech[:n], session, sample_rate)


def colour_gain(freqs: np.ndarray, voice: VoiceIdentity, session: AudioSession) -> np.ndarray:
    """Linear gain (K,) of the identity's timbre and the session's channel EQ at freqs (K,) Hz."""
    colour_db = _cosine_curve(freqs, session.channel_coef, session.channel_phase) + \
        _cosine_curve(freqs, voice.timbre_coef, voice.timbre_phase)
    return 10 ** (colour_db / 20.0)


def recolour(speech: np.ndarray, voice: VoiceIdentity, session: AudioSession, sample_rate: int) -> np.ndarray:
    """Apply the identity timbre and session channel to an external recording (e.g. an MBROLA voice)."""
    _, _, spec = signal.stft(speech, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even")
    spec = spec * colour_gain(np.fft.rfftfreq(N_FFT, 1.0 / sample_rate), voice, session)[:, None]
    _, out = signal.istft(spec, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=True)
    return out[:len(speech)]


def finish_session(rng: np.random.Generator, speech: np.ndarray, session: AudioSession,
                   sample_rate: int) -> np.ndarray:
    """Add the session's background noise and corruption to speech (S,), normalise the peak -> float32 (S,)."""
    n = len(speech)
    speech = speech / (np.sqrt(np.mean(speech ** 2)) + 1e-9)
    # Background noise of the session's colour at the session's (or the corruption's) SNR.
    nf = np.fft.rfftfreq(n, 1.0 / sample_rate)
    shape = 10 ** (_cosine_curve(nf, session.noise_coef, session.noise_phase) / 20.0)
    tilt = np.maximum(nf, 50.0) ** (0.5 * session.noise_tilt)
    bg = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape / tilt, n)
    bg = bg / (np.sqrt(np.mean(bg ** 2)) + 1e-9) * 10 ** (-session.snr_db / 20.0)
    out = speech + bg
    if session.corruption == "band":
        lo, hi = session.band_hz
        sos = signal.butter(4, [lo, hi], btype="bandpass", fs=sample_rate, output="sos")
        out = signal.sosfilt(sos, out)
        # A real narrow-band channel still has a wide-band noise floor; without it log-mel bins fall to -inf-like
        # values.
        out = out + rng.standard_normal(n) * np.sqrt(np.mean(out ** 2)) * 10 ** (-30.0 / 20.0)
    peak = np.max(np.abs(out)) + 1e-9
    return (out / peak * rng.uniform(0.3, 0.9)).astype(np.float32)
