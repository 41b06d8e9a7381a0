"""Copy a Kaldi data dir restricted to N utterances evenly spaced over its sorted list; every utterance-keyed
table present is filtered, spk2utt is rebuilt.

    python -m wespeaker_avkd.bin.subset_data_dir --src data/train --dst data/train_mean --num_utts 300
"""
from __future__ import annotations

import argparse
import sys

from wespeaker_avkd.data.kaldi_dir import subset_data_dir
from wespeaker_avkd.utils.errors import ArgumentParser, run_main


def run(argv: list[str]) -> int:
    """Parse and subset."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", required=True)
    parser.add_argument("--dst", required=True)
    parser.add_argument("--num_utts", type=int, required=True)
    args = parser.parse_args(argv)
    if args.num_utts < 1:
        parser.error(f"--num_utts must be at least 1, got {args.num_utts}")
    utts = subset_data_dir(args.src, args.dst, args.num_utts)
    print(f"{args.dst}: {len(utts)} utterances of {args.src}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("subset_data_dir", run, argv)


if __name__ == "__main__":
    sys.exit(main())
