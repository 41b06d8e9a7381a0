#!/usr/bin/env python3
"""Calibrate the identity bootstrap on synthetic trial lists with a known population EER
(wespeaker_avkd.analysis.calibration): for lists of each size, the coverage of the 95 % percentile interval and
the bootstrap sd over the true sampling sd of every weighting scheme, and the scheme the report should use.

Usage: python tools/calibrate_bootstrap.py [--num_ids 100 300] [--num_lists 200] [--num_draws 500] [--seed 1]
       [--json calibration.json]
"""
from __future__ import annotations

import argparse
import json
import sys

from wespeaker_avkd.analysis import calibration
from wespeaker_avkd.utils.errors import ArgumentParser, run_main
from wespeaker_avkd.utils.fileio import atomic_write


def run(argv: list[str]) -> int:
    """Parse, simulate, print the coverage table, write the json."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_ids", type=int, nargs="+", default=[100, 300], help="identities per list")
    parser.add_argument("--num_lists", type=int, default=200, help="synthetic lists per size")
    parser.add_argument("--num_draws", type=int, default=500, help="bootstrap draws per list")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulation")
    parser.add_argument("--json", default="", help="write the results here")
    args = parser.parse_args(argv)
    if min(args.num_ids) < 2 or args.num_lists < 2 or args.num_draws < 2:
        parser.error("--num_ids, --num_lists and --num_draws must be at least 2")
    pop = calibration.Population()
    results = []
    print("| identities | true EER % | sd over lists (points) | scheme | coverage | bootstrap sd / true sd |")
    print("|---|---|---|---|---|---|")
    for k, num_ids in enumerate(args.num_ids):
        r = calibration.coverage(pop, num_ids, args.num_lists, args.num_draws, seed=args.seed + k)
        r["calibrated"] = calibration.calibrated_scheme(r)
        results.append(r)
        for scheme, v in r["schemes"].items():
            mark = " (calibrated)" if scheme == r["calibrated"] else ""
            print(f"| {num_ids} | {100 * r['true_eer']:.2f} | {100 * r['sd_over_lists']:.2f} | {scheme}{mark} | "
                  f"{100 * v['coverage']:.1f} % | {v['width_ratio']:.2f} |", flush=True)
    if args.json:
        with atomic_write(args.json) as f:
            json.dump({"command": " ".join(["python tools/calibrate_bootstrap.py", *argv]), "results": results}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(run_main("calibrate_bootstrap", run, sys.argv[1:]))
