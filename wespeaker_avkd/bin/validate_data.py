"""Validate Kaldi data dirs: python -m wespeaker_avkd.bin.validate_data DIR [DIR ...] [--deep]."""
import sys

from wespeaker_avkd.data.validate import validate
from wespeaker_avkd.utils.errors import ArgumentParser, run_main


def run(argv: list[str]) -> int:
    """Print every problem as file:line: message; exit 1 when there is any."""
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("dirs", nargs="+", help="data dirs, or a corpus root whose subdirs are data dirs")
    parser.add_argument("--deep", action="store_true",
                        help="also decode every wav, image and feature matrix (finds corrupt data inside intact "
                             "headers, NaN/Inf audio and features; the default already finds missing, truncated, "
                             "too-short and non-audio/non-image files from their headers, and pipe lines in tables)")
    args = parser.parse_args(argv)
    dirs, problems = validate(args.dirs, deep=args.deep)
    for p in problems:
        print(p)
    print(f"validate_data: {len(dirs)} data dir(s) checked ({', '.join(dirs)}): {len(problems)} problem(s)",
          file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("validate_data", run, argv)


if __name__ == "__main__":
    sys.exit(main())
