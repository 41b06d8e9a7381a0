"""Data dirs from real VoxCeleb: python -m wespeaker_avkd.bin.prepare_voxceleb --data_root ROOT --out data."""
import sys

from wespeaker_avkd.data.voxceleb import DEV_TRIALS, prepare_voxceleb
from wespeaker_avkd.utils.errors import ArgumentParser, InputValueError, one_line, run_main


def run(argv: list[str]) -> int:
    """Parse arguments, build OUT/train, OUT/dev and OUT/eval, print the counts."""
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--data_root", required=True, help="folder with voxceleb1/ and voxceleb2/ "
                                                           "(layout: egs/voxceleb/v_kd/local/README.md)")
    parser.add_argument("--out", required=True, help="output folder for train/, dev/ and eval/")
    parser.add_argument("--nj", type=int, default=2, help="parallel m4a conversions")
    parser.add_argument("--dev_speakers", type=int, default=100,
                        help="VoxCeleb2 dev identities held out as the dev part (0: no dev part)")
    parser.add_argument("--dev_seed", type=int, default=0, help="seed of the dev identity choice and dev lists")
    parser.add_argument("--dev_max_targets", type=int, default=DEV_TRIALS["E_max_targets"],
                        help="cap on target trials per dev list (nontargets match the target count)")
    args = parser.parse_args(argv)
    caps = {**DEV_TRIALS, **{f"{n}_max_targets": args.dev_max_targets for n in "OEH"}}
    try:
        counts = prepare_voxceleb(args.data_root, args.out, args.nj, dev_speakers=args.dev_speakers,
                                  dev_seed=args.dev_seed, dev_caps=caps)
    except (ValueError, KeyError, RuntimeError) as e:  # data/voxceleb.py names the file or folder in each message
        raise InputValueError(one_line(e)) from e
    for part in ("train", "dev", "eval"):
        if part in counts:
            print(f"{args.out}/{part}: {counts[part]['speakers']} speakers, {counts[part]['utterances']} utterances")
    for part, lists in counts["trials"].items():
        for name, c in lists.items():
            print(f"{args.out}/{part}/trials/{name}: {c['trials']} trials ({c['target']} target, "
                  f"{c['nontarget']} nontarget)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("prepare_voxceleb", run, argv)


if __name__ == "__main__":
    sys.exit(main())
