"""Average the last N epoch checkpoints of an experiment (WeSpeaker's average_model step).

    python -m wespeaker_avkd.bin.average_model --src_path exp/audio_baseline/models \
        --dst_model exp/audio_baseline/models/avg_model.pt --num 2
"""
from __future__ import annotations

import argparse
import sys

from wespeaker_avkd.checkpoint import average_last
from wespeaker_avkd.utils.errors import ArgumentParser, run_main


def run(argv: list[str]) -> int:
    """Parse and average."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src_path", required=True, help="models/ dir holding model_N.pt")
    parser.add_argument("--dst_model", required=True, help="output file (written atomically)")
    parser.add_argument("--num", type=int, default=1, help="how many of the newest epochs to average")
    args = parser.parse_args(argv)
    epochs = average_last(args.src_path, args.num, args.dst_model)
    print(f"averaged epochs {epochs} into {args.dst_model}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("average_model", run, argv)


if __name__ == "__main__":
    sys.exit(main())
