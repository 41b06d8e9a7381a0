"""Kaldi data dirs from the official VoxCeleb layouts (audio, face frames per segment, trial lists).

Expected layout under ROOT (see egs/voxceleb/v_kd/local/README.md):
  ROOT/voxceleb2/dev/aac/idNNNNN/<video>/NNNNN.m4a   (or ROOT/voxceleb2/dev/wav/.../NNNNN.wav)
  ROOT/voxceleb2/faces/idNNNNN/<video>/NNNNN/*.jpg|png
  ROOT/voxceleb1/wav/idNNNNN/<video>/NNNNN.wav
  ROOT/voxceleb1/faces/idNNNNN/<video>/NNNNN/*.jpg|png
  ROOT/voxceleb1/{veri_test2.txt, list_test_all2.txt, list_test_hard2.txt}
  ROOT/voxceleb2/vox2_meta.csv   (optional: gender per identity, for the dev part's "H" list)

Parts written under OUT: train (VoxCeleb2 dev minus the held-out identities), dev (the held-out VoxCeleb2 dev
identities, with generated O/E/H lists) and eval (VoxCeleb1 with the official lists).
"""
from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping

from tqdm import tqdm

from wespeaker_avkd.data.kaldi_dir import utt2spk_to_spk2utt, write_table
from wespeaker_avkd.data.toy_corpus.seeding import STREAM_TRIALS, rng_for
from wespeaker_avkd.data.toy_corpus.trials import make_trials, write_trials
from wespeaker_avkd.data.validate import scan_trial_list

TRIAL_FILES = {"O": "veri_test2.txt", "E": "list_test_all2.txt", "H": "list_test_hard2.txt"}
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
VOX2_META = "vox2_meta.csv"
# Caps of the generated dev lists, in the toy corpus's trial-config form (see wespeaker_avkd/data/toy_corpus.yaml).
DEV_TRIALS = {"O_speaker_fraction": 0.6, "O_max_targets": 10000, "E_max_targets": 10000, "H_max_targets": 10000}


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
    """Official VoxCeleb list lines '1|0 a.wav b.wav' -> [(enroll, test, target|nontarget)] (ids without .wav);
    read with the scorer's trial grammar (data.validate.scan_trial_list), the first bad line raises ValueError."""
    scan, problems = scan_trial_list(path, "voxceleb")
    if problems:
        raise ValueError(str(problems[0]))

    def utt(key: str) -> str:
        return key[:-4] if key.endswith(".wav") else key

    return [(utt(enroll), utt(test), "target" if label == 1 else "nontarget")
            for enroll, test, label in zip(scan["enroll"], scan["test"], scan["labels"].tolist())]


def write_data_dir(out_dir: str, wav: dict[str, str], faces: dict[str, list[str]] | None) -> None:
    """wav.scp, utt2spk, spk2utt (and faces.scp) of one part, atomically and sorted."""
    utt2spk = {u: u.split("/")[0] for u in wav}
    write_table(os.path.join(out_dir, "wav.scp"), wav)
    write_table(os.path.join(out_dir, "utt2spk"), utt2spk)
    write_table(os.path.join(out_dir, "spk2utt"), utt2spk_to_spk2utt(utt2spk))
    if faces is not None:
        write_table(os.path.join(out_dir, "faces.scp"), faces)


def _part(name: str, wav: dict[str, str], face_root: str, log) -> tuple[dict, dict | None]:
    """Attach faces when face_root exists; utterances without frames are dropped so every table agrees."""
    if not os.path.isdir(face_root):
        log(f"{name}: no face frames at {face_root}: audio-only data dir (no faces.scp)")
        return wav, None
    faces = scan_faces(face_root, sorted(wav))
    dropped = len(wav) - len(faces)
    if dropped:
        log(f"{name}: {dropped} of {len(wav)} utterances have no face frames under {face_root} and are left out")
    return {u: wav[u] for u in faces}, faces


def select_dev_speakers(speakers: list[str], n: int, seed: int = 0) -> list[str]:
    """The n speakers with the smallest sha256("<seed>:<id>"): a seeded choice that depends only on each id,
    so a speaker's membership does not change when other speakers are added or missing (sorted list)."""
    if n < 0:
        raise ValueError(f"dev_speakers must be >= 0, got {n}")
    if n and n > len(speakers) - 1:
        raise ValueError(f"dev_speakers = {n} but VoxCeleb2 dev has only {len(speakers)} identities here: "
                         "at least one must stay for training")
    key = lambda spk: hashlib.sha256(f"{seed}:{spk}".encode("utf-8")).hexdigest()  # noqa: E731
    return sorted(sorted(speakers, key=key)[:n])


def read_vox2_gender(path: str) -> dict[str, str]:
    """{id: m|f} from VoxCeleb2's vox2_meta.csv ('VoxCeleb2 ID, VGGFace2 ID, Gender, Set'; spaces ignored)."""
    out = {}
    with open(path, "r", encoding="utf-8") as f:
        rows = [[c.strip() for c in line.split(",")] for line in f if line.strip()]
    if not rows or not any("gender" in c.lower() for c in rows[0]):
        got = ",".join(rows[0]) if rows else ""
        raise ValueError(f"{path}:1: expected a header with a 'Gender' column, got {got!r}")
    col = next(i for i, c in enumerate(rows[0]) if "gender" in c.lower())
    for n, row in enumerate(rows[1:], 2):
        if len(row) <= col or row[col] not in ("m", "f") or not row[0].startswith("id"):
            raise ValueError(f"{path}:{n}: expected 'idNNNNN, ..., m|f, ...', got {','.join(row)!r}")
        out[row[0]] = row[col]
    return out


