#!/usr/bin/env python3
"""Benchmark: cost of the three KD losses (KL + COS + MMD) on top of a ResNet34 + AAM training step on CPU.

Times, in the same run and interleaved (so load drift hits both alike), an SGD step of ResNet34
(feat 40, m_channels 32, emb 512) + AAM over `num_class` speakers with and without the KD objective
(KL against a frozen (num_class, 512) teacher weight, COS, MMD), and separately the KD losses' own forward +
backward on fixed embeddings. Prints both step times (wall and CPU, min and median), their ratios, the isolated KD
overhead fraction and
the conv/matmul FLOPs of both steps (load-independent; the CPU here may be shared with other jobs).

    python tools/bench_losses.py                 # batch 64, 200 frames, 5994 classes, 3 timed steps each
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from wespeaker_avkd.losses.kd_objective import build_kd_objective
from wespeaker_avkd.registry import MODELS, PROJECTIONS


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--feat_dim", type=int, default=40)
    p.add_argument("--m_channels", type=int, default=32)
    p.add_argument("--embed_dim", type=int, default=512)
    p.add_argument("--num_class", type=int, default=5994)
    p.add_argument("--steps", type=int, default=3, help="timed steps per variant (after one warm-up each)")
    p.add_argument("--loss_reps", type=int, default=50, help="repetitions of the isolated KD-loss timing")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--budget", type=float, default=0.05, help="allowed relative overhead")
    return p.parse_args()


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call; CPU time is less hurt by other jobs on a shared box."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    """min and median of wall and CPU seconds."""
    walls, cpus = [w for w, _ in samples], [c for _, c in samples]
    return {"wall_min": min(walls), "wall_median": statistics.median(walls),
            "cpu_min": min(cpus), "cpu_median": statistics.median(cpus)}


def main() -> None:
    """Run the benchmark and print the numbers."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = MODELS.build("ResNet34", feat_dim=args.feat_dim, embed_dim=args.embed_dim, m_channels=args.m_channels)
    head = PROJECTIONS.build("arc_margin", embed_dim=args.embed_dim, num_class=args.num_class)
    teacher_weight = torch.randn(args.num_class, args.embed_dim)
    objective = build_kd_objective({"alpha": 1.0, "beta": 1.0, "gamma": 1.0}, teacher_weight,
                                   args.embed_dim, args.embed_dim)
    optimizer = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.01, momentum=0.9)
    feats = torch.randn(args.batch, args.frames, args.feat_dim)
    labels = torch.randint(0, args.num_class, (args.batch,))
    teacher_emb = torch.randn(args.batch, args.embed_dim)

    def step(with_kd: bool) -> None:
        """One SGD step on the (batch, frames, feat_dim) batch, AAM loss plus the KD terms if `with_kd`."""
        emb = model(feats)
        loss = F.cross_entropy(head(emb, labels), labels)
        if with_kd:
            loss, _ = objective(loss, emb, teacher_emb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def kd_only() -> None:
        """Forward + backward of the KD terms alone on (batch, embed_dim) embeddings."""
        emb = torch.randn(args.batch, args.embed_dim, requires_grad=True)
        total, _ = objective(torch.zeros(()), emb, teacher_emb)
        total.backward()

    print(f"ResNet34 feat {args.feat_dim} m_channels {args.m_channels} emb {args.embed_dim}, batch {args.batch} "
          f"x {args.frames} frames, {args.num_class} classes, {torch.get_num_threads()} threads, KD terms "
          f"{sorted(objective.terms)}")
    step(False), step(True)  # warm-up
    base: list[tuple[float, float]] = []
    kd: list[tuple[float, float]] = []
    for i in range(args.steps):
        order = (False, True) if i % 2 == 0 else (True, False)  # alternate so drift hits both alike
        for with_kd in order:
            (kd if with_kd else base).append(timed(lambda: step(with_kd)))
        print(f"  rep {i}: step without KD {base[-1][0]:.3f} s wall / {base[-1][1]:.3f} s cpu, "
              f"with KD {kd[-1][0]:.3f} s wall / {kd[-1][1]:.3f} s cpu", flush=True)
    kd_only()
    rows = {"step without KD": summary(base), "step with KD": summary(kd),
            "KD losses alone": summary([timed(kd_only) for _ in range(args.loss_reps)])}
    print(f"{'':24s}{'wall min':>10s}{'wall med':>10s}{'cpu min':>10s}{'cpu med':>10s}   (seconds)")
    for name, row in rows.items():
        print(f"{name:24s}" + "".join(f"{row[k]:10.4f}" for k in ("wall_min", "wall_median", "cpu_min", "cpu_median")))
    base_row, kd_row, loss_row = rows["step without KD"], rows["step with KD"], rows["KD losses alone"]
    print("ratio with/without KD  " + "".join(f"{kd_row[k] / base_row[k]:10.4f}"
                                              for k in ("wall_min", "wall_median", "cpu_min", "cpu_median")))
    flops = {}
    for with_kd in (False, True):  # matmul/conv FLOPs: a load-independent measure of the added work
        counter = FlopCounterMode(display=False)
        with counter:
            step(with_kd)
        flops[with_kd] = counter.get_total_flops()
    print(f"FLOPs per step (conv/matmul, fwd+bwd): without KD {flops[False] / 1e9:.2f} G, with KD "
          f"{flops[True] / 1e9:.2f} G, ratio {flops[True] / flops[False]:.4f}")
    overhead = loss_row["cpu_min"] / base_row["cpu_min"]
    print(f"KD losses alone / step without KD (cpu min): {100 * overhead:.2f} %; "
          f"{'within' if overhead <= args.budget else 'OVER'} the {100 * args.budget:.0f} % budget")


if __name__ == "__main__":
    main()
