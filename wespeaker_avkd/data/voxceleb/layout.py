"""Where VoxCeleb's parts are on disk: the official archives' folders, VoxCeleb1's name-keyed face frames
(mapped to ids by vox1_meta.csv), pre-extracted frame folders and WeSpeaker's prepared data dirs.
(The supported names and where each comes from: egs/voxceleb/v_kd/local/README.md.)"""
from __future__ import annotations

import json
import os
from collections.abc import Callable

from wespeaker_avkd.data.kaldi_dir import read_table
from wespeaker_avkd.utils.errors import NamedError

IMAGE_EXTS = (".jpg", ".jpeg", ".png")
VOX1_META = "vox1_meta.csv"
VOX1_FACES = os.path.join("unzippedIntervalFaces", "data")   # "cropped face images" of VoxCeleb1, by name
WESPEAKER_LISTS = ("raw.list", "data.list")                   # WeSpeaker's raw data lists (json lines)


class LayoutError(NamedError, ValueError):
    """A VoxCeleb file or folder is missing or not in the expected form (the message names it)."""


class MissingFaces(NamedError, FileNotFoundError):
    """A part that the run needs with faces has no face folder (one line naming the folder looked for)."""


def _sorted_dirs(path: str) -> list[str]:
    return sorted(n for n in os.listdir(path) if os.path.isdir(os.path.join(path, n)))


def scan_media(root: str, ext: str) -> dict[str, str]:
    """{idNNNNN/video/NNNNN: absolute path} of every <root>/<spk>/<video>/<seg><ext> (sorted walk)."""
    table = {}
    for spk in _sorted_dirs(root):
        for video in _sorted_dirs(os.path.join(root, spk)):
            vdir = os.path.abspath(os.path.join(root, spk, video))
            for name in sorted(os.listdir(vdir)):
                if name.endswith(ext):
                    table[f"{spk}/{video}/{name[:-len(ext)]}"] = os.path.join(vdir, name)
    return table


def _frames_in(d: str) -> list[str]:
    """Sorted absolute paths of the images in folder d (empty when d is not a folder)."""
    if not os.path.isdir(d):
        return []
    return [os.path.join(os.path.abspath(d), f) for f in sorted(os.listdir(d)) if f.lower().endswith(IMAGE_EXTS)]


def scan_frame_dirs(root: str, utts: list[str]) -> dict[str, list[str]]:
    """{utt: sorted frame paths} from <root>/<utt>/*.jpg|jpeg|png for the utterances that have frames."""
    faces = {}
    for utt in utts:
        frames = _frames_in(os.path.join(root, utt))
        if frames:
            faces[utt] = frames
    return faces


def read_vox1_meta(path: str) -> dict[str, str]:
    """{VGGFace1 name: VoxCeleb1 id} from vox1_meta.csv (tab-separated: 'VoxCeleb1 ID, VGGFace1 ID, Gender,
    Nationality, Set'; surrounding spaces ignored). Raises LayoutError naming the file and line."""
    with open(path, "r", encoding="utf-8") as f:
        rows = [[c.strip() for c in line.rstrip("\n").split("\t")] for line in f if line.strip()]
    header = [c.lower() for c in rows[0]] if rows else []
    if "voxceleb1 id" not in header or "vggface1 id" not in header:
        raise LayoutError(f"{path}:1: expected a tab-separated header with 'VoxCeleb1 ID' and 'VGGFace1 ID', "
                          f"got {chr(9).join(rows[0]) if rows else ''!r}")
    i_id, i_name = header.index("voxceleb1 id"), header.index("vggface1 id")
    name2id: dict[str, str] = {}
    for n, row in enumerate(rows[1:], 2):
        if len(row) <= max(i_id, i_name) or not row[i_id].startswith("id") or not row[i_name]:
            raise LayoutError(f"{path}:{n}: expected 'idNNNNN<TAB>Name<TAB>...', got {chr(9).join(row)!r}")
        if row[i_name] in name2id:
            raise LayoutError(f"{path}:{n}: name {row[i_name]!r} is given twice (also {name2id[row[i_name]]})")
        name2id[row[i_name]] = row[i_id]
    return name2id


