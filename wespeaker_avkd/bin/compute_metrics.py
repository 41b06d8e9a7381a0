"""EER and minDCF of a score file: python -m wespeaker_avkd.bin.compute_metrics SCORE_FILE
[--p_target 0.01 --p_target 0.05] [--json OUT.json] [--det DET.png]."""
import argparse
import sys

from wespeaker_avkd.scoring.pipeline import evaluate_score_file
from wespeaker_avkd.utils.errors import ArgumentParser, run_main


def get_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = ArgumentParser(description="EER (ROC crossing, Kaldi, ROCCH) and minDCF of a labelled score file.")
    p.add_argument("score_file", help="lines 'enroll test score target|nontarget'")
    p.add_argument("--p_target", type=float, action="append", default=None,
                   help="minDCF prior (repeatable; default 0.01 and 0.05)")
    p.add_argument("--json", default=None, help="write the metrics as JSON here")
    p.add_argument("--det", default=None, help="draw the DET curve into this PNG")
    return p.parse_args(argv)


def run(argv: list[str]) -> int:
    """Parse options, compute and print the one-line summary."""
    args = get_args(argv)
    p_targets = args.p_target or [0.01, 0.05]
    print(f"{args.score_file}: {evaluate_score_file(args.score_file, p_targets, args.json, args.det).summary()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("compute_metrics", run, argv)


if __name__ == "__main__":
    sys.exit(main())
