#!/usr/bin/env python3
"""Data-pipeline benchmark: fbank extraction speed (x real time), shard packing, loader throughput
(utterances/s; audio and visual, from raw files and from tar shards) against what one CPU ResNet34 training step
consumes, and VoxCeleb decoding rates per core (m4a utt/s, mp4 frames/s, with the wav read they compare with),
all measured in this run on this machine (its CPU model is printed).

Usage: python tools/bench_data.py [--corpus DIR] [--num_workers 2] [--batch_size 32] [--num_frms 200 400]
       python tools/bench_data.py --decode_only        # only the VoxCeleb decoding rates
       [--augment_only]   (only: toy audio loader with every augmentation on/off against the toy model's step)
Without --corpus a small toy corpus (60 training identities) is generated into a temporary folder.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import soundfile as sf
import torch
from bench_scoring import cpu_model
from PIL import Image

from wespeaker_avkd.data.fbank import compute_fbank, load_wav
from wespeaker_avkd.data.features import extract_fbank_dir
from wespeaker_avkd.data.kaldi_dir import make_spk2id, read_multi_table, read_table
from wespeaker_avkd.data.loaders import set_loader_epoch
from wespeaker_avkd.data.shard_writer import make_shards
from wespeaker_avkd.data.toy_corpus import generate_corpus, load_config
from wespeaker_avkd.data.voxceleb.convert import Job, convert_faces
from wespeaker_avkd.data.voxceleb.decode import decode_audio
from wespeaker_avkd.data.voxceleb.fixture import encode_m4a, encode_mp4
from wespeaker_avkd.kinds import AUDIO, kind_of

# VoxCeleb's published sizes: utterances of VoxCeleb2 dev and VoxCeleb1, and the mean segment length (2,442 h
# over VoxCeleb2's 1,128,246 segments); the benchmark's clips have that length, VoxCeleb2's 224 px at 25 fps.
VOX2_DEV_UTTS, VOX1_UTTS, MEAN_SEGMENT_S = 1_092_009, 153_516, 7.8
VOX2_VIDEO_PX, VOX2_VIDEO_FPS = 224, 25


def time_fbank(wav_scp: str, limit: int) -> tuple[float, float]:
    """(audio seconds, wall seconds) of single-process fbank over the first `limit` utterances (read included)."""
    paths = list(read_table(wav_scp).values())[:limit]
    audio = 0.0
    t0 = time.perf_counter()
    for p in paths:
        wave, sr = load_wav(p)
        compute_fbank(wave, sample_rate=sr)
        audio += len(wave) / sr
    return audio, time.perf_counter() - t0


def time_loader(loader, max_batches: int, clock=time.perf_counter, epoch: int = 0, warmup_batches: int = 0) -> float:
    """Utterances per second (of `clock`: wall time, or this process's CPU time) over up to max_batches batches
    of one epoch (worker start-up included unless warmup_batches > 0: the clock then starts after that many)."""
    set_loader_epoch(loader, epoch)
    n, t0 = 0, clock()
    for i, batch in enumerate(loader):
        if i == warmup_batches and warmup_batches:
            n, t0 = 0, clock()
        n += len(batch["keys"])
        if i + 1 >= max_batches:
            break
    return n / (clock() - t0)


def time_resnet_step(batch_size: int, frames: int, steps: int, m_channels: int = 32,
                     amp: bool = False) -> float | None:
    """Utterances per second of a ResNet34 (40-dim fbank, 512-d, m_channels wide; amp: bfloat16 autocast on CPU as
    the trainer runs it) forward + backward + SGD step, or None."""
    try:
        from wespeaker_avkd.registry import MODELS
        model = MODELS.build("ResNet34", feat_dim=40, embed_dim=512, m_channels=m_channels)
    except Exception as e:  # the models package may not exist yet
        print(f"ResNet34 not available ({e}); loader throughput only")
        return None
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(batch_size, frames, 40)
    model.train()
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()  # the first step warms up allocators and is not counted
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        out.float().pow(2).mean().backward()
        opt.step()
    return batch_size * steps / (time.perf_counter() - t0)


def make_decode_clips(corpus: str, out: str, n: int) -> list[tuple[str, str, str]]:
    """n clips of MEAN_SEGMENT_S s from the corpus's training utterances (audio tiled, faces upscaled to 224 px):
    [(wav, m4a, mp4)] written under out."""
    wav, faces = read_table(os.path.join(corpus, "train", "wav.scp")), read_multi_table(
        os.path.join(corpus, "train", "faces.scp"))
    clips = []
    for i, utt in enumerate(sorted(wav)[:n]):
        samples, sr = sf.read(wav[utt], dtype="int16")
        samples = np.resize(samples, int(MEAN_SEGMENT_S * sr))
        paths = tuple(os.path.join(out, f"{i:03d}.{ext}") for ext in ("wav", "m4a", "mp4"))
        sf.write(paths[0], samples, sr, subtype="PCM_16")
        encode_m4a(samples, sr, paths[1])
        images = [np.asarray(Image.open(p).convert("RGB").resize((VOX2_VIDEO_PX, VOX2_VIDEO_PX))) for p in faces[utt]]
        encode_mp4(images, MEAN_SEGMENT_S, paths[2], VOX2_VIDEO_FPS)
        clips.append(paths)
    return clips


def bench_decoding(corpus: str, out: str, n: int, fps: float, max_frames: int, size: int) -> None:
    """Print per-core decoding rates (m4a -> 16 kHz wav, mp4 face track -> jpg frames) against a wav read, and
    the time and disk to prepare VoxCeleb1+2 that they imply."""
    os.makedirs(out, exist_ok=True)
    clips = make_decode_clips(corpus, out, n)

    def timed(fn) -> tuple[float, float]:
        """(CPU seconds of this process, its threads included, wall seconds) per clip of fn(i, clip)."""
        c0, w0 = time.process_time(), time.perf_counter()
        for i, clip in enumerate(clips):
            fn(i, clip)
        return (time.process_time() - c0) / len(clips), (time.perf_counter() - w0) / len(clips)

    t_wav, _ = timed(lambda i, c: sf.read(c[0], dtype="int16"))
    t_m4a, w_m4a = timed(lambda i, c: decode_audio(c[1]))
    kept = []
    t_mp4, w_mp4 = timed(lambda i, c: kept.append(len(convert_faces(
        Job(str(i), c[2], os.path.join(out, f"frames{i:03d}")), {"fps": fps, "max_frames": max_frames, "size": size}))))
    frames = sum(kept)
    jpg_bytes = sum(os.path.getsize(os.path.join(out, f"frames{i:03d}", f))
                    for i in range(len(clips)) for f in os.listdir(os.path.join(out, f"frames{i:03d}")))
    print(f"VoxCeleb decoding per core of {cpu_model()} (rates from CPU time, which contention does not inflate; "
          f"load average {os.getloadavg()[0]:.1f}), {len(clips)} clips of {MEAN_SEGMENT_S} s "
          f"({VOX2_VIDEO_PX} px {VOX2_VIDEO_FPS} fps video):")
    print(f"  m4a -> 16 kHz int16: {1 / t_m4a:.1f} utt/s ({t_m4a * 1000:.1f} ms/utt); wav read: "
          f"{t_wav * 1000:.2f} ms/utt = {t_m4a / t_wav:.0f}x faster than decoding (wall {w_m4a * 1000:.1f} ms/utt)")
    print(f"  mp4 face track -> {frames / len(clips):.0f} jpg frames of {size} px: {1 / t_mp4:.2f} tracks/s, "
          f"{VOX2_VIDEO_FPS * MEAN_SEGMENT_S / t_mp4:.0f} decoded video frames/s, {frames / len(clips) / t_mp4:.1f} "
          f"stored frames/s ({jpg_bytes / frames / 1024:.1f} KiB per jpg; wall {w_mp4 * 1000:.0f} ms/track)")
    per_core_h = VOX2_DEV_UTTS * (t_m4a + t_mp4) / 3600
    wav_gb = VOX2_DEV_UTTS * MEAN_SEGMENT_S * 16000 * 2 / 1e9
    jpg_gb = VOX2_DEV_UTTS * jpg_bytes / len(clips) / 1e9
    print(f"  VoxCeleb2 dev ({VOX2_DEV_UTTS:,} utts): {per_core_h:.0f} core-hours "
          f"(= {per_core_h / 16:.1f} h on 16 cores, {per_core_h / 64:.1f} h on 64), writes {wav_gb:.0f} GB of wav + "
          f"{jpg_gb:.0f} GB of jpg; VoxCeleb1 ({VOX1_UTTS:,} utts) is wav + jpg as distributed: no decoding")


# (name, modality, dataset_args) of each loader timed, from raw files and from shards
LOADERS = (("audio feats", "audio", {"feat_source": "feats"}),
           ("audio wav (online fbank)", "audio", {"feat_source": "wav"}),
           ("visual faces 48 px (the audio-visual data's faces)", "visual", {"image_size": 48}))
def bench_augmentation(train_dir: str, work_dir: str, num_workers: int, batch_size: int, batches: int,
                       steps: int) -> None:
    """Toy audio loader utt/s with every augmentation on (recipe conf/aug.yaml: filter, speed perturbation,
    reverb/noise at aug_prob 0.6; plus spec_aug) and off, against what one training step of the toy audio model
    (conf/toy/audio.yaml: ResNet34 at m_channels 8, its chunk lengths and amp) consumes, in the same run."""
    from wespeaker_avkd.data.noise_sets import write_noise_set, write_rir_set
    from wespeaker_avkd.utils.yaml_io import load_yaml

    conf = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "egs", "voxceleb", "v_kd", "conf")
    toy = load_yaml(os.path.join(conf, "toy", "audio.yaml"))
    aug = load_yaml(os.path.join(conf, "aug.yaml"))
    t0 = time.perf_counter()
    sets = {"noise_data": write_noise_set(os.path.join(work_dir, "musan"), os.path.join(train_dir, "wav.scp")),
            "reverb_data": write_rir_set(os.path.join(work_dir, "rirs"))}
    print(f"generated the noise and RIR sets in {time.perf_counter() - t0:.1f} s")
    plain = {**toy["dataset_args"], "feat_source": "wav"}
    every = {**plain, **aug["dataset_args"], "spec_aug": True, **sets}
    spk2id = make_spk2id(read_table(os.path.join(train_dir, "utt2spk")).values())
    dl = {"batch_size": batch_size, "num_workers": num_workers}
    rates = {}
    for name, ds in (("toy audio, wav, no augmentation", plain), ("toy audio, wav, every augmentation", every)):
        rates[name] = time_loader(AUDIO.train_loader(train_dir, spk2id, *AUDIO.sections(ds, dl), seed=0), batches,
                                  warmup_batches=2)
        print(f"loader {name}, {num_workers} workers, batch {batch_size}, after start-up: {rates[name]:.0f} utt/s")
    frames = sum(toy["dataset_args"]["num_frms"]) // 2
    step = time_resnet_step(batch_size, frames, steps, m_channels=toy["model_args"]["m_channels"], amp=toy["amp"])
    if step is not None:
        print(f"toy ResNet34 (m_channels {toy['model_args']['m_channels']}, amp {toy['amp']}) train step, "
              f"{torch.get_num_threads()} threads, batch {batch_size} x {frames} frames: {step:.1f} utt/s consumed")
        for name, rate in rates.items():
            print(f"ratio loader {name} / toy step consumption: {rate / step:.1f}x (target >= 10x)")
    print(f"CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} cores usable")


def main() -> None:
    """Run the measurements and print them with their ratios."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=None, help="toy corpus root (with train/); default: generate a small one")
    ap.add_argument("--num_workers", type=int, default=2)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--num_frms", type=int, nargs=2, default=[200, 400])
    ap.add_argument("--batches", type=int, default=20, help="batches timed per loader")
    ap.add_argument("--steps", type=int, default=3, help="ResNet34 steps timed")
    ap.add_argument("--decode_clips", type=int, default=20, help="clips timed for the VoxCeleb decoding rates")
    ap.add_argument("--decode_only", action="store_true", help="only the VoxCeleb decoding rates")
    ap.add_argument("--face_fps", type=float, default=1.0, help="face frames kept per second of track")
    ap.add_argument("--face_max_frames", type=int, default=8, help="face frames kept per segment at most")
    ap.add_argument("--face_size", type=int, default=112, help="stored face frame size (px)")
    ap.add_argument("--utts_per_shard", type=int, default=200, help="utterances a shard (make_shards)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per loader (best kept)")
    ap.add_argument("--augment_only", action="store_true", help="only the augmentation loader against the toy step")
    args = ap.parse_args()
    torch.set_num_threads(2)
    print(f"CPU: {cpu_model()} ({len(os.sched_getaffinity(0))} cores usable)")
    tmp = tempfile.TemporaryDirectory(prefix="bench_data_")
    root = args.corpus
    if root is None:
        root = os.path.join(tmp.name, "corpus")
        t0 = time.perf_counter()
        layout = {"train_speakers": 8 if args.decode_only else 60, "eval_speakers": 4, "dev_speakers": 0}
        s = generate_corpus(root, load_config(None, {"layout": layout}),
                            progress=False)
        print(f"generated {s['parts']['train']['utterances']} training utterances in {time.perf_counter() - t0:.1f} s")
    train = os.path.join(root, "train")
    if args.augment_only:
        bench_augmentation(train, tmp.name, args.num_workers, args.batch_size, args.batches, args.steps)
        tmp.cleanup()
        return
    bench_decoding(root, os.path.join(tmp.name, "decode"), args.decode_clips, args.face_fps, args.face_max_frames,
                   args.face_size)
    if args.decode_only:
        tmp.cleanup()
        return

    audio, wall = time_fbank(os.path.join(train, "wav.scp"), 200)
    print(f"fbank, 1 process (read + fbank): {audio:.0f} s of audio in {wall:.2f} s = {audio / wall:.0f}x real time")
    feat_dir = os.path.join(tmp.name, "fbank")
    data_copy = os.path.join(tmp.name, "train_copy")
    os.makedirs(data_copy)
    for name in ("wav.scp", "utt2spk", "spk2utt", "faces.scp"):
        with open(os.path.join(train, name)) as src, open(os.path.join(data_copy, name), "w") as dst:
            dst.write(src.read())
    total_audio = sum(len(load_wav(p)[0]) / 16000 for p in read_table(os.path.join(data_copy, "wav.scp")).values())
    t0 = time.perf_counter()
    extract_fbank_dir(data_copy, feat_dir, nj=args.num_workers, progress=False)
    wall = time.perf_counter() - t0
    print(f"compute_fbank --nj {args.num_workers} (ark/scp written): {total_audio:.0f} s of audio in {wall:.2f} s = "
          f"{total_audio / wall:.0f}x real time")

    t0 = time.perf_counter()
    paths = make_shards(data_copy, os.path.join(tmp.name, "shards"), utts_per_shard=args.utts_per_shard,
                        nj=args.num_workers, progress=False)
    wall = time.perf_counter() - t0
    size = sum(os.path.getsize(p) for p in paths) / 2 ** 20
    print(f"make_shards --nj {args.num_workers}: {len(paths)} shards ({size:.0f} MiB, audio + fbank + faces) in "
          f"{wall:.2f} s")

    spk2id = make_spk2id(read_table(os.path.join(data_copy, "utt2spk")).values())
    dl = {"batch_size": args.batch_size, "num_workers": args.num_workers}
    rates: dict[tuple[str, str], float] = {}
    cpu: dict[tuple[str, str], float] = {}
    for name, modality, ds in LOADERS:
        kind = kind_of(modality)
        extra = {"num_frms": args.num_frms} if kind.takes_fbank else {}
        for data_type, shard_key in (("raw", {}), ("shard", {"data_type": "shard"})) * args.rounds:
            # raw and shards alternate, best of --rounds: the machine's other load only ever slows a round down
            loader = kind.train_loader(data_copy, spk2id, *kind.sections({**ds, **extra, **shard_key}, dl), seed=0)
            rates[name, data_type] = max(rates.get((name, data_type), 0.0), time_loader(loader, args.batches))
            # the CPU cost of one utterance in one single-threaded process (as a worker runs): what the machine's
            # other load does not change
            loader = kind.train_loader(data_copy, spk2id, *kind.sections({**ds, **extra, **shard_key},
                                                                        {**dl, "num_workers": 0}), seed=0)
            torch.set_num_threads(1)
            cpu[name, data_type] = max(cpu.get((name, data_type), 0.0),
                                       time_loader(loader, args.batches, time.process_time, epoch=1))
            torch.set_num_threads(2)
        print(f"loader {name}, {args.num_workers} workers, batch {args.batch_size}: raw files "
              f"{rates[name, 'raw']:.0f} utt/s, shards {rates[name, 'shard']:.0f} utt/s "
              f"(shards / raw {rates[name, 'shard'] / rates[name, 'raw']:.2f}x); per CPU second in one process: "
              f"raw {cpu[name, 'raw']:.0f}, shards {cpu[name, 'shard']:.0f} utt "
              f"({cpu[name, 'shard'] / cpu[name, 'raw']:.2f}x)")
    frames = (args.num_frms[0] + args.num_frms[1]) // 2
    step = time_resnet_step(args.batch_size, frames, args.steps)
    if step is not None:
        print(f"ResNet34 train step (2 threads, batch {args.batch_size} x {frames} frames): {step:.1f} utt/s consumed")
        for name, modality, _ in LOADERS:
            if kind_of(modality).takes_fbank:
                print(f"ratio loader {name} / ResNet34 consumption: raw {rates[name, 'raw'] / step:.1f}x, shards "
                      f"{rates[name, 'shard'] / step:.1f}x (need >= 2x)")
    bench_augmentation(train, tmp.name, args.num_workers, args.batch_size, args.batches, args.steps)
    tmp.cleanup()


if __name__ == "__main__":
    main()
