"""Choose the KD loss weights on dev (run.sh stage 6) and write the weights file the students read.

    python -m wespeaker_avkd.bin.select_kd_weights --sweep_dir exp/tune --modalities visual audio \\
        --losses COS KL MMD --grid 0.1 1 10 100 --dev_trials O E H --out exp/tune/kd_weights.yaml \\
        --table exp/tune/dev_results.md [--baseline_dir exp/seed101] [--extend]

Reads only <sweep_dir>/<modality>_kd_<loss>_w<weight>/scores/dev/<list>.json (and the baselines' dev JSONs);
criterion: the mean dev EER over the lists, ties to the smaller weight. With --extend each loss's grid is the
one run.sh's stage 6 grew from --grid (analysis/tuning.py: a log step beyond the edge while the best is there).
"""
from __future__ import annotations

import argparse
import sys

from wespeaker_avkd.analysis.tuning import select_kd_weights
from wespeaker_avkd.utils.errors import ArgumentParser, run_main


def run(argv: list[str]) -> int:
    """Parse, select, print the choice."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep_dir", required=True, help="folder of the tuning runs (exp/tune)")
    parser.add_argument("--modalities", nargs="+", default=["visual", "audio"], help="student modalities")
    parser.add_argument("--losses", nargs="+", default=["COS", "KL", "MMD"], help="single KD losses swept")
    parser.add_argument("--grid", nargs="+", default=["0.1", "1", "10", "100"],
                        help="weights swept, as written in the run dirs' _w<weight> suffix")
    parser.add_argument("--dev_trials", nargs="+", default=["O", "E", "H"], help="dev trial list names")
    parser.add_argument("--out", required=True, help="weights yaml to write (conf/kd_weights.yaml schema)")
    parser.add_argument("--table", default=None, help="markdown table of every dev EER (+ .json beside it)")
    parser.add_argument("--baseline_dir", default=None,
                        help="exp/seed<N>: adds <dir>/<modality>_baseline's dev EERs to the table")
    parser.add_argument("--extend", action="store_true",
                        help="each loss's grid grown from --grid while its best weight was at an edge (stage 6)")
    args = parser.parse_args(argv)
    chosen = select_kd_weights(args.sweep_dir, args.modalities, args.losses, args.grid, args.dev_trials, args.out,
                               args.table, args.baseline_dir, extend=args.extend)
    for mod, per_loss in chosen.items():
        print(f"{mod}: " + ", ".join(f"{loss} {w}" for loss, w in per_loss.items()))
    print(f"weights: {args.out}" + (f", dev table: {args.table}" if args.table else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("select_kd_weights", run, argv)


if __name__ == "__main__":
    sys.exit(main())
