"""Resumable, stamped media conversions (m4a -> wav, mp4 face track -> jpg frames) in --nj processes.

Every output is written under a temporary name and renamed when complete. A journal beside the outputs
(`OUT/.<kind>.journal`, one json line per finished file, appended by the parent after the rename) records the
stamp of each conversion's input: its absolute path, size, mtime_ns, the conversion's arguments and the
converter version, plus the size of what was written. A file is skipped only when its journal line matches the
input as it is now and the output is still there with the recorded size; anything else is converted again. An
interrupted run therefore resumes where it stopped (a torn last journal line is ignored and its file redone),
and a killed conversion leaves at most a temporary file that the rerun replaces. A corrupt or unreadable input
is named, counted and skipped; it never stops the run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tqdm import tqdm

from wespeaker_avkd.data.voxceleb.decode import decode_audio, decode_face_frames, jpeg_bytes, write_wav
from wespeaker_avkd.utils.fileio import atomic_write
from wespeaker_avkd.utils.fingerprint import digest_of

# Bumped when a converter's output bytes change for equal inputs, so old outputs are redone.
CONVERTER_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Job:
    """One conversion: utterance key, source file, destination (a wav file, or a folder of frames)."""

    key: str
    src: str
    dst: str


@dataclasses.dataclass
class Outcome:
    """What a conversion run gives: {key: output paths} of every converted or reused file, {key: error}."""

    outputs: dict[str, list[str]]
    failed: dict[str, str]
    converted: int = 0
    reused: int = 0


def input_stamp(src: str, args: Mapping[str, Any]) -> str:
    """Digest of (absolute source path, size, mtime_ns, args, converter version): the skip key of a conversion."""
    st = os.stat(src)
    return digest_of([os.path.abspath(src), st.st_size, st.st_mtime_ns, dict(args), CONVERTER_VERSION])


def _output_files(dst: str) -> list[str]:
    """The files a finished conversion left at dst: the wav itself, or the sorted frames of a frame folder."""
    if os.path.isdir(dst):
        return [os.path.join(dst, n) for n in sorted(os.listdir(dst))]
    return [dst] if os.path.isfile(dst) else []


def _output_size(files: Sequence[str]) -> int:
    return sum(os.path.getsize(f) for f in files)


def _remove(path: str) -> None:
    """Delete a file or folder tree at path, if there is one."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def convert_audio(job: Job, args: Mapping[str, Any]) -> list[str]:
    """m4a (any audio) -> 16-bit wav at args['sample_rate'], mono, written atomically; returns [dst]."""
    prefix = "." + os.path.basename(job.dst) + "."
    folder = os.path.dirname(job.dst)
    for name in os.listdir(folder):   # temporary files of a killed writer of this key (utils.fileio's names)
        if name.startswith(prefix) and name.endswith(".tmp"):
            _remove(os.path.join(folder, name))
    write_wav(job.dst, decode_audio(job.src, int(args["sample_rate"])), int(args["sample_rate"]))
    return [job.dst]


def convert_faces(job: Job, args: Mapping[str, Any]) -> list[str]:
    """mp4 face track -> dst/NN.jpg (frames at args fps/max_frames, size x size), via dst.tmp renamed onto dst."""
    frames = decode_face_frames(job.src, float(args["fps"]), int(args["max_frames"]), int(args["size"]))
    tmp, old = job.dst + ".tmp", job.dst + ".old"
    for stale in (tmp, old):   # left by a killed run: this process owns this key
        _remove(stale)
    os.makedirs(tmp)
    for i, image in enumerate(frames, 1):
        with open(os.path.join(tmp, f"{i:02d}.jpg"), "wb") as f:
            f.write(jpeg_bytes(image))
    if os.path.isdir(job.dst):
        os.rename(job.dst, old)   # the finished folder is replaced only once the new one is complete
    os.rename(tmp, job.dst)
    _remove(old)
    return _output_files(job.dst)


