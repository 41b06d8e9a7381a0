"""Kaldi data dirs from the official VoxCeleb layouts (audio, face frames per segment, trial lists).

Expected layout under ROOT (see egs/voxceleb/v_kd/local/README.md):
  ROOT/voxceleb2/dev/aac/idNNNNN/<video>/NNNNN.m4a   (or ROOT/voxceleb2/dev/wav/.../NNNNN.wav)
  ROOT/voxceleb2/faces/idNNNNN/<video>/NNNNN/*.jpg|png
  ROOT/voxceleb1/wav/idNNNNN/<video>/NNNNN.wav
  ROOT/voxceleb1/faces/idNNNNN/<video>/NNNNN/*.jpg|png
  ROOT/voxceleb1/{veri_test2.txt, list_test_all2.txt, list_test_hard2.txt}
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
from typing import Optional

from tqdm import tqdm

from wespeaker_avkd.data.kaldi_dir import utt2spk_to_spk2utt, write_table
from wespeaker_avkd.utils.fileio import atomic_write

TRIAL_FILES = {"O": "veri_test2.txt", "E": "list_test_all2.txt", "H": "list_test_hard2.txt"}
IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def scan_audio(root: str, ext: str) -> dict[str, str]:
    """{idNNNNN/video/NNNNN: path} of every <root>/<spk>/<video>/<seg><ext> (sorted walk)."""
    table = {}
    for spk in sorted(os.listdir(root)):
        spk_dir = os.path.join(root, spk)
        if not os.path.isdir(spk_dir):
            continue
        for video in sorted(os.listdir(spk_dir)):
            vdir = os.path.join(spk_dir, video)
            if not os.path.isdir(vdir):
                continue
            for name in sorted(os.listdir(vdir)):
                if name.endswith(ext):
                    table[f"{spk}/{video}/{name[:-len(ext)]}"] = os.path.join(os.path.abspath(vdir), name)
    return table


def scan_faces(root: str, utts: list[str]) -> dict[str, list[str]]:
    """{utt: sorted frame paths} from <root>/<utt>/*.jpg|png for the utterances that have frames."""
    faces = {}
    for utt in utts:
        d = os.path.join(root, utt)
        if os.path.isdir(d):
            frames = sorted(f for f in os.listdir(d) if f.lower().endswith(IMAGE_EXTS))
            if frames:
                faces[utt] = [os.path.join(os.path.abspath(d), f) for f in frames]
    return faces


def _convert_one(task: tuple) -> str:
    src, dst = task
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = dst + ".tmp.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", src, "-ac", "1", "-ar", "16000",
                    "-acodec", "pcm_s16le", tmp], check=True)
    os.replace(tmp, dst)
    return dst


def convert_m4a(m4a: dict[str, str], wav_root: str, nj: int = 2) -> dict[str, str]:
    """Convert m4a to 16 kHz mono wav under wav_root/<utt>.wav with ffmpeg (skips files already converted)."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("VoxCeleb2 audio is m4a but ffmpeg is not installed: install ffmpeg "
                           "(e.g. apt-get install ffmpeg) or convert the files to 16 kHz wav under "
                           "ROOT/voxceleb2/dev/wav/<id>/<video>/<seg>.wav and run again")
    out = {utt: os.path.join(os.path.abspath(wav_root), utt + ".wav") for utt in m4a}
    todo = [(m4a[u], out[u]) for u in sorted(m4a) if not os.path.isfile(out[u])]
    with multiprocessing.get_context("fork").Pool(max(1, nj)) as pool:
        for _ in tqdm(pool.imap_unordered(_convert_one, todo, chunksize=16), total=len(todo), desc="m4a->wav",
                      file=sys.stderr):
            pass
    return out


def read_official_trials(path: str) -> list[tuple[str, str, str]]:
    """Official VoxCeleb list lines '1|0 a.wav b.wav' -> [(enroll, test, target|nontarget)] (ids without .wav)."""
    rows = []
    with open(path, "r", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            tok = line.split()
            if not tok:
                continue
            if len(tok) != 3 or tok[0] not in ("0", "1"):
                raise ValueError(f"{path}:{n}: expected '1|0 enroll.wav test.wav', got {line.strip()!r}")
            strip = [t[:-4] if t.endswith(".wav") else t for t in tok[1:]]
            rows.append((strip[0], strip[1], "target" if tok[0] == "1" else "nontarget"))
    return rows


def write_data_dir(out_dir: str, wav: dict[str, str], faces: Optional[dict[str, list[str]]]) -> None:
    """wav.scp, utt2spk, spk2utt (and faces.scp) of one part, atomically and sorted."""
    utt2spk = {u: u.split("/")[0] for u in wav}
    write_table(os.path.join(out_dir, "wav.scp"), wav)
    write_table(os.path.join(out_dir, "utt2spk"), utt2spk)
    write_table(os.path.join(out_dir, "spk2utt"), utt2spk_to_spk2utt(utt2spk))
    if faces is not None:
        write_table(os.path.join(out_dir, "faces.scp"), faces)


def _part(name: str, wav: dict[str, str], face_root: str, log) -> tuple[dict, Optional[dict]]:
    """Attach faces when face_root exists; utterances without frames are dropped so every table agrees."""
    if not os.path.isdir(face_root):
        log(f"{name}: no face frames at {face_root}: audio-only data dir (no faces.scp)")
        return wav, None
    faces = scan_faces(face_root, sorted(wav))
    dropped = len(wav) - len(faces)
    if dropped:
        log(f"{name}: {dropped} of {len(wav)} utterances have no face frames under {face_root} and are left out")
    return {u: wav[u] for u in faces}, faces


def prepare_voxceleb(data_root: str, out: str, nj: int = 2, log=print) -> dict:
    """Build OUT/train (VoxCeleb2 dev) and OUT/eval (VoxCeleb1 + trials/{O,E,H}); returns counts."""
    vox2, vox1 = os.path.join(data_root, "voxceleb2"), os.path.join(data_root, "voxceleb1")
    wav2_dir, aac_dir = os.path.join(vox2, "dev", "wav"), os.path.join(vox2, "dev", "aac")
    if os.path.isdir(wav2_dir):
        train_wav = scan_audio(wav2_dir, ".wav")
    elif os.path.isdir(aac_dir):
        train_wav = convert_m4a(scan_audio(aac_dir, ".m4a"), os.path.join(out, "wav_vox2"), nj)
    else:
        raise FileNotFoundError(f"VoxCeleb2 dev audio not found: expected {wav2_dir} or {aac_dir}")
    vox1_wav = os.path.join(vox1, "wav")
    if not os.path.isdir(vox1_wav):
        raise FileNotFoundError(f"VoxCeleb1 audio not found: expected {vox1_wav}/<id>/<video>/<seg>.wav")
    eval_wav = scan_audio(vox1_wav, ".wav")
    overlap = {u.split("/")[0] for u in train_wav} & {u.split("/")[0] for u in eval_wav}
    if overlap:
        raise ValueError(f"speakers in both VoxCeleb2 dev and VoxCeleb1 (e.g. {sorted(overlap)[0]}): "
                         "train and eval must be speaker-disjoint")
    train_wav, train_faces = _part("train", train_wav, os.path.join(vox2, "faces"), log)
    eval_wav, eval_faces = _part("eval", eval_wav, os.path.join(vox1, "faces"), log)
    write_data_dir(os.path.join(out, "train"), train_wav, train_faces)
    write_data_dir(os.path.join(out, "eval"), eval_wav, eval_faces)
    counts = {"train": {"speakers": len({u.split("/")[0] for u in train_wav}), "utterances": len(train_wav)},
              "eval": {"speakers": len({u.split("/")[0] for u in eval_wav}), "utterances": len(eval_wav)},
              "trials": {}}
    for name, fname in TRIAL_FILES.items():
        path = os.path.join(vox1, fname)
        if not os.path.isfile(path):
            log(f"trials {name}: {path} not found, skipped")
            continue
        rows = read_official_trials(path)
        missing = [(a, b) for a, b, _ in rows if a not in eval_wav or b not in eval_wav]
        if missing:
            a, b = missing[0]
            raise KeyError(f"{path}: {len(missing)} trials use utterances not in the eval data dir "
                           f"(e.g. '{a if a not in eval_wav else b}')")
        with atomic_write(os.path.join(out, "eval", "trials", name)) as f:
            f.writelines(f"{a} {b} {lab}\n" for a, b, lab in rows)
        with atomic_write(os.path.join(out, "eval", "trials_voxceleb", name + ".txt")) as f:
            f.writelines(f"{int(lab == 'target')} {a} {b}\n" for a, b, lab in rows)
        n_t = sum(r[2] == "target" for r in rows)
        counts["trials"][name] = {"trials": len(rows), "target": n_t, "nontarget": len(rows) - n_t}
    return counts
