"""Corpus layout: identities, twins, sessions and segments of the train/eval/dev parts; writes media and data dirs.

Layout written under OUT (absolute paths in the scp files):
  OUT/wav/<utt>.wav                 16 kHz 16-bit mono, utt = idNNNNN/<11-char video id>/NNNNN
  OUT/faces/<utt>/NN.png            k face frames per segment
  OUT/{train,eval,dev}/{wav.scp,utt2spk,spk2utt,faces.scp,utt2meta}
  OUT/{eval,dev}/trials/{O,E,H}     Kaldi form "enroll test target|nontarget"
  OUT/{eval,dev}/trials_voxceleb/{O,E,H}.txt   VoxCeleb form "1|0 enroll test"
  OUT/corpus_info.yaml              the knobs used and the counts

The three parts are identity-disjoint by construction (own id ranges) and seeded independently: every draw of
a part comes from (seed, stream, part index, ...), so resizing or adding one part changes no byte of another.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import soundfile as sf
import yaml
from PIL import Image
from tqdm import tqdm

from wespeaker_avkd.data.kaldi_dir import utt2spk_to_spk2utt, write_table
from wespeaker_avkd.data.toy_corpus import face as face_lib
from wespeaker_avkd.data.toy_corpus import mbrola as mbrola_lib
from wespeaker_avkd.data.toy_corpus import voice as voice_lib
from wespeaker_avkd.data.toy_corpus.config import CorpusConfigError, check_table_root
from wespeaker_avkd.data.toy_corpus.seeding import (
    STREAM_FACE_ID,
    STREAM_LAYOUT,
    STREAM_SESSION,
    STREAM_TRIALS,
    STREAM_UTT_AUDIO,
    STREAM_UTT_FACE,
    STREAM_VOICE_ID,
    rng_for,
)
from wespeaker_avkd.data.toy_corpus.trials import make_trials, nearest_pairs, write_trials
from wespeaker_avkd.utils.fileio import atomic_write

# (name, part index for seeding, first speaker number); the order of the tuple only fixes the order of the work.
PARTS = (("train", 0, 1), ("eval", 1, 10001), ("dev", 2, 20001))
# Parts with trial lists: (config section of their caps, extra seed path of their trial draws). eval keeps the
# bare (seed, STREAM_TRIALS) path it had before dev existed, so its lists stay what they were for equal knobs.
TRIAL_PARTS = {"eval": ("trials", ()), "dev": ("dev_trials", (2,))}
VIDEO_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


@dataclasses.dataclass
class Identity:
    """One person: id, voice, face vector and twin group names ("-" when not a twin)."""

    spk: str
    voice: voice_lib.VoiceIdentity
    face: np.ndarray
    audio_twin: str = "-"
    face_twin: str = "-"


@dataclasses.dataclass
class UttTask:
    """Everything one worker needs to synthesise one segment (picklable, self-contained)."""

    utt: str
    seed_path: tuple
    voice: voice_lib.VoiceIdentity
    audio_session: voice_lib.AudioSession
    face: np.ndarray
    face_session: face_lib.FaceSession
    wav_path: str
    frame_paths: list


def _twin_pairs(rng: np.random.Generator, n: int, fraction: float) -> list[tuple[int, int]]:
    """Disjoint random index pairs covering about `fraction` of n identities."""
    n_pairs = int(round(fraction * n / 2))
    perm = rng.permutation(n)
    return [(int(perm[2 * k]), int(perm[2 * k + 1])) for k in range(n_pairs)]


def make_identities(cfg: Mapping, part: str, part_idx: int, first: int, n: int) -> list[Identity]:
    """Draw n identities of one part, then cross audio twins and face twins (independent pairings)."""
    seed = cfg["seed"]
    ids = [Identity(spk=f"id{first + i:05d}",
                    voice=voice_lib.sample_voice(rng_for(seed, STREAM_VOICE_ID, part_idx, i), cfg["audio"]),
                    face=face_lib.sample_face_identity(rng_for(seed, STREAM_FACE_ID, part_idx, i), cfg["face"]))
            for i in range(n)]
    if cfg["audio"]["backend"] == "mbrola":
        _assign_mbrola_voices(cfg, part_idx, ids)
    tw = cfg["twins"]
    for k, (i, j) in enumerate(_twin_pairs(rng_for(seed, STREAM_LAYOUT, part_idx, 1), n, tw["audio_twin_fraction"])):
        base = ids[i].voice  # j takes i's voice: both are warped half the delta in opposite directions
        ids[i].voice = base.warped(+tw["audio_twin_delta"] / 2)
        ids[j].voice = base.warped(-tw["audio_twin_delta"] / 2)
        ids[i].audio_twin = ids[j].audio_twin = f"{part}_a{k:03d}"
    for k, (i, j) in enumerate(_twin_pairs(rng_for(seed, STREAM_LAYOUT, part_idx, 2), n, tw["face_twin_fraction"])):
        base = ids[i].face
        ids[i].face = face_lib.face_twin(rng_for(seed, STREAM_FACE_ID, part_idx, i, 1), base, tw["face_twin_delta"])
        ids[j].face = face_lib.face_twin(rng_for(seed, STREAM_FACE_ID, part_idx, j, 1), base, tw["face_twin_delta"])
        ids[i].face_twin = ids[j].face_twin = f"{part}_f{k:03d}"
    return ids


def _assign_mbrola_voices(cfg: Mapping, part_idx: int, ids: list[Identity]) -> None:
    """Give each identity a recorded base voice, a pitch in its sex's range and a relative vocal-tract warp."""
    names = sorted(cfg["_mbrola_kit"]["voices"])
    acfg = cfg["audio"]
    for i, ident in enumerate(ids):
        rng = rng_for(cfg["seed"], STREAM_VOICE_ID, part_idx, i, 7)
        name = names[int(rng.integers(len(names)))]
        sex = mbrola_lib.VOICES[name][1]
        lo, hi = acfg["f0_male"] if sex == "m" else acfg["f0_female"]
        ident.voice = dataclasses.replace(ident.voice, mbrola_voice=name, gender=sex,
                                          f0=float(np.exp(rng.uniform(np.log(lo), np.log(hi)))),
                                          vtl=float(np.exp(rng.normal(0.0, acfg["vtl_spread"]))))


