#!/usr/bin/env python3
"""Data-pipeline benchmark: fbank extraction speed (x real time), shard packing, and loader throughput
(utterances/s; audio and visual, from raw files and from tar shards) against what one CPU ResNet34 training step
consumes, all measured in this run on this machine (its CPU model is printed).

Usage: python tools/bench_data.py [--corpus DIR] [--num_workers 2] [--batch_size 32] [--num_frms 200 400]
Without --corpus a small toy corpus (60 training identities) is generated into a temporary folder.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from wespeaker_avkd.data.fbank import compute_fbank, load_wav
from wespeaker_avkd.data.features import extract_fbank_dir
from wespeaker_avkd.data.kaldi_dir import make_spk2id, read_table
from wespeaker_avkd.data.loaders import build_train_loader, set_loader_epoch
from wespeaker_avkd.data.shard_writer import make_shards
from wespeaker_avkd.data.toy_corpus import generate_corpus, load_config


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


def time_loader(loader, max_batches: int, clock=time.perf_counter, epoch: int = 0) -> float:
    """Utterances per second (of `clock`: wall time, or this process's CPU time) over up to max_batches batches
    of one epoch (worker start-up included)."""
    set_loader_epoch(loader, epoch)
    n, t0 = 0, clock()
    for i, batch in enumerate(loader):
        n += len(batch["keys"])
        if i + 1 >= max_batches:
            break
    return n / (clock() - t0)


def time_resnet_step(batch_size: int, frames: int, steps: int) -> float | None:
    """Utterances per second of a ResNet34 (40-dim fbank, 512-d) forward + backward + SGD step, or None."""
    try:
        from wespeaker_avkd.registry import MODELS
        model = MODELS.build("ResNet34", feat_dim=40, embed_dim=512)
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
        model(x).pow(2).mean().backward()
        opt.step()
    return batch_size * steps / (time.perf_counter() - t0)


def cpu_model() -> str:
    """The processor model from /proc/cpuinfo (or 'unknown')."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")
    except OSError:
        return "unknown"


# (name, modality, dataset_args) of each loader timed, from raw files and from shards
LOADERS = (("audio feats", "audio", {"feat_source": "feats"}),
           ("audio wav (online fbank)", "audio", {"feat_source": "wav"}),
           ("visual faces 48 px (the audio-visual data's faces)", "visual", {"image_size": 48}))


def main() -> None:
    """Run the measurements and print them with their ratios."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=None, help="toy corpus root (with train/); default: generate a small one")
    ap.add_argument("--num_workers", type=int, default=2)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--num_frms", type=int, nargs=2, default=[200, 400])
    ap.add_argument("--batches", type=int, default=20, help="batches timed per loader")
    ap.add_argument("--steps", type=int, default=3, help="ResNet34 steps timed")
    ap.add_argument("--utts_per_shard", type=int, default=200, help="utterances a shard (make_shards)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per loader (best kept)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    print(f"CPU: {cpu_model()} ({len(os.sched_getaffinity(0))} cores usable)")
    tmp = tempfile.TemporaryDirectory(prefix="bench_data_")
    root = args.corpus
    if root is None:
        root = os.path.join(tmp.name, "corpus")
        t0 = time.perf_counter()
        layout = {"train_speakers": 60, "eval_speakers": 4, "dev_speakers": 0}
        s = generate_corpus(root, load_config(None, {"layout": layout}),
                            progress=False)
        print(f"generated {s['parts']['train']['utterances']} training utterances in {time.perf_counter() - t0:.1f} s")
    train = os.path.join(root, "train")

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
        extra = {"num_frms": args.num_frms} if modality == "audio" else {}
        for data_type, shard_key in (("raw", {}), ("shard", {"data_type": "shard"})) * args.rounds:
            # raw and shards alternate, best of --rounds: the machine's other load only ever slows a round down
            loader = build_train_loader(modality, data_copy, spk2id, {**ds, **extra, **shard_key}, dl, seed=0)
            rates[name, data_type] = max(rates.get((name, data_type), 0.0), time_loader(loader, args.batches))
            # the CPU cost of one utterance in one single-threaded process (as a worker runs): what the machine's
            # other load does not change
            loader = build_train_loader(modality, data_copy, spk2id, {**ds, **extra, **shard_key},
                                        {**dl, "num_workers": 0}, seed=0)
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
            if modality == "audio":
                print(f"ratio loader {name} / ResNet34 consumption: raw {rates[name, 'raw'] / step:.1f}x, shards "
                      f"{rates[name, 'shard'] / step:.1f}x (need >= 2x)")
    tmp.cleanup()


if __name__ == "__main__":
    main()