CONVERTERS: dict[str, Callable[[Job, Mapping[str, Any]], list[str]]] = {"audio": convert_audio, "faces": convert_faces}


def _work(task: tuple[str, Job, dict]) -> tuple[str, list[str] | None, str | None]:
    """Run one conversion in a worker; any failure becomes an error line naming the file (never raised)."""
    kind, job, args = task
    try:
        os.makedirs(os.path.dirname(job.dst), exist_ok=True)
        return job.key, CONVERTERS[kind](job, args), None
    except Exception as e:  # noqa: BLE001 -- a corrupt input is reported and skipped, it never stops the run
        text = str(e) if job.src in str(e) else f"{job.src}: {e}"
        return job.key, None, f"{text} ({type(e).__name__})"


def read_journal(path: str) -> dict[str, dict]:
    """{key: {stamp, size}} of a journal; unreadable or torn lines are ignored (their files are redone)."""
    entries: dict[str, dict] = {}
    with contextlib.suppress(FileNotFoundError), open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("key"), str):
                entries[rec["key"]] = rec
    return entries


def _is_current(entry: dict | None, stamp: str, dst: str) -> list[str] | None:
    """The output files when the journal entry matches the stamp and the output is intact, else None."""
    if entry is None or entry.get("stamp") != stamp:
        return None
    files = _output_files(dst)
    if not files or _output_size(files) != entry.get("size"):
        return None
    return files


def run_conversion(kind: str, jobs: Sequence[Job], args: Mapping[str, Any], journal: str, nj: int = 1,
                   progress: bool = True, desc: str | None = None) -> Outcome:
    """Convert every job not already current (see the module doc) in `nj` processes with a progress bar;
    returns the outputs of all jobs that have one and the errors of those that failed."""
    args = dict(args)
    entries = read_journal(journal)
    outcome = Outcome({}, {})
    todo, stamps = [], {}
    for job in jobs:
        try:
            stamps[job.key] = input_stamp(job.src, args)
        except OSError as e:
            outcome.failed[job.key] = f"{job.src}: cannot read ({e.strerror or e})"
            continue
        files = _is_current(entries.get(job.key), stamps[job.key], job.dst)
        if files is None:
            todo.append(job)
        else:
            outcome.outputs[job.key] = files
            outcome.reused += 1
    os.makedirs(os.path.dirname(os.path.abspath(journal)), exist_ok=True)
    tasks = [(kind, job, args) for job in todo]
    bar = tqdm(total=len(tasks), desc=f"{desc or kind} ({outcome.reused} done before)", unit="file", file=sys.stderr,
               disable=not progress or not tasks, dynamic_ncols=True)
    with open(journal, "a", encoding="utf-8") as log:
        # spawn, not fork: a forked child inherits locks held by the parent's threads (tqdm's monitor, FFmpeg's
        # or torch's pools) and can hang on them forever; seen here with fork
        pool = multiprocessing.get_context("spawn").Pool(nj) if nj > 1 and len(tasks) > 1 else None
        try:
            results = pool.imap_unordered(_work, tasks, chunksize=4) if pool else map(_work, tasks)
            for key, files, error in results:
                if error is not None:
                    outcome.failed[key] = error
                    bar.set_postfix(failed=len(outcome.failed))
                else:
                    outcome.outputs[key] = files
                    outcome.converted += 1
                    log.write(json.dumps({"key": key, "stamp": stamps[key], "size": _output_size(files)}) + "\n")
                    log.flush()
                bar.update()
        finally:
            if pool:
                pool.terminate()
                pool.join()
            bar.close()
    # the journal rewritten to the current entries only (atomically): it does not grow across reruns
    with atomic_write(journal) as f:
        for key in sorted(outcome.outputs):
            files = outcome.outputs[key]
            f.write(json.dumps({"key": key, "stamp": stamps[key], "size": _output_size(files)}) + "\n")
    return outcome