def _video_id(rng: np.random.Generator) -> str:
    """An 11-character YouTube-like video id."""
    return "".join(VIDEO_ALPHABET[i] for i in rng.integers(0, len(VIDEO_ALPHABET), 11))


def make_tasks(cfg: Mapping, out: str, part_idx: int, ids: list[Identity]) -> list[UttTask]:
    """Sessions and segments of every identity of one part, as synthesis tasks sorted by utterance id."""
    seed, lay = cfg["seed"], cfg["layout"]
    k = int(cfg["face"]["frames_per_segment"])
    tasks = []
    for s, ident in enumerate(ids):
        rng = rng_for(seed, STREAM_LAYOUT, part_idx, 3, s)
        n_vid = int(rng.integers(lay["videos_per_speaker"][0], lay["videos_per_speaker"][1] + 1))
        videos = set()
        for v in range(n_vid):
            vid = _video_id(rng)
            while vid in videos:
                vid = _video_id(rng)
            videos.add(vid)
            a_sess = voice_lib.sample_audio_session(rng_for(seed, STREAM_SESSION, part_idx, s, v, 0), cfg["audio"])
            f_sess = face_lib.sample_face_session(rng_for(seed, STREAM_SESSION, part_idx, s, v, 1), cfg["face"])
            n_seg = int(rng.integers(lay["segments_per_video"][0], lay["segments_per_video"][1] + 1))
            for g in range(n_seg):
                utt = f"{ident.spk}/{vid}/{g + 1:05d}"
                tasks.append(UttTask(
                    utt=utt, seed_path=(part_idx, s, v, g), voice=ident.voice, audio_session=a_sess,
                    face=ident.face, face_session=f_sess, wav_path=os.path.join(out, "wav", utt + ".wav"),
                    frame_paths=[os.path.join(out, "faces", utt, f"{f + 1:02d}.png") for f in range(k)]))
    return sorted(tasks, key=lambda t: t.utt)


