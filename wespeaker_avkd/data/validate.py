"""Data-dir validator: checks every Kaldi file against the others; each problem names file and line.

The default mode is cheap and still finds truncated wavs (RIFF header vs file size), wavs shorter than one
fbank frame, face files that are not images (PIL reads the header only), and table values that are not plain
files (a Kaldi pipe `cmd |`, stdin `-`, an `ark:` specifier: utils/kaldi_tables.py's rule, the one the readers
apply) or whose file is missing; --deep also decodes every wav, image and feature matrix (NaN/Inf included)."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

import numpy as np
import soundfile as sf
from PIL import Image

from wespeaker_avkd import _scorer
from wespeaker_avkd.utils.fileio import PathLike
from wespeaker_avkd.utils.kaldi_tables import read_rxfile, split_offset, values_problem

TABLES = ("wav.scp", "utt2spk", "spk2utt", "faces.scp", "feats.scp", "utt2meta")
REQUIRED = ("wav.scp", "utt2spk", "spk2utt")
# Tables of file values: each value must be a plain file (no pipe, stdin, specifier); faces.scp has several.
FILE_TABLES = {"wav.scp": False, "feats.scp": False, "faces.scp": True}  # name -> several values per line
MIN_FRAME_MS = 25.0  # the default fbank frame: a shorter wav gives no feature frame


def audio_problem(data: np.ndarray) -> str | None:
    """Why decoded audio (S,) or (S, C) cannot be used (no samples; NaN or Inf samples), else None."""
    if data.size == 0:
        return "no audio samples (an empty wav)"
    finite = np.isfinite(data)
    if not finite.all():
        first = int(np.argmin(finite.reshape(len(data), -1).all(axis=1)))
        return (f"{int(np.count_nonzero(~finite))} NaN or Inf samples (the first at sample {first}); "
                "audio must be finite")
    return None


def wav_truncation(path: PathLike) -> str | None:
    """Why a RIFF/WAVE file is truncated (its header declares more audio than the file holds), else None.

    Reads only the chunk headers (a few bytes): libsndfile silently clamps a truncated file's frame count to
    what is there, so neither sf.info nor sf.read notices. Non-RIFF files (flac, ...) are not checked here.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        block_align = 0
        while pos + 8 <= size:
            f.seek(pos)
            chunk = f.read(8)
            cid, csize = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if cid == b"fmt " and csize >= 14:
                block_align = int.from_bytes(f.read(14)[12:14], "little")
            if cid == b"data":
                if csize in (0, 0xFFFFFFFF):  # streaming writers leave the size open: nothing to compare
                    return None
                have = size - pos - 8
                if have < csize:
                    frames = f" ({csize // block_align} frames, {have // block_align} present)" if block_align else ""
                    return f"truncated: the header declares {csize} bytes of audio, the file holds {have}{frames}"
                return None
            pos += 8 + csize + (csize & 1)  # chunks are padded to an even size
    return "truncated: no audio data chunk before the end of the file"


