"""In-process decoding of VoxCeleb's compressed media with PyAV (its wheels carry FFmpeg's codecs: no system
ffmpeg binary is ever called): m4a/AAC audio -> 16 kHz mono int16, mp4 face tracks -> evenly spaced RGB frames.
"""
from __future__ import annotations

import io
import math
import os
from typing import Any

import numpy as np
import soundfile as sf
from PIL import Image

from wespeaker_avkd.utils.errors import NamedError
from wespeaker_avkd.utils.fileio import PathLike, atomic_write

SAMPLE_RATE = 16000
EXTRA = "voxceleb"   # setup.py extra that installs PyAV
JPEG_QUALITY = 90


class MissingDecoder(NamedError, ImportError):
    """PyAV is not installed (one line naming the extra that installs it)."""


class DecodeError(NamedError, ValueError):
    """A media file could not be decoded (the message names the file)."""


def require_av() -> Any:
    """The `av` module, or MissingDecoder naming the extra `pip install -e ".[voxceleb]"`."""
    try:
        import av
    except ImportError:
        raise MissingDecoder(f"decoding VoxCeleb's m4a/mp4 needs PyAV: pip install -e \".[{EXTRA}]\" "
                             "(or pip install av)") from None
    return av


def decode_audio(path: PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode an audio file (m4a/AAC, or anything FFmpeg reads) -> int16 samples (N,), mono at `sample_rate` Hz
    (PyAV's resampler). Raises DecodeError naming the file when it cannot be decoded or holds no audio."""
    av = require_av()
    path = os.fspath(path)
    chunks = []
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise DecodeError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):   # flush the resampler's tail
                chunks.append(out.to_ndarray().reshape(-1))
    except av.FFmpegError as e:
        raise DecodeError(f"{path}: cannot decode audio ({e})") from None
    samples = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    if samples.size == 0:
        raise DecodeError(f"{path}: no audio samples decoded")
    return samples


def write_wav(path: PathLike, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write int16 samples (N,) as a 16-bit PCM wav, atomically (temporary file + rename)."""
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, subtype="PCM_16", format="WAV")
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())


def frame_times(duration: float, fps: float, max_frames: int) -> list[float]:
    """Sample times (s) of a face track of `duration` s: round(duration * fps) frames, at least 1 and at most
    `max_frames`, at the centres of equal slices of the track (so every frame is inside it)."""
    n = max(1, min(int(max_frames), int(math.floor(duration * fps + 0.5))))
    return [duration * (i + 0.5) / n for i in range(n)]


def decode_face_frames(path: PathLike, fps: float, max_frames: int, size: int) -> list[Image.Image]:
    """Decode an mp4 face track -> the frames nearest to frame_times(duration, fps, max_frames), as RGB images
    resized (bicubic) to size x size. Raises DecodeError naming the file when it cannot be decoded."""
    av = require_av()
    path = os.fspath(path)
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise DecodeError(f"{path}: no video stream")
            stream = container.streams.video[0]
            decoded = list(container.decode(stream))   # every frame: H.264 cannot skip to arbitrary frames
            if not decoded:
                raise DecodeError(f"{path}: no video frames decoded")
            times = np.array([float(f.time or 0.0) for f in decoded])
            step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
            duration = float(times[-1] - times[0]) + step   # the last frame lasts one frame period
            picks = [int(np.argmin(np.abs(times - times[0] - t))) for t in frame_times(duration, fps, max_frames)]
            # only the kept frames are converted to RGB
            return [decoded[i].to_image().convert("RGB").resize((size, size), Image.BICUBIC) for i in picks]
    except av.FFmpegError as e:
        raise DecodeError(f"{path}: cannot decode video ({e})") from None


def jpeg_bytes(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """The image encoded as a baseline JPEG (deterministic for equal pixels and quality)."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