def synthesize_task(task: UttTask, cfg: Mapping) -> tuple[str, float]:
    """Synthesise and write one segment's wav and face frames; returns (utt, seconds of audio)."""
    seed = cfg["seed"]
    rng_a = rng_for(seed, STREAM_UTT_AUDIO, *task.seed_path)
    sr = int(cfg["audio"]["sample_rate"])
    duration = float(rng_a.uniform(*cfg["audio"]["duration"]))
    if task.voice.mbrola_voice:
        v, sess = task.voice, task.audio_session
        speech = mbrola_lib.synthesize_mbrola(cfg["_mbrola_kit"], v.mbrola_voice, rng_a, duration,
                                              v.f0 * np.exp(sess.f0_shift), v.vtl * np.exp(sess.vtl_shift),
                                              v.phone_ms, v.f0_depth, sr)
        wave = voice_lib.finish_session(rng_a, voice_lib.recolour(speech, v, sess, sr), sess, sr)
    else:
        wave = voice_lib.synthesize(rng_a, task.voice, task.audio_session, duration, sr)
    os.makedirs(os.path.dirname(task.wav_path), exist_ok=True)
    sf.write(task.wav_path, wave, sr, subtype="PCM_16", format="WAV")
    frames = face_lib.render_segment(rng_for(seed, STREAM_UTT_FACE, *task.seed_path), task.face, task.face_session,
                                     cfg["face"])
    os.makedirs(os.path.dirname(task.frame_paths[0]), exist_ok=True)
    for path, img in zip(task.frame_paths, frames):
        Image.fromarray(img).save(path, format="PNG")  # Pillow writes no timestamp chunk: same pixels, same bytes
    return task.utt, len(wave) / sr


_WORKER_CFG: dict = {}


def _init_worker(cfg: Mapping) -> None:
    """Pool initializer: keep the config in the worker, threads at one (two workers share two cores)."""
    _WORKER_CFG.clear()
    _WORKER_CFG.update(cfg)


def _run_task(task: UttTask) -> tuple[str, float]:
    return synthesize_task(task, _WORKER_CFG)


def _meta(ident: Identity, task: UttTask) -> str:
    """utt2meta value: key=value tokens for the analysis (gender, twin groups, per-modality corruption)."""
    fc = task.face_session.corruption + (f":{task.face_session.occluder}" if task.face_session.occluder else "")
    return (f"gender={ident.voice.gender} audio_twin={ident.audio_twin} face_twin={ident.face_twin} "
            f"audio_corrupt={task.audio_session.corruption} face_corrupt={fc}")


def _similar_pairs(ids: list[Identity], k: int) -> list[tuple[str, str]]:
    """Identity pairs that are hard to tell apart: twins (either modality) plus nearest neighbours per modality."""
    names = [i.spk for i in ids]
    voice_vec = np.array([[np.log(i.voice.f0), np.log(i.voice.vtl), i.voice.tilt_db, i.voice.gender == "f"]
                          for i in ids], dtype=np.float64)
    face_vec = np.stack([i.face for i in ids])
    pairs = set(nearest_pairs(names, voice_vec, k)) | set(nearest_pairs(names, face_vec, k))
    for attr in ("audio_twin", "face_twin"):
        groups: dict[str, list[str]] = {}
        for i in ids:
            if getattr(i, attr) != "-":
                groups.setdefault(getattr(i, attr), []).append(i.spk)
        pairs |= {tuple(sorted(g)) for g in groups.values() if len(g) == 2}
    return sorted(pairs)


def _resolve_backend(cfg: Mapping) -> dict:
    """cfg with the MBROLA kit attached (backend mbrola), or switched to numpy voices when it cannot be had."""
    cfg = dict(cfg)
    if cfg["audio"]["backend"] == "numpy":
        return cfg
    if cfg["audio"]["backend"] != "mbrola":
        raise CorpusConfigError(f"audio.backend must be numpy or mbrola, got {cfg['audio']['backend']!r}")
    mcfg = cfg["audio"]["mbrola"]
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    kit = mbrola_lib.find_mbrola(mcfg["dir"], list(mcfg["voices"]), bool(mcfg["fetch"]), log)
    if kit is None:
        cfg["audio"] = {**cfg["audio"], "backend": "numpy"}
    else:
        log(f"mbrola: using voices {sorted(kit['voices'])} from {os.path.abspath(mcfg['dir'])}")
        cfg["_mbrola_kit"] = kit
    return cfg


