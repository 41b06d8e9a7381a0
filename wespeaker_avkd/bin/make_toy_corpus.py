"""Generate the embedded audio-visual toy corpus: python -m wespeaker_avkd.bin.make_toy_corpus --out DIR.

Call it every time: when DIR already holds the corpus of the same merged config, seed and generator code (its
stamp and tables intact) it prints a skip line and exits 0; otherwise it (re)generates and swaps the corpus in."""
import sys

from wespeaker_avkd.data.toy_corpus import DEFAULT_CONFIG, ensure_corpus, format_summary, generate_corpus, load_config
from wespeaker_avkd.utils.errors import ArgumentParser, run_main


def run(argv: list[str]) -> int:
    """Parse arguments, generate the corpus unless it is current, print its layout and counts."""
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="output directory (data dirs OUT/train, OUT/dev, OUT/eval)")
    parser.add_argument("--config", default=None, help=f"yaml merged over the defaults ({DEFAULT_CONFIG})")
    parser.add_argument("--seed", type=int, default=None, help="master seed (overrides the config's)")
    parser.add_argument("--num_workers", type=int, default=None, help="synthesis processes (no effect on output)")
    parser.add_argument("--force", action="store_true", help="regenerate even when OUT holds the same corpus")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, {"seed": args.seed} if args.seed is not None else None)
    summary = ensure_corpus(args.out, cfg, generate_corpus, force=args.force, num_workers=args.num_workers,
                           progress=not args.no_progress)
    if summary is not None:
        print(format_summary(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("make_toy_corpus", run, argv)


if __name__ == "__main__":
    sys.exit(main())
