"""Data dirs from real VoxCeleb: python -m wespeaker_avkd.bin.prepare_voxceleb --data_root ROOT --out data."""
import argparse

from wespeaker_avkd.data.voxceleb import prepare_voxceleb


def main() -> None:
    """Parse arguments, build OUT/train and OUT/eval, print the counts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data_root", required=True, help="folder with voxceleb1/ and voxceleb2/ "
                                                           "(layout: egs/voxceleb/v_kd/local/README.md)")
    parser.add_argument("--out", required=True, help="output folder for train/ and eval/")
    parser.add_argument("--nj", type=int, default=2, help="parallel m4a conversions")
    args = parser.parse_args()
    counts = prepare_voxceleb(args.data_root, args.out, args.nj)
    for part in ("train", "eval"):
        print(f"{args.out}/{part}: {counts[part]['speakers']} speakers, {counts[part]['utterances']} utterances")
    for name, c in counts["trials"].items():
        print(f"{args.out}/eval/trials/{name}: {c['trials']} trials ({c['target']} target, {c['nontarget']} nontarget)")


if __name__ == "__main__":
    main()