def part_sizes(cfg: Mapping) -> dict[str, int]:
    """{part: identities} from layout.<part>_speakers; dev may be 0 (no dev part), train and eval may not."""
    sizes = {}
    for part, _, first in PARTS:
        key = f"{part}_speakers"
        n = cfg["layout"].get(key)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise CorpusConfigError(f"toy corpus config: layout.{key} must be a non-negative integer, got {n!r}")
        if n > 9999:
            raise CorpusConfigError(f"toy corpus config: layout.{key} = {n} overflows the id range id{first:05d}.. "
                                    f"(at most 9999 identities per part)")
        if part in TRIAL_PARTS and 0 < n < 2 or part != "dev" and n == 0:
            raise CorpusConfigError(f"toy corpus config: layout.{key} = {n}: a part with trial lists needs at least 2 "
                                    "identities (train and eval are required; dev may be 0 to leave it out)")
        sizes[part] = n
    return sizes


def plan_parts(cfg: Mapping, out: str) -> dict[str, tuple[list[Identity], list[UttTask]]]:
    """Identities and synthesis tasks of every part (cheap: no audio or image is made); media paths under out."""
    sizes = part_sizes(cfg)
    parts = {}
    for part, part_idx, first in PARTS:
        if sizes[part] == 0:
            continue
        ids = make_identities(cfg, part, part_idx, first, sizes[part])
        parts[part] = (ids, make_tasks(cfg, out, part_idx, ids))
    return parts


def part_trials(cfg: Mapping, part: str, ids: list[Identity], utt2spk: Mapping[str, str]) -> dict[str, list]:
    """The O/E/H lists of one part with trial lists (eval or dev), drawn from that part's own seed path."""
    section, path = TRIAL_PARTS[part]
    tcfg = cfg[section]
    return make_trials(rng_for(cfg["seed"], STREAM_TRIALS, *path), utt2spk,
                       _similar_pairs(ids, int(tcfg["H_neighbours"])), tcfg)


def _synthesize_all(tasks: list[UttTask], cfg: Mapping, num_workers: int, progress: bool) -> dict[str, float]:
    """Write every utterance's media; {utt: audio seconds}."""
    durations: dict[str, float] = {}
    bar = tqdm(total=len(tasks), desc="toy corpus", unit="utt", disable=not progress, file=sys.stderr)
    if num_workers <= 1:
        for task in tasks:
            utt, durations[utt] = synthesize_task(task, cfg)
            bar.update()
    else:
        # fork keeps start-up cheap; every draw is seeded per utterance, so worker count cannot change a byte.
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(num_workers, initializer=_init_worker, initargs=(dict(cfg),)) as pool:
            for utt, sec in pool.imap_unordered(_run_task, tasks, chunksize=8):
                durations[utt] = sec
                bar.update()
    bar.close()
    return durations


