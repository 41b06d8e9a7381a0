"""Generate the embedded audio-visual toy corpus: python -m wespeaker_avkd.bin.make_toy_corpus --out DIR."""
import argparse

from wespeaker_avkd.data.toy_corpus import DEFAULT_CONFIG, format_summary, generate_corpus, load_config


def main() -> None:
    """Parse arguments, generate the corpus, print its layout and counts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="output directory (data dirs OUT/train, OUT/eval)")
    parser.add_argument("--config", default=None, help=f"yaml merged over the defaults ({DEFAULT_CONFIG})")
    parser.add_argument("--seed", type=int, default=None, help="master seed (overrides the config's)")
    parser.add_argument("--num_workers", type=int, default=None, help="synthesis processes (no effect on output)")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args()
    cfg = load_config(args.config, {"seed": args.seed} if args.seed is not None else None)
    summary = generate_corpus(args.out, cfg, num_workers=args.num_workers, progress=not args.no_progress)
    print(format_summary(summary))


if __name__ == "__main__":
    main()
