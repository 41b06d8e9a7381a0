#!/usr/bin/env python3
"""Data-pipeline benchmark: fbank extraction speed (x real time) and loader throughput (utterances/s) against
what one CPU ResNet34 training step consumes, all measured in this run on this machine.

Usage: python tools/bench_data.py [--corpus DIR] [--num_workers 2] [--batch_size 32] [--num_frms 200 400]
       [--augment_only]   (only: toy audio loader with every augmentation on/off against the toy model's step)
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


def time_loader(loader, max_batches: int, warmup_batches: int = 0) -> float:
    """Utterances per second over up to max_batches batches of one epoch (worker start-up included unless
    warmup_batches > 0: the clock then starts after that many batches)."""
    set_loader_epoch(loader, 0)
    n, t0 = 0, time.perf_counter()
    for i, batch in enumerate(loader):
        if i == warmup_batches and warmup_batches:
            n, t0 = 0, time.perf_counter()
        n += len(batch["keys"])
        if i + 1 >= max_batches:
            break
    return n / (time.perf_counter() - t0)


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


def bench_augmentation(train_dir: str, work_dir: str, num_workers: int, batch_size: int, batches: int,
                       steps: int) -> None:
    """Toy audio loader utt/s with every augmentation on (recipe conf/aug.yaml: filter, speed perturbation,
    reverb/noise at aug_prob 0.6; plus spec_aug) and off, against what one training step of the toy audio model
    (conf/toy/audio.yaml: ResNet34 at m_channels 8, its chunk lengths and amp) consumes, in the same run."""
    import yaml
    from bench_scoring import cpu_model

    from wespeaker_avkd.data.noise_sets import write_noise_set, write_rir_set

    conf = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "egs", "voxceleb", "v_kd", "conf")
    with open(os.path.join(conf, "toy", "audio.yaml")) as f:
        toy = yaml.safe_load(f)
    with open(os.path.join(conf, "aug.yaml")) as f:
        aug = yaml.safe_load(f)
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
        rates[name] = time_loader(build_train_loader("audio", train_dir, spk2id, ds, dl, seed=0), batches,
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
    ap.add_argument("--augment_only", action="store_true", help="only the augmentation loader against the toy step")
    args = ap.parse_args()
    torch.set_num_threads(2)
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
    if args.augment_only:
        bench_augmentation(train, tmp.name, args.num_workers, args.batch_size, args.batches, args.steps)
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

    spk2id = make_spk2id(read_table(os.path.join(data_copy, "utt2spk")).values())
    dl = {"batch_size": args.batch_size, "num_workers": args.num_workers}
    rates = {}
    for name, modality, ds in (("audio feats.scp", "audio", {"feat_source": "feats", "num_frms": args.num_frms}),
                               ("audio wav.scp (online fbank)", "audio",
                                {"feat_source": "wav", "num_frms": args.num_frms}),
                               ("visual faces.scp 48 px", "visual", {"image_size": 48})):
        loader = build_train_loader(modality, data_copy, spk2id, ds, dl, seed=0)
        rates[name] = time_loader(loader, args.batches)
        print(f"loader {name}, {args.num_workers} workers, batch {args.batch_size}: {rates[name]:.0f} utt/s")
    frames = (args.num_frms[0] + args.num_frms[1]) // 2
    step = time_resnet_step(args.batch_size, frames, args.steps)
    if step is not None:
        print(f"ResNet34 train step (2 threads, batch {args.batch_size} x {frames} frames): {step:.1f} utt/s consumed")
        for name in ("audio feats.scp", "audio wav.scp (online fbank)"):
            print(f"ratio loader {name} / ResNet34 consumption: {rates[name] / step:.1f}x (need >= 2x)")
    bench_augmentation(train, tmp.name, args.num_workers, args.batch_size, args.batches, args.steps)
    tmp.cleanup()


if __name__ == "__main__":
    main()
