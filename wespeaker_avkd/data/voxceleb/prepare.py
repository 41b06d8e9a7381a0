"""Kaldi data dirs from VoxCeleb: train + dev (VoxCeleb2 dev, split by identity) and eval (VoxCeleb1 with the
official lists), with face frames per segment. Sources (resolved, and checked, before any conversion):

  audio  VoxCeleb2: ROOT/voxceleb2/dev/wav (16 kHz wav) | ROOT/voxceleb2/dev/aac (m4a, decoded) |
                    WESPEAKER/vox2_dev (WeSpeaker's data dir: wav.scp + utt2spk, or raw.list / data.list)
         VoxCeleb1: ROOT/voxceleb1/wav | WESPEAKER/vox1
  faces  VoxCeleb2: ROOT/voxceleb2/faces/<utt>/*.jpg (frames) | ROOT/voxceleb2/dev/mp4 (face tracks, decoded)
         VoxCeleb1: ROOT/voxceleb1/faces/<utt>/*.jpg | ROOT/voxceleb1/unzippedIntervalFaces/data/<Name>/...
                    (+ ROOT/voxceleb1/vox1_meta.csv) | ROOT/voxceleb1/mp4 (face tracks, decoded)
  lists  ROOT/voxceleb1/{veri_test2,list_test_all2,list_test_hard2}.txt | WESPEAKER/vox1/trials/vox1_*_cleaned.kaldi

The full description of each folder and where it comes from: egs/voxceleb/v_kd/local/README.md.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
from collections.abc import Callable, Mapping

from wespeaker_avkd.data.kaldi_dir import utt2spk_to_spk2utt, write_table
from wespeaker_avkd.data.toy_corpus.seeding import STREAM_TRIALS, rng_for
from wespeaker_avkd.data.toy_corpus.trials import make_trials, write_trials
from wespeaker_avkd.data.validate import scan_trial_list
from wespeaker_avkd.data.voxceleb.convert import Job, run_conversion
from wespeaker_avkd.data.voxceleb.decode import SAMPLE_RATE, require_av
from wespeaker_avkd.data.voxceleb.layout import (
    VOX1_FACES,
    VOX1_META,
    LayoutError,
    MissingFaces,
    read_vox1_meta,
    read_wespeaker_dir,
    scan_frame_dirs,
    scan_media,
    scan_vox1_name_frames,
)
from wespeaker_avkd.utils.errors import NamedError

TRIAL_FILES = {"O": "veri_test2.txt", "E": "list_test_all2.txt", "H": "list_test_hard2.txt"}
WESPEAKER_TRIALS = {"O": "vox1_O_cleaned.kaldi", "E": "vox1_E_cleaned.kaldi", "H": "vox1_H_cleaned.kaldi"}
VOX2_META = "vox2_meta.csv"
# Caps of the generated dev lists, in the toy corpus's trial-config form (see wespeaker_avkd/data/toy_corpus.yaml).
DEV_TRIALS = {"O_speaker_fraction": 0.6, "O_max_targets": 10000, "E_max_targets": 10000, "H_max_targets": 10000}
# Face-track sampling: frames per second of track, at most this many per segment, stored at this size (px).
FACE_FPS, FACE_MAX_FRAMES, FACE_SIZE = 1.0, 8, 112


class TrialKeyError(NamedError, KeyError):
    """An official trial names an utterance that the eval audio does not have."""


@dataclasses.dataclass
class Source:
    """One resolved input: its kind (wav, m4a, wespeaker, frames, names, mp4) and its folder."""

    kind: str
    path: str


@dataclasses.dataclass
class FaceArgs:
    """How face tracks become frames: sampling rate (frames/s), cap per segment, stored size (px)."""

    fps: float = FACE_FPS
    max_frames: int = FACE_MAX_FRAMES
    size: int = FACE_SIZE


def _first_dir(candidates: list[tuple[str, str]]) -> Source | None:
    for kind, path in candidates:
        if path and os.path.isdir(path):
            return Source(kind, path)
    return None


def resolve_sources(data_root: str | None, wespeaker_data: str | None, need_faces: bool) -> dict[str, Source | None]:
    """{vox2_audio, vox1_audio, vox2_faces, vox1_faces} found on disk (see the module doc). Raises LayoutError
    when audio is missing and MissingFaces (one line naming the folder) when faces are needed and missing."""
    root = data_root or ""
    vox2, vox1 = os.path.join(root, "voxceleb2"), os.path.join(root, "voxceleb1")
    ws = wespeaker_data or ""
    vox2_audio = [("wespeaker", os.path.join(ws, "vox2_dev"))] if ws else []
    vox1_audio = [("wespeaker", os.path.join(ws, "vox1"))] if ws else []
    if root:
        vox2_audio += [("wav", os.path.join(vox2, "dev", "wav")), ("m4a", os.path.join(vox2, "dev", "aac"))]
        vox1_audio += [("wav", os.path.join(vox1, "wav"))]
    found = {"vox2_audio": _first_dir(vox2_audio), "vox1_audio": _first_dir(vox1_audio)}
    for name, cands in (("vox2_audio", vox2_audio), ("vox1_audio", vox1_audio)):
        if found[name] is None:
            raise LayoutError(f"{'VoxCeleb2 dev' if name == 'vox2_audio' else 'VoxCeleb1'} audio not found: "
                              f"expected {' or '.join(p for _, p in cands if p)}")
    vox2_faces = [("frames", os.path.join(vox2, "faces")), ("mp4", os.path.join(vox2, "dev", "mp4"))]
    vox1_faces = [("frames", os.path.join(vox1, "faces")), ("names", os.path.join(vox1, VOX1_FACES)),
                  ("mp4", os.path.join(vox1, "mp4"))]
    found["vox2_faces"] = _first_dir(vox2_faces) if root else None
    found["vox1_faces"] = _first_dir(vox1_faces) if root else None
    if found["vox1_faces"] is not None and found["vox1_faces"].kind == "names":
        meta = os.path.join(vox1, VOX1_META)
        if not os.path.isfile(meta):
            raise MissingFaces(f"{meta} not found: it maps the name folders of {found['vox1_faces'].path} to ids")
    if need_faces:
        for name, cands, parts in (("vox2_faces", vox2_faces, "train and dev"), ("vox1_faces", vox1_faces, "eval")):
            if found[name] is None:
                where = os.path.join(root or "<--data_root>", os.path.relpath(cands[-1][1], root or "."))
                raise MissingFaces(f"no face folder for the {parts} parts: {where} not found (nor "
                                   f"{', '.join(os.path.relpath(p, root or '.') for _, p in cands[:-1])}); the "
                                   "visual systems and the teacher need faces (audio only: --need_faces false, "
                                   "or run.sh --stop_stage 2)")
    if any(s is not None and s.kind in ("m4a", "mp4") for s in found.values()):
        require_av()   # before any work: one line naming the extra
    return found


def read_official_trials(path: str) -> list[tuple[str, str, str]]:
    """An official list ('1|0 a.wav b.wav', or WeSpeaker's Kaldi form 'a.wav b.wav target|nontarget' for a
    *.kaldi file) -> [(enroll, test, target|nontarget)] with ids without .wav; read with the scorer's trial
    grammar (data.validate.scan_trial_list); the first bad line raises LayoutError."""
    scan, problems = scan_trial_list(path, "kaldi" if path.endswith(".kaldi") else "voxceleb")
    if problems:
        raise LayoutError(str(problems[0]))

    def utt(key: str) -> str:
        return key[:-4] if key.endswith(".wav") else key

    return [(utt(enroll), utt(test), "target" if label == 1 else "nontarget")
            for enroll, test, label in zip(scan["enroll"], scan["test"], scan["labels"].tolist())]


def write_data_dir(out_dir: str, wav: Mapping[str, str], faces: Mapping[str, list[str]] | None) -> None:
    """wav.scp, utt2spk, spk2utt (and faces.scp) of one part, atomically and sorted."""
    utt2spk = {u: u.split("/")[0] for u in wav}
    write_table(os.path.join(out_dir, "wav.scp"), wav)
    write_table(os.path.join(out_dir, "utt2spk"), utt2spk)
    write_table(os.path.join(out_dir, "spk2utt"), utt2spk_to_spk2utt(utt2spk))
    if faces is not None:
        write_table(os.path.join(out_dir, "faces.scp"), faces)


def select_dev_speakers(speakers: list[str], n: int, seed: int = 0) -> list[str]:
    """The n speakers with the smallest sha256("<seed>:<id>"): a seeded choice that depends only on each id,
    so a speaker's membership does not change when other speakers are added or missing (sorted list)."""
    if n < 0:
        raise LayoutError(f"dev_speakers must be >= 0, got {n}")
    if n and n > len(speakers) - 1:
        raise LayoutError(f"dev_speakers = {n} but VoxCeleb2 dev has only {len(speakers)} identities here: "
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
        raise LayoutError(f"{path}:1: expected a header with a 'Gender' column, got {got!r}")
    col = next(i for i, c in enumerate(rows[0]) if "gender" in c.lower())
    for n, row in enumerate(rows[1:], 2):
        if len(row) <= col or row[col] not in ("m", "f") or not row[0].startswith("id"):
            raise LayoutError(f"{path}:{n}: expected 'idNNNNN, ..., m|f, ...', got {','.join(row)!r}")
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


def _spk(utt: str) -> str:
    return utt.split("/")[0]


class _Run:
    """One preparation: the sources, OUT, the conversion settings, and the errors of skipped inputs."""

    def __init__(self, out: str, nj: int, log: Callable[[str], None], progress: bool, face_args: FaceArgs):
        self.out, self.nj, self.log, self.progress, self.face_args = out, nj, log, progress, face_args
        self.failed: list[str] = []

    def convert(self, kind: str, media: Mapping[str, str], name: str, ext: str, args: dict) -> dict[str, list[str]]:
        """Convert media {utt: src} into OUT/<name>/<utt><ext> (journal OUT/.<name>.journal); failures are kept."""
        root = os.path.join(os.path.abspath(self.out), name)
        jobs = [Job(u, media[u], os.path.join(root, u + ext)) for u in sorted(media)]
        outcome = run_conversion(kind, jobs, args, os.path.join(self.out, f".{name}.journal"), self.nj, self.progress,
                                 desc=name)
        self.log(f"{name}: {outcome.converted} converted, {outcome.reused} already current, "
                 f"{len(outcome.failed)} unreadable")
        self.failed += [outcome.failed[k] for k in sorted(outcome.failed)]
        return outcome.outputs

    def audio(self, src: Source) -> tuple[dict[str, str], set[str]]:
        """({utt: wav path} of an audio source (m4a decoded to OUT/wav_vox2/), the utterances left unreadable)."""
        if src.kind == "wespeaker":
            return read_wespeaker_dir(src.path), set()
        if src.kind == "wav":
            return scan_media(src.path, ".wav"), set()
        m4a = scan_media(src.path, ".m4a")
        outputs = self.convert("audio", m4a, "wav_vox2", ".wav", {"sample_rate": SAMPLE_RATE})
        return {u: files[0] for u, files in outputs.items()}, set(m4a) - set(outputs)

    def faces(self, src: Source | None, utts: list[str], vox: str) -> tuple[dict[str, list[str]] | None, set]:
        """({utt: frames} of the utterances that have them, or None without a face source; unreadable tracks)."""
        if src is None:
            return None, set()
        if src.kind == "frames":
            return scan_frame_dirs(src.path, utts), set()
        if src.kind == "names":
            name2id = read_vox1_meta(os.path.join(os.path.dirname(os.path.dirname(src.path)), VOX1_META))
            frames = scan_vox1_name_frames(src.path, name2id, self.log)
            return {u: frames[u] for u in utts if u in frames}, set()
        tracks = scan_media(src.path, ".mp4")
        tracks = {u: tracks[u] for u in utts if u in tracks}
        outputs = self.convert("faces", tracks, f"faces_{vox}", "", dataclasses.asdict(self.face_args))
        return outputs, set(tracks) - set(outputs)


def _keep_with_faces(name: str, wav: dict, faces: dict | None, bad_tracks: set, bad_audio: int, log) -> dict:
    """The utterances of a part that have faces (all without a face source); logs what was left out, per cause."""
    if faces is None:
        log(f"{name}: {len(wav)} utterances, audio only (no face folder){_bad_audio(bad_audio)}")
        return {"kept": len(wav), "no_faces": 0, "unreadable_faces": 0, "unreadable_audio": bad_audio}
    no_faces = [u for u in wav if u not in faces and u not in bad_tracks]
    unreadable = [u for u in wav if u in bad_tracks]
    kept = len(wav) - len(no_faces) - len(unreadable)
    log(f"{name}: {kept} of {len(wav)} utterances kept; left out: {len(no_faces)} without face frames, "
        f"{len(unreadable)} with an unreadable face track{_bad_audio(bad_audio)}")
    return {"kept": kept, "no_faces": len(no_faces), "unreadable_faces": len(unreadable), "unreadable_audio": bad_audio}


def _bad_audio(n: int) -> str:
    return f" (and {n} unreadable audio files before that)" if n else ""


def _read_eval_lists(vox1: str, wespeaker_data: str | None, scanned: set, log) -> dict:
    """The official lists found (ROOT's, else WeSpeaker's), read before any conversion: a trial naming an
    utterance the eval audio does not have raises TrialKeyError."""
    lists = {}
    for name in TRIAL_FILES:
        cands = [os.path.join(vox1, TRIAL_FILES[name])]
        if wespeaker_data:
            cands.append(os.path.join(wespeaker_data, "vox1", "trials", WESPEAKER_TRIALS[name]))
        path = next((p for p in cands if os.path.isfile(p)), None)
        if path is None:
            log(f"trials {name}: {' or '.join(cands)} not found, skipped")
            continue
        rows = read_official_trials(path)
        unknown = [k for a, b, _ in rows for k in (a, b) if k not in scanned]
        if unknown:
            raise TrialKeyError(f"{path}: {len(unknown)} trial keys are not utterances of the eval audio "
                                f"(e.g. '{unknown[0]}')")
        lists[name] = rows
    return lists


def _kept_trials(lists: Mapping[str, list], kept: Mapping[str, str], log) -> dict:
    """The lists over the kept eval utterances: trials of utterances left out (no faces) are dropped, counted."""
    out = {}
    for name, rows in lists.items():
        out[name] = [r for r in rows if r[0] in kept and r[1] in kept]
        if len(out[name]) < len(rows):
            log(f"trials {name}: {len(rows) - len(out[name])} of {len(rows)} trials dropped: they use "
                "utterances left out of eval (see above)")
    return out


def prepare_voxceleb(data_root: str | None, out: str, nj: int = 2, log: Callable[[str], None] = print,
                     dev_speakers: int = 100, dev_seed: int = 0, dev_caps: Mapping = DEV_TRIALS,
                     need_faces: bool = False, face_args: FaceArgs | None = None,
                     wespeaker_data: str | None = None, progress: bool = True) -> dict:
    """Build OUT/train + OUT/dev (VoxCeleb2 dev, split by identity) and OUT/eval (VoxCeleb1 + trials/{O,E,H});
    returns counts {part: {speakers, utterances}, "dropped": {part: counts}, "trials": {part: {list: counts}},
    "failed": [one line per unreadable input]}. With need_faces, a part without a face folder stops the run
    before any conversion (MissingFaces)."""
    sources = resolve_sources(data_root, wespeaker_data, need_faces)
    vox2, vox1 = os.path.join(data_root or "", "voxceleb2"), os.path.join(data_root or "", "voxceleb1")
    run = _Run(out, nj, log, progress, face_args or FaceArgs())
    eval_scan = run.audio(sources["vox1_audio"])[0]
    if sources["vox2_audio"].kind == "m4a":   # identities and lists checked before hours of decoding
        vox2_speakers = {_spk(u) for u in scan_media(sources["vox2_audio"].path, ".m4a")}
    else:
        vox2_wav, bad_vox2 = run.audio(sources["vox2_audio"])
        vox2_speakers = {_spk(u) for u in vox2_wav}
    overlap = vox2_speakers & {_spk(u) for u in eval_scan}
    if overlap:
        raise LayoutError(f"speakers in both VoxCeleb2 dev and VoxCeleb1 (e.g. {sorted(overlap)[0]}): "
                          "train and eval must be speaker-disjoint")
    dev_spk = set(select_dev_speakers(sorted(vox2_speakers), dev_speakers, dev_seed))
    official = _read_eval_lists(vox1, wespeaker_data, set(eval_scan), log)
    meta = os.path.join(vox2, VOX2_META)
    gender = read_vox2_gender(meta) if dev_spk and os.path.isfile(meta) else None
    if sources["vox2_audio"].kind == "m4a":
        vox2_wav, bad_vox2 = run.audio(sources["vox2_audio"])
    parts = {"train": {u: p for u, p in vox2_wav.items() if _spk(u) not in dev_spk},
             "dev": {u: p for u, p in vox2_wav.items() if _spk(u) in dev_spk},
             "eval": eval_scan}
    if not dev_spk:
        del parts["dev"]
        if os.path.isdir(os.path.join(out, "dev")):
            log(f"dev: no dev part asked for (dev_speakers 0); {os.path.join(out, 'dev')} is left from an earlier "
                "run and is NOT current: delete it")
    faces2, bad2 = run.faces(sources["vox2_faces"], sorted(vox2_wav), "vox2")
    faces1, bad1 = run.faces(sources["vox1_faces"], sorted(eval_scan), "vox1")
    counts: dict = {"trials": {}, "dropped": {}}
    for part, wav in parts.items():
        faces, bad = (faces1, bad1) if part == "eval" else (faces2, bad2)
        bad_audio = 0 if part == "eval" else sum((_spk(u) in dev_spk) == (part == "dev") for u in bad_vox2)
        counts["dropped"][part] = _keep_with_faces(part, wav, faces, bad, bad_audio, log)
        if faces is not None:
            wav = {u: p for u, p in wav.items() if u in faces}
        write_data_dir(os.path.join(out, part), wav, None if faces is None else {u: faces[u] for u in wav})
        parts[part] = wav
        counts[part] = {"speakers": len({_spk(u) for u in wav}), "utterances": len(wav)}
    if "dev" in parts:
        if gender is None:
            log(f"dev: no {meta}: the H list pairs any two identities (not harder than E)")
        lists = dev_trials({u: _spk(u) for u in parts["dev"]}, gender, dev_seed, dev_caps)
        write_trials(os.path.join(out, "dev"), lists)
        counts["trials"]["dev"] = {name: _count(rows) for name, rows in lists.items()}
    eval_lists = _kept_trials(official, parts["eval"], log)
    write_trials(os.path.join(out, "eval"), eval_lists)
    counts["trials"]["eval"] = {name: _count(rows) for name, rows in eval_lists.items()}
    counts["failed"] = run.failed
    return counts
