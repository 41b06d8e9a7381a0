"""A small VoxCeleb tree in the official layouts, made from a toy corpus by real encoding (for tests and the
slow end-to-end recipe run): the corpus's train + dev parts become VoxCeleb2 dev (AAC m4a audio, H.264 mp4 face
tracks, vox2_meta.csv), its eval part becomes VoxCeleb1 (16 kHz wav, cropped-face jpgs filed by celebrity name
under unzippedIntervalFaces/data/<Name>/1.6/<video>/<track>/, vox1_meta.csv) with its O/E/H lists written as
the official veri_test2.txt, list_test_all2.txt and list_test_hard2.txt.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

import numpy as np
import soundfile as sf
from PIL import Image

from wespeaker_avkd.data.kaldi_dir import read_multi_table, read_table
from wespeaker_avkd.data.voxceleb.decode import require_av
from wespeaker_avkd.data.voxceleb.layout import VOX1_FACES, VOX1_META
from wespeaker_avkd.data.voxceleb.prepare import TRIAL_FILES, VOX2_META

VIDEO_RATE = 25      # frames per second of the generated face tracks (VoxCeleb's videos are 25 fps)
AUDIO_BITRATE = 64000


def vox1_name(spk: str) -> str:
    """The fixture's celebrity name of a VoxCeleb1 id (dots and underscores, as real VGGFace1 names have)."""
    return f"Toy.Person_{spk[2:]}"


def encode_m4a(samples: np.ndarray, sample_rate: int, dst: str) -> None:
    """Encode int16 mono samples (N,) as AAC in an m4a (mp4) container at dst."""
    av = require_av()
    with av.open(dst, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=sample_rate, layout="mono")
        stream.bit_rate = AUDIO_BITRATE
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.int16), format="s16", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def encode_mp4(images: Sequence[np.ndarray], duration: float, dst: str, rate: int = VIDEO_RATE) -> None:
    """Encode RGB frames (H, W, 3) as an H.264 mp4 of `duration` s: image i fills the i-th equal slice."""
    av = require_av()
    n = max(1, int(round(duration * rate)))
    h, w = images[0].shape[:2]
    with av.open(dst, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "12", "preset": "medium", "threads": "1"}
        for t in range(n):
            image = images[min(len(images) - 1, t * len(images) // n)]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = t
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _gender(corpus: str, part: str) -> dict[str, str]:
    """{spk: m|f} from the toy corpus's utt2meta."""
    meta = read_multi_table(os.path.join(corpus, part, "utt2meta"))
    out = {}
    for utt, fields in meta.items():
        kv = dict(f.split("=", 1) for f in fields)
        out[utt.split("/")[0]] = kv["gender"][0]
    return out


def make_fixture_tree(corpus: str, root: str) -> dict[str, int]:
    """Write ROOT/voxceleb2 and ROOT/voxceleb1 (see the module doc) from the toy corpus at `corpus`; returns
    {m4a, mp4, vox1_wav, vox1_tracks} counts."""
    vox2, vox1 = os.path.join(root, "voxceleb2"), os.path.join(root, "voxceleb1")
    counts = {"m4a": 0, "mp4": 0, "vox1_wav": 0, "vox1_tracks": 0}
    gender = {}
    for part in ("train", "dev"):
        if not os.path.isdir(os.path.join(corpus, part)):
            continue
        gender.update(_gender(corpus, part))
        wav, faces = read_table(os.path.join(corpus, part, "wav.scp")), read_multi_table(
            os.path.join(corpus, part, "faces.scp"))
        for utt in sorted(wav):
            samples, sr = sf.read(wav[utt], dtype="int16")
            m4a = os.path.join(vox2, "dev", "aac", utt + ".m4a")
            os.makedirs(os.path.dirname(m4a), exist_ok=True)
            encode_m4a(samples, sr, m4a)
            mp4 = os.path.join(vox2, "dev", "mp4", utt + ".mp4")
            os.makedirs(os.path.dirname(mp4), exist_ok=True)
            encode_mp4([np.asarray(Image.open(p).convert("RGB")) for p in faces[utt]], len(samples) / sr, mp4)
            counts["m4a"] += 1
            counts["mp4"] += 1
    with open(os.path.join(vox2, VOX2_META), "w", encoding="utf-8") as f:
        f.write("VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \n")
        f.writelines(f"{spk} ,n{spk[2:]} ,{g} ,dev \n" for spk, g in sorted(gender.items()))
    wav, faces = read_table(os.path.join(corpus, "eval", "wav.scp")), read_multi_table(
        os.path.join(corpus, "eval", "faces.scp"))
    for utt in sorted(wav):
        dst = os.path.join(vox1, "wav", utt + ".wav")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(wav[utt], dst)
        spk, video, seg = utt.split("/")
        track = os.path.join(vox1, VOX1_FACES, vox1_name(spk), "1.6", video, str(int(seg)))
        os.makedirs(track, exist_ok=True)
        for i, p in enumerate(faces[utt], 1):
            Image.open(p).convert("RGB").save(os.path.join(track, f"{i:02d}.jpg"), quality=95)
        counts["vox1_wav"] += 1
        counts["vox1_tracks"] += 1
    eval_gender = _gender(corpus, "eval")
    with open(os.path.join(vox1, VOX1_META), "w", encoding="utf-8") as f:
        f.write("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n")
        f.writelines(f"{spk}\t{vox1_name(spk)}\t{g}\tToyland\ttest\n" for spk, g in sorted(eval_gender.items()))
    for name, fname in TRIAL_FILES.items():
        src = os.path.join(corpus, "eval", "trials_voxceleb", name + ".txt")
        with open(src, encoding="utf-8") as fin, open(os.path.join(vox1, fname), "w", encoding="utf-8") as fout:
            for line in fin:
                label, a, b = line.split()
                fout.write(f"{label} {a}.wav {b}.wav\n")
    return counts