@dataclasses.dataclass(frozen=True)
class Problem:
    """One problem: the file, its 1-based line (0 when the whole file), and what is wrong."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclasses.dataclass
class Table:
    """A parsed Kaldi table: key -> (line, values)."""

    path: str
    rows: dict


def _parse(path: str, problems: list[Problem], min_values: int = 1, files: bool | None = None) -> Table:
    """Parse a table, reporting empty values, duplicate keys and unsorted keys (C-locale order) by line; with
    `files` (False: one file value a line, True: several) also values that are not plain files."""
    rows: dict = {}
    prev: str | None = None
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            tok = line.split()
            if not tok:
                continue
            key, values = tok[0], tok[1:]
            if len(values) < min_values:
                problems.append(Problem(path, n, f"key '{key}' has no value"))
            bad = values_problem(values, files) if files is not None and values else None
            if bad:
                problems.append(Problem(path, n, f"utterance '{key}': {bad}"))
                values = []  # nothing of it is opened by the checks below
            if key in rows:
                problems.append(Problem(path, n, f"duplicate key '{key}' (first on line {rows[key][0]})"))
                continue
            if prev is not None and key < prev:
                problems.append(Problem(path, n, f"not sorted: '{key}' comes after '{prev}' (sort with LC_ALL=C)"))
            prev = key
            rows[key] = (n, values)
    return Table(path, rows)


def _check_wavs(wav: Table, deep: bool, sample_rate: int, problems: list[Problem]) -> None:
    for utt, (n, values) in wav.rows.items():
        if not values:
            continue
        path = values[0]
        if len(values) > 1:
            problems.append(Problem(wav.path, n, f"utterance '{utt}': only plain file paths are supported"))
            continue
        if not os.path.isfile(path):
            problems.append(Problem(wav.path, n, f"utterance '{utt}': audio file missing: {path}"))
            continue
        try:
            truncated = wav_truncation(path)  # header vs file size: a few bytes read, no decoding
            if truncated:
                raise RuntimeError(truncated)
            info = sf.info(path)
            if info.samplerate != sample_rate:
                problems.append(Problem(wav.path, n, f"utterance '{utt}': sample rate {info.samplerate} Hz, "
                                                     f"expected {sample_rate} Hz: {path}"))
            min_frames = int(info.samplerate * MIN_FRAME_MS * 0.001)
            if info.frames < min_frames:
                problems.append(Problem(wav.path, n, f"utterance '{utt}': {info.frames} samples, shorter than one "
                                                     f"fbank frame ({min_frames} samples = {MIN_FRAME_MS:g} ms): "
                                                     f"{path}"))
                continue
            if deep:
                data, _ = sf.read(path, dtype="float32")
                if len(data) != info.frames:
                    raise RuntimeError(f"read {len(data)} of {info.frames} samples")
                unusable = audio_problem(data)
                if unusable:
                    problems.append(Problem(wav.path, n, f"utterance '{utt}': {unusable}: {path}"))
        except Exception as e:  # soundfile raises several types for broken files
            problems.append(Problem(wav.path, n, f"utterance '{utt}': corrupt or unreadable audio {path} ({e})"))


# Leading bytes of the image formats faces come in (PNG with its IHDR chunk, JPEG, GIF, BMP, TIFF, WEBP).
_IMAGE_MAGIC = ((0, b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), (0, b"\xff\xd8\xff"), (0, b"GIF87a"),
                (0, b"GIF89a"), (0, b"BM"), (0, b"II*\x00"), (0, b"MM\x00*"), (8, b"WEBP"))


def _image_magic(path: str) -> bool:
    """True when the file starts like a known image format (16 bytes read: the default check's whole cost;
    anything else goes to PIL, which accepts other formats or says why it is not an image)."""
    with open(path, "rb") as f:
        head = f.read(16)
    return any(head[at:at + len(magic)] == magic for at, magic in _IMAGE_MAGIC)


def _check_faces(faces: Table, deep: bool, problems: list[Problem]) -> None:
    for utt, (n, frames) in faces.rows.items():
        for path in frames:
            if not os.path.isfile(path):
                problems.append(Problem(faces.path, n, f"utterance '{utt}': image file missing: {path}"))
                continue
            try:
                if deep or not _image_magic(path):
                    with Image.open(path) as img:  # the header identifies the format (or raises)
                        if deep:
                            img.load()
            except Exception as e:  # PIL raises several types for broken files
                what = "corrupt image" if deep else "not an image"
                problems.append(Problem(faces.path, n, f"utterance '{utt}': {what} {path} ({e})"))


def _check_feats(feats: Table, deep: bool, problems: list[Problem]) -> None:
    """Each feats.scp value's ark exists (a regular file); with `deep` each matrix is read and must be a
    non-empty 2-D matrix of finite numbers."""
    present: dict[str, bool] = {}
    for utt, (n, values) in feats.rows.items():
        if not values:
            continue
        value = " ".join(values)  # as the readers take it (a path may hold spaces)
        ark = split_offset(value)[0]
        if ark not in present:
            present[ark] = os.path.isfile(ark)
        if not present[ark]:
            problems.append(Problem(feats.path, n, f"utterance '{utt}': feature file missing: {ark}"))
            continue
        if not deep:
            continue
        try:
            mat = read_rxfile(value, f"{feats.path}:{n}")
        except Exception as e:  # a corrupt or truncated entry (kaldiio raises several types)
            problems.append(Problem(feats.path, n, f"utterance '{utt}': corrupt or truncated features at "
                                                   f"{value} ({type(e).__name__}: {e})"))
            continue
        if mat.ndim != 2 or mat.size == 0:
            problems.append(Problem(feats.path, n, f"utterance '{utt}': features of shape {mat.shape} at "
                                                   f"{value}, expected a non-empty (frames, bins) matrix"))
        elif not np.isfinite(mat).all():
            problems.append(Problem(feats.path, n, f"utterance '{utt}': {int(np.count_nonzero(~np.isfinite(mat)))}"
                                                   f" NaN or Inf feature values at {value}"))


def _check_speakers(wav: Table, utt2spk: Table, spk2utt: Table, problems: list[Problem]) -> None:
    for utt, (n, _) in wav.rows.items():
        if utt not in utt2spk.rows:
            problems.append(Problem(wav.path, n, f"utterance '{utt}' has no speaker in {utt2spk.path}"))
    for utt, (n, _) in utt2spk.rows.items():
        if utt not in wav.rows:
            problems.append(Problem(utt2spk.path, n, f"utterance '{utt}' has no audio in {wav.path}"))
    expected: dict[str, set] = {}
    for utt, (_, values) in utt2spk.rows.items():
        if values:
            expected.setdefault(values[0], set()).add(utt)
    for spk, (n, utts) in spk2utt.rows.items():
        if not utts:
            problems.append(Problem(spk2utt.path, n, f"speaker '{spk}' has no utterances"))
        elif spk not in expected:
            problems.append(Problem(spk2utt.path, n, f"speaker '{spk}' has no utterances in {utt2spk.path}"))
        elif set(utts) != expected[spk]:
            diff = sorted(set(utts) ^ expected[spk])
            problems.append(Problem(spk2utt.path, n, f"speaker '{spk}': utterances differ from {utt2spk.path} "
                                                     f"(e.g. '{diff[0]}')"))
    for spk in sorted(set(expected) - set(spk2utt.rows)):
        problems.append(Problem(spk2utt.path, 0, f"speaker '{spk}' of {utt2spk.path} is missing"))


def _check_keys(table: Table, keys: set, what: str, problems: list[Problem]) -> None:
    for utt, (n, _) in table.rows.items():
        if utt not in keys:
            problems.append(Problem(table.path, n, f"utterance '{utt}' is not in {what}"))


def scan_trial_list(path: str, form: str) -> tuple[dict, list[Problem]]:
    """Read a trial list of `form` ("kaldi", "voxceleb") with the scorer's own grammar (the compiled parser's
    fields, labels, separators and line numbering, so what passes here is what scoring reads) -> (the scan:
    dict(lines, enroll, test, labels) of the good lines, see _scorer.scan_trials; a Problem per bad line)."""
    scan = _scorer.scan_trials(path, form)
    return scan, [Problem(path, line, why) for line, why in scan["problems"]]


def check_trials(path: str, keys: set, voxceleb_form: bool, problems: list[Problem]) -> None:
    """Check a trial list: every line in the grammar of its form, both keys of each trial in the data dir."""
    scan, found = scan_trial_list(path, "voxceleb" if voxceleb_form else "kaldi")
    for line, enroll, test in zip(scan["lines"].tolist(), scan["enroll"], scan["test"]):
        found += [Problem(path, line, f"trial key '{key}' is not in the data dir")
                  for key in (enroll, test) if key not in keys]
    problems.extend(sorted(found, key=lambda p: p.line))  # file order, as the lines are read


def validate_data_dir(data_dir: str, deep: bool = False, sample_rate: int = 16000) -> list[Problem]:
    """All problems of one data dir (wav.scp, utt2spk, spk2utt, faces.scp, feats.scp, utt2meta, trials)."""
    problems: list[Problem] = []
    tables: dict[str, Table] = {}
    for name in TABLES:
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            tables[name] = _parse(path, problems, files=FILE_TABLES.get(name))
        elif name in REQUIRED:
            problems.append(Problem(path, 0, "required file missing"))
    if not all(name in tables for name in REQUIRED):
        return problems
    wav, utt2spk, spk2utt = tables["wav.scp"], tables["utt2spk"], tables["spk2utt"]
    _check_wavs(wav, deep, sample_rate, problems)
    _check_speakers(wav, utt2spk, spk2utt, problems)
    keys = set(wav.rows)
    for name in ("faces.scp", "feats.scp", "utt2meta"):
        if name in tables:
            _check_keys(tables[name], keys, wav.path, problems)
    if "feats.scp" in tables:
        _check_feats(tables["feats.scp"], deep, problems)
    if "faces.scp" in tables:
        _check_faces(tables["faces.scp"], deep, problems)
        for utt, (n, _) in wav.rows.items():
            if utt not in tables["faces.scp"].rows:
                problems.append(Problem(wav.path, n, f"utterance '{utt}' has no face frames in "
                                                     f"{tables['faces.scp'].path}"))
    for sub, vox in (("trials", False), ("trials_voxceleb", True)):
        tdir = os.path.join(data_dir, sub)
        if os.path.isdir(tdir):
            for name in sorted(os.listdir(tdir)):
                if not name.startswith("."):
                    check_trials(os.path.join(tdir, name), keys, vox, problems)
    return problems


def find_data_dirs(root: str) -> list[str]:
    """root itself when it holds wav.scp, else its immediate subdirectories that do (e.g. corpus/train, eval)."""
    if os.path.isfile(os.path.join(root, "wav.scp")):
        return [root]
    return [os.path.join(root, d) for d in sorted(os.listdir(root))
            if os.path.isfile(os.path.join(root, d, "wav.scp"))]


def validate(paths: Iterable[str], deep: bool = False) -> tuple[list[str], list[Problem]]:
    """Validate every data dir found under paths -> (data dirs checked, problems)."""
    dirs, problems = [], []
    for p in paths:
        found = find_data_dirs(p) if os.path.isdir(p) else []
        if not found:
            problems.append(Problem(p, 0, "no data dir (a directory with wav.scp) found"))
        for d in found:
            dirs.append(d)
            problems.extend(validate_data_dir(d, deep=deep))
    return dirs, problems
