"""Optional real recorded voices: Debian's MBROLA diphone voices, fetched into a project-local folder.

Off by default (audio.backend: numpy). With audio.backend: mbrola the corpus fetches the mbrola synthesiser and
English voices with `apt-get download` against a sources file of its own (no system change) and unpacks them
with `dpkg -x` into audio.mbrola.dir. Random syllables are written as MBROLA .pho input (phoneme, duration,
pitch targets) at the identity's pitch and rate; the identity's vocal-tract warp, timbre, the session channel,
noise and corruption are applied as for the numpy voices. When anything is unavailable the generator says
so and falls back to the numpy voices. MBROLA voices are licensed for non-commercial use: never commit them
or audio made with them.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable

import numpy as np
import soundfile as sf
from scipy import signal

DEBIAN_SOURCES = "deb http://deb.debian.org/debian bookworm main contrib non-free\n"
CONSONANTS = ["p", "b", "t", "d", "k", "g", "f", "v", "T", "D", "s", "z", "S", "h", "m", "n", "l", "r", "w", "j"]
US_VOWELS = ["i", "I", "E", "{", "A", "V", "O", "U", "u", "@", "EI", "AI", "OI", "@U", "aU"]
GB_VOWELS = ["i:", "I", "e", "{", "A:", "Q", "V", "O:", "U", "u:", "@", "3:", "eI", "aI", "@U", "aU"]
# voice -> (vowel inventory, sex of the recorded speaker)
VOICES = {"us1": (US_VOWELS, "f"), "us2": (US_VOWELS, "m"), "us3": (US_VOWELS, "m"), "en1": (GB_VOWELS, "m")}


def _apt_options(root: str) -> list[str]:
    """apt-get options that use only state, cache and sources under root (no system change, no lock)."""
    apt = os.path.join(root, "apt")
    return ["-o", f"Dir::Etc::SourceList={apt}/sources.list", "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State={apt}/state", "-o", f"Dir::State::Lists={apt}/lists",
            "-o", f"Dir::State::status={apt}/status", "-o", f"Dir::Cache={apt}/cache", "-o", "Debug::NoLocking=1"]


def fetch_mbrola(root: str, voices: list[str], log: Callable[[str], None]) -> None:
    """apt-get download mbrola + voices into root/debs and dpkg -x them into root/fs (raises on failure)."""
    apt = os.path.join(root, "apt")
    for d in ("lists/partial", "cache/archives/partial", "state"):
        os.makedirs(os.path.join(apt, d), exist_ok=True)
    with open(os.path.join(apt, "sources.list"), "w") as f:
        f.write(DEBIAN_SOURCES)
    open(os.path.join(apt, "status"), "a").close()
    debs = os.path.join(root, "debs")
    os.makedirs(debs, exist_ok=True)
    log(f"mbrola: fetching mbrola + voices {voices} from Debian into {root}")
    subprocess.run(["apt-get", *_apt_options(root), "update"], check=True, capture_output=True, timeout=300)
    subprocess.run(["apt-get", *_apt_options(root), "download", "mbrola", *[f"mbrola-{v}" for v in voices]],
                   check=True, capture_output=True, cwd=debs, timeout=600)
    for deb in sorted(glob.glob(os.path.join(debs, "*.deb"))):
        subprocess.run(["dpkg", "-x", deb, os.path.join(root, "fs")], check=True, capture_output=True)


def find_mbrola(root: str, voices: list[str], fetch: bool, log: Callable[[str], None]) -> dict | None:
    """{"bin": mbrola path, "voices": {name: database path}} of the usable voices, or None (after saying why)."""
    root = os.path.abspath(root)

    def scan() -> dict:
        found = {v: os.path.join(root, "fs", "usr", "share", "mbrola", v, v) for v in voices}
        return {v: p for v, p in found.items() if os.path.isfile(p)}

    binary = os.path.join(root, "fs", "usr", "bin", "mbrola")
    have = scan()
    if (not os.path.isfile(binary) or len(have) < len(voices)) and fetch:
        if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
            log("mbrola: apt-get/dpkg not available; falling back to the numpy voices")
            return None
        try:
            fetch_mbrola(root, voices, log)
        except (subprocess.SubprocessError, OSError) as e:
            err = getattr(e, "stderr", b"") or b""
            log(f"mbrola: fetching failed ({e}; {err.decode(errors='replace').strip()[-300:]}); "
                "falling back to the numpy voices")
            return None
        have = scan()
    if not os.path.isfile(binary) or not have:
        log(f"mbrola: no mbrola binary or voices under {root}; falling back to the numpy voices")
        return None
    try:
        subprocess.run([binary, "-h"], capture_output=True, timeout=10)
    except OSError as e:
        log(f"mbrola: {binary} does not run ({e}); falling back to the numpy voices")
        return None
    return {"bin": binary, "voices": have}


def pho_text(rng: np.random.Generator, vowels: list[str], duration: float, f0: float, rate_ms: float,
             f0_depth: float) -> str:
    """Random CV(C) syllables as MBROLA .pho lines (phoneme, ms, pitch targets) lasting about `duration` s."""
    lines, total = ["_ 60"], 60.0
    while total < duration * 1000.0 - 120.0:
        syl = [rng.choice(CONSONANTS), rng.choice(vowels)] + ([rng.choice(CONSONANTS)] if rng.random() < 0.4 else [])
        for ph in syl:
            ms = float(rate_ms * np.exp(rng.normal(0.0, 0.2)) * (1.6 if ph in vowels else 0.8))
            pitch = f0 * np.exp(f0_depth * rng.normal(0.0, 1.0))
            lines.append(f"{ph} {ms:.0f} 50 {pitch:.1f}" if ph in vowels else f"{ph} {ms:.0f}")
            total += round(ms)
        if rng.random() < 0.1:
            lines.append("_ 80")
            total += 80
    lines.append("_ 60")
    return "\n".join(lines) + "\n"


def synthesize_mbrola(kit: dict, voice_name: str, rng: np.random.Generator, duration: float, f0: float,
                      vtl: float, rate_ms: float, f0_depth: float, sample_rate: int = 16000) -> np.ndarray:
    """MBROLA speech of one voice at pitch f0 (Hz, after the warp), vocal-tract warp vtl -> float (S,)."""
    vowels = VOICES[voice_name][0]
    # Resampling by vtl raises formants and pitch together; ask MBROLA for f0 / vtl so the result has f0.
    pho = pho_text(rng, vowels, duration * vtl, f0 / vtl, rate_ms, f0_depth)
    with tempfile.TemporaryDirectory(prefix="mbrola_") as tmp:
        src, dst = os.path.join(tmp, "in.pho"), os.path.join(tmp, "out.wav")
        with open(src, "w") as f:
            f.write(pho)
        subprocess.run([kit["bin"], "-e", kit["voices"][voice_name], src, dst], check=True, capture_output=True)
        wave, sr = sf.read(dst, dtype="float64")
    # Play back faster by vtl: every frequency (formants, pitch) scales by vtl.
    wave = signal.resample(wave, max(1, int(round(len(wave) * sample_rate / (sr * vtl)))))
    n = int(round(duration * sample_rate))
    return np.pad(wave, (0, max(0, n - len(wave))))[:n]