def track_to_segment(track: str) -> str | None:
    """VoxCeleb1 face-track folder name ('1', '12', or already '00001') -> segment id NNNNN, or None."""
    return f"{int(track):05d}" if track.isdigit() else None


def scan_vox1_name_frames(data_dir: str, name2id: dict[str, str], log: Callable[[str], None]) -> dict[str, list[str]]:
    """{idNNNNN/video/NNNNN: frames} from VoxCeleb1's cropped faces <data_dir>/<Name>/<version>/<video>/<track>/
    *.jpg, the name mapped to its id by vox1_meta.csv and track N to segment NNNNN. Names missing from the meta
    file are counted and logged, never guessed."""
    faces: dict[str, list[str]] = {}
    unknown = []
    for name in _sorted_dirs(data_dir):
        spk = name2id.get(name)
        if spk is None:
            unknown.append(name)
            continue
        for version in _sorted_dirs(os.path.join(data_dir, name)):
            vroot = os.path.join(data_dir, name, version)
            for video in _sorted_dirs(vroot):
                for track in _sorted_dirs(os.path.join(vroot, video)):
                    seg = track_to_segment(track)
                    frames = _frames_in(os.path.join(vroot, video, track))
                    if seg is not None and frames:
                        faces.setdefault(f"{spk}/{video}/{seg}", frames)
    if unknown:
        log(f"{data_dir}: {len(unknown)} name folders are not in {VOX1_META} and are left out "
            f"(e.g. {unknown[0]!r})")
    return faces


def _strip_wav(key: str) -> str:
    return key[:-4] if key.endswith(".wav") else key


def _check_key(path: str, where: str, key: str, spk: str | None) -> None:
    if key.count("/") != 2 or (spk is not None and key.split("/")[0] != spk):
        raise LayoutError(f"{path}:{where}: expected an utterance key idNNNNN/<video>/NNNNN[.wav] whose first "
                          f"field is its speaker, got key {key!r} speaker {spk!r}")


def read_wespeaker_dir(data_dir: str) -> dict[str, str]:
    """{idNNNNN/video/NNNNN: wav path} of a WeSpeaker data dir (examples/voxceleb/v2/data/<part>): its wav.scp +
    utt2spk, or else its raw data list (raw.list or data.list: json lines {"key", "wav", "spk"}). WeSpeaker's
    keys end in '.wav'; that suffix is stripped. Raises LayoutError naming the file and line."""
    scp = os.path.join(data_dir, "wav.scp")
    if os.path.isfile(scp):
        wav = read_table(scp)
        u2s_path = os.path.join(data_dir, "utt2spk")
        utt2spk = read_table(u2s_path) if os.path.isfile(u2s_path) else {}
        for key in wav:
            _check_key(u2s_path if utt2spk else scp, key, key, utt2spk.get(key))
        return {_strip_wav(k): p for k, p in wav.items()}
    for name in WESPEAKER_LISTS:
        path = os.path.join(data_dir, name)
        if not os.path.isfile(path):
            continue
        out = {}
        with open(path, "r", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    key, wav_path, spk = rec["key"], rec["wav"], rec.get("spk")
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise LayoutError(f"{path}:{n}: expected a json line with 'key', 'wav' and 'spk' (WeSpeaker's "
                                      f"raw list), got {line.strip()[:80]!r}") from None
                _check_key(path, str(n), key, spk)
                out[_strip_wav(key)] = wav_path
        return out
    raise LayoutError(f"{data_dir}: no WeSpeaker data dir here: expected wav.scp (+ utt2spk) or "
                      f"{' or '.join(WESPEAKER_LISTS)}")