def _write_part(d: str, part: str, ids: list[Identity], tasks: list[UttTask], cfg: Mapping,
                final: Callable[[str], str]) -> tuple[dict[str, int], dict[str, dict[str, int]] | None]:
    """Write the Kaldi tables (and trial lists) of one part into `d`; (its counts, its trial counts or None)."""
    by_spk = {i.spk: i for i in ids}
    utt2spk = {t.utt: t.utt.split("/")[0] for t in tasks}
    write_table(os.path.join(d, "wav.scp"), {t.utt: final(t.wav_path) for t in tasks})
    write_table(os.path.join(d, "faces.scp"), {t.utt: [final(p) for p in t.frame_paths] for t in tasks})
    write_table(os.path.join(d, "utt2spk"), utt2spk)
    write_table(os.path.join(d, "spk2utt"), utt2spk_to_spk2utt(utt2spk))
    write_table(os.path.join(d, "utt2meta"), {t.utt: _meta(by_spk[t.utt.split("/")[0]], t) for t in tasks})
    counts = {
        "speakers": len(ids), "videos": len({t.utt.rsplit("/", 1)[0] for t in tasks}), "utterances": len(tasks),
        "face_frames": sum(len(t.frame_paths) for t in tasks),
        "audio_twin_pairs": len({i.audio_twin for i in ids} - {"-"}),
        "face_twin_pairs": len({i.face_twin for i in ids} - {"-"}),
        "audio_corrupt_utts": sum(t.audio_session.corruption != "none" for t in tasks),
        "face_corrupt_utts": sum(t.face_session.corruption != "none" for t in tasks),
    }
    if part not in TRIAL_PARTS:
        return counts, None
    lists = part_trials(cfg, part, ids, utt2spk)
    write_trials(d, lists)
    trials = {}
    for name, rows in lists.items():
        n_t = sum(r[2] == "target" for r in rows)
        trials[name] = {"trials": len(rows), "target": n_t, "nontarget": len(rows) - n_t}
    return counts, trials


def generate_corpus(out: str, cfg: Mapping, num_workers: int | None = None, progress: bool = True,
                    table_root: str | None = None) -> dict:
    """Generate the whole corpus under `out` (see module docstring); returns the counts summary dict.

    Tables name media by their path under `table_root` (default `out`): a corpus made in a temp dir and then
    moved to table_root is complete there."""
    out = os.path.abspath(out)
    root = check_table_root(table_root or out)
    final = lambda p: os.path.join(root, os.path.relpath(p, out))  # noqa: E731
    t0 = time.time()
    nw = int(cfg.get("num_workers", 1) if num_workers is None else num_workers)
    cfg = _resolve_backend(cfg)
    parts = plan_parts(cfg, out)
    durations = _synthesize_all([t for _, tasks in parts.values() for t in tasks], cfg, nw, progress)
    seconds = sum(durations[u] for u in sorted(durations))  # fixed order: identical sum whatever the workers

    summary: dict[str, Any] = {"out": root, "seed": cfg["seed"], "parts": {}, "trials": {}}
    for part, (ids, tasks) in parts.items():
        counts, trials = _write_part(os.path.join(out, part), part, ids, tasks, cfg, final)
        summary["parts"][part] = counts
        if trials is not None:
            summary["trials"][part] = trials
    summary["audio_hours"] = round(seconds / 3600.0, 3)
    summary["seconds"] = round(time.time() - t0, 1)
    with atomic_write(os.path.join(out, "corpus_info.yaml")) as f:
        # no timings in the file: same seed, same bytes
        yaml.safe_dump({"config": {k: v for k, v in cfg.items() if not k.startswith("_")},
                        "counts": {k: v for k, v in summary.items() if k not in ("seconds", "out")}},
                       f, sort_keys=True)
    return summary


def format_summary(summary: Mapping) -> str:
    """Human-readable layout and counts of a generated corpus."""
    out = summary["out"]
    lines = [f"toy audio-visual corpus in {out} (seed {summary['seed']}, {summary['audio_hours']} h audio, "
             f"{summary['seconds']} s)",
             f"  media: {out}/wav/<utt>.wav, {out}/faces/<utt>/NN.png ; utt = idNNNNN/<video>/NNNNN"]
    for part, c in summary["parts"].items():
        lines.append(f"  {out}/{part}: wav.scp utt2spk spk2utt faces.scp utt2meta | {c['speakers']} speakers, "
                     f"{c['videos']} videos, {c['utterances']} utts, {c['face_frames']} frames; twins "
                     f"audio {c['audio_twin_pairs']} / face {c['face_twin_pairs']} pairs; corrupted utts audio "
                     f"{c['audio_corrupt_utts']} / face {c['face_corrupt_utts']}")
    for part, lists in summary["trials"].items():
        for name, c in lists.items():
            lines.append(f"  {out}/{part}/trials/{name} (+ trials_voxceleb/{name}.txt): {c['trials']} trials "
                         f"({c['target']} target, {c['nontarget']} nontarget)")
    return "\n".join(lines)
