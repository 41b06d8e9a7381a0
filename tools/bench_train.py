#!/usr/bin/env python3
"""Time one training step of each baseline and of its KD students, measured side by side in one run.

    python tools/bench_train.py [--conf_dir egs/voxceleb/v_kd/conf/toy] [--steps 10] [--threads 2]

Each step is the trainer's own `training_step` (forward, AAM, KD objective, backward, optimizer step) on a
fixed synthetic batch shaped like the config's (audio: batch x max num_frms x feat_dim fbank; visual:
batch x 3 x image_size^2 faces) with random teacher embeddings and a random teacher W (num_class x 512).
Systems are timed round-robin (baseline, COS, KL, ...) so that load changes on the machine hit all of them
alike; the median over rounds is reported with the ratio to the baseline of the same modality.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from wespeaker_avkd.config.model_config import parse_model_config  # noqa: E402
from wespeaker_avkd.config.train_config import load_config, resolve_kd_preset  # noqa: E402
from wespeaker_avkd.kinds import kind_of  # noqa: E402
from wespeaker_avkd.losses.kd_objective import build_kd_objective  # noqa: E402
from wespeaker_avkd.systems.builders import build_net, model_embed_dim  # noqa: E402
from wespeaker_avkd.train.distributed import DistInfo  # noqa: E402
from wespeaker_avkd.train.optim import build_optimizer  # noqa: E402
from wespeaker_avkd.train.step import training_step  # noqa: E402

COMBOS = ("COS", "KL", "MMD", "COS+KL", "COS+MMD", "KL+MMD")


def synthetic_batch(cfg: dict[str, Any], batch_size: int, num_class: int, teacher_dim: int) -> dict[str, Any]:
    """A loader-shaped batch for the config's modality."""
    gen = torch.Generator().manual_seed(0)
    ds = cfg.get("dataset_args") or {}
    if kind_of(cfg["modality"]).takes_fbank:
        frames = int(max(ds.get("num_frms", [200, 200])))
        feat_dim = int((cfg.get("model_args") or {}).get("feat_dim", 40))
        inputs = torch.randn(batch_size, frames, feat_dim, generator=gen)
    else:
        size = int(ds.get("image_size", 112))
        inputs = torch.randn(batch_size, 3, size, size, generator=gen)
    return {"inputs": inputs, "labels": torch.randint(num_class, (batch_size,), generator=gen),
            "teacher_emb": torch.randn(batch_size, teacher_dim, generator=gen)}


def build_system(cfg: dict[str, Any], kd_cfg: dict[str, Any] | None, num_class: int, weight: torch.Tensor):
    """(net, kd objective or None, optimizer, kd params) seeded identically for every system."""
    torch.manual_seed(0)
    typed = parse_model_config(cfg)
    net = build_net(typed, num_class)
    dim = model_embed_dim(typed.model.args, net.encoder)
    kd = None
    if kd_cfg is not None:
        loss_cfg = {k: v for k, v in kd_cfg.items() if k not in ("teacher_dir", "combo", "weights_file")}
        kd = build_kd_objective(loss_cfg, weight, dim, weight.shape[1])
    kd_params = [p for p in (kd.parameters() if kd is not None else []) if p.requires_grad]
    opt = build_optimizer(cfg.get("optimizer", "SGD"), list(net.parameters()) + kd_params,
                          cfg.get("optimizer_args") or {}, 0.01)
    return net.train(), kd, opt, kd_params


def main() -> int:
    """Parse, time, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf_dir", default=os.path.join(os.path.dirname(HERE), "egs/voxceleb/v_kd/conf/toy"))
    parser.add_argument("--kd_weights", default=None, help="default: <conf_dir>/../kd_weights.yaml")
    parser.add_argument("--modalities", nargs="+", default=["audio", "visual"])
    parser.add_argument("--steps", type=int, default=8, help="timed rounds (each times every system once)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--num_class", type=int, default=220)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights_file = args.kd_weights or os.path.join(args.conf_dir, "..", "kd_weights.yaml")
    info = DistInfo(0, 1, 0, torch.device("cpu"))
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    print(f"torch {torch.__version__}, {args.threads} threads, conf {args.conf_dir}, {args.steps} rounds")
    for modality in args.modalities:
        cfg = load_config(os.path.join(args.conf_dir, f"{modality}.yaml"))
        own_kd = os.path.join(args.conf_dir, "kd.yaml")  # as run.sh: conf/kd.yaml, then the set's own over it
        kd_paths = [os.path.join(args.conf_dir, "..", "kd.yaml")] + ([own_kd] if os.path.isfile(own_kd) else [])
        kd_block = load_config(kd_paths)["kd"]
        weight = torch.nn.functional.normalize(torch.randn(args.num_class, 512), dim=1)
        batch_size = int(cfg["dataloader_args"]["batch_size"])
        batch = synthetic_batch(cfg, batch_size, args.num_class, 512)
        systems = {"baseline": build_system(cfg, None, args.num_class, weight)}
        for combo in COMBOS:
            kd_cfg = resolve_kd_preset(dict(kd_block, combo=combo, weights_file=weights_file), modality)
            systems[combo] = build_system(cfg, kd_cfg, args.num_class, weight)
        times: dict[str, list[float]] = {name: [] for name in systems}
        for round_ in range(args.warmup + args.steps):
            for name, (net, kd, opt, kd_params) in systems.items():
                start = time.perf_counter()
                training_step(net, kd, opt, scaler, batch, info, kd_params)
                if round_ >= args.warmup:
                    times[name].append(time.perf_counter() - start)
        base = statistics.median(times["baseline"])
        print(f"\n{modality}: model {cfg['model']}, batch {tuple(batch['inputs'].shape)}")
        print(f"{'system':<10} {'ms/step (median)':>17} {'min':>8} {'ratio':>7}")
        for name, values in times.items():
            med = statistics.median(values)
            print(f"{name:<10} {1000 * med:>17.1f} {1000 * min(values):>8.1f} {med / base:>7.3f}")
        worst = max(statistics.median(v) for k, v in times.items() if k != "baseline") / base
        print(f"largest KD overhead: {100 * (worst - 1):+.1f} % per step (spread of baseline steps: "
              f"{100 * (np.std(times['baseline']) / base):.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