def dev_trials(utt2spk: Mapping[str, str], gender: Mapping[str, str] | None, seed: int = 0,
               caps: Mapping = DEV_TRIALS) -> dict[str, list[tuple[str, str, str]]]:
    """O/E/H lists of the dev part, drawn like the toy corpus's lists (toy_corpus.trials.make_trials): targets
    pair two videos of one identity; H's nontargets pair identities of the same gender (as VoxCeleb1-H), or any
    two identities when no gender is known."""
    speakers = sorted(set(utt2spk.values()))
    if gender:
        similar = [(a, b) for a, b in itertools.combinations(speakers, 2) if gender.get(a, "?") == gender.get(b, "!")]
    else:
        similar = list(itertools.combinations(speakers, 2))
    return make_trials(rng_for(seed, STREAM_TRIALS, 2), utt2spk, similar, caps)


def _count(rows: list) -> dict:
    n_t = sum(r[2] == "target" for r in rows)
    return {"trials": len(rows), "target": n_t, "nontarget": len(rows) - n_t}


def prepare_voxceleb(data_root: str, out: str, nj: int = 2, log=print, dev_speakers: int = 100,
                     dev_seed: int = 0, dev_caps: Mapping = DEV_TRIALS) -> dict:
    """Build OUT/train + OUT/dev (VoxCeleb2 dev, split by identity) and OUT/eval (VoxCeleb1 + trials/{O,E,H});
    returns counts {part: {speakers, utterances}, "trials": {part: {list: counts}}}."""
    vox2, vox1 = os.path.join(data_root, "voxceleb2"), os.path.join(data_root, "voxceleb1")
    wav2_dir, aac_dir = os.path.join(vox2, "dev", "wav"), os.path.join(vox2, "dev", "aac")
    if os.path.isdir(wav2_dir):
        vox2_wav = scan_audio(wav2_dir, ".wav")
    elif os.path.isdir(aac_dir):
        vox2_wav = convert_m4a(scan_audio(aac_dir, ".m4a"), os.path.join(out, "wav_vox2"), nj)
    else:
        raise FileNotFoundError(f"VoxCeleb2 dev audio not found: expected {wav2_dir} or {aac_dir}")
    vox1_wav = os.path.join(vox1, "wav")
    if not os.path.isdir(vox1_wav):
        raise FileNotFoundError(f"VoxCeleb1 audio not found: expected {vox1_wav}/<id>/<video>/<seg>.wav")
    eval_wav = scan_audio(vox1_wav, ".wav")
    overlap = {u.split("/")[0] for u in vox2_wav} & {u.split("/")[0] for u in eval_wav}
    if overlap:
        raise ValueError(f"speakers in both VoxCeleb2 dev and VoxCeleb1 (e.g. {sorted(overlap)[0]}): "
                         "train and eval must be speaker-disjoint")
    dev_spk = set(select_dev_speakers(sorted({u.split("/")[0] for u in vox2_wav}), dev_speakers, dev_seed))
    parts = {"train": {u: p for u, p in vox2_wav.items() if u.split("/")[0] not in dev_spk},
             "dev": {u: p for u, p in vox2_wav.items() if u.split("/")[0] in dev_spk},
             "eval": eval_wav}
    if not dev_spk:
        del parts["dev"]
        if os.path.isdir(os.path.join(out, "dev")):
            log(f"dev: no dev part asked for (dev_speakers 0); {os.path.join(out, 'dev')} is left from an earlier "
                "run and is NOT current: delete it")
    counts: dict = {"trials": {}}
    for part, wav in parts.items():
        wav, faces = _part(part, wav, os.path.join(vox1 if part == "eval" else vox2, "faces"), log)
        write_data_dir(os.path.join(out, part), wav, faces)
        parts[part] = wav
        counts[part] = {"speakers": len({u.split("/")[0] for u in wav}), "utterances": len(wav)}
    if "dev" in parts:
        meta = os.path.join(vox2, VOX2_META)
        gender = read_vox2_gender(meta) if os.path.isfile(meta) else None
        if gender is None:
            log(f"dev: no {meta}: the H list pairs any two identities (not harder than E)")
        lists = dev_trials({u: u.split("/")[0] for u in parts["dev"]}, gender, dev_seed, dev_caps)
        write_trials(os.path.join(out, "dev"), lists)
        counts["trials"]["dev"] = {name: _count(rows) for name, rows in lists.items()}
    eval_wav, eval_lists = parts["eval"], {}
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
        eval_lists[name] = rows
    write_trials(os.path.join(out, "eval"), eval_lists)
    counts["trials"]["eval"] = {name: _count(rows) for name, rows in eval_lists.items()}
    return counts
