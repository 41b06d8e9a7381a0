"""Validate Kaldi data dirs: python -m wespeaker_avkd.bin.validate_data DIR [DIR ...] [--deep]."""
import argparse
import sys

from wespeaker_avkd.data.validate import validate


def main() -> None:
    """Print every problem as file:line: message; exit 1 when there is any."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dirs", nargs="+", help="data dirs, or a corpus root whose subdirs are data dirs")
    parser.add_argument("--deep", action="store_true",
                        help="also decode every wav, image and feature matrix (finds corrupt data inside intact "
                             "headers, NaN/Inf audio and features; the default already finds missing, truncated, "
                             "too-short and non-audio/non-image files from their headers, and pipe lines in tables)")
    args = parser.parse_args()
    dirs, problems = validate(args.dirs, deep=args.deep)
    for p in problems:
        print(p)
    print(f"validate_data: {len(dirs)} data dir(s) checked ({', '.join(dirs)}): {len(problems)} problem(s)",
          file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
