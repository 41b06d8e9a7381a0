"""Data dirs from real VoxCeleb: python -m wespeaker_avkd.bin.prepare_voxceleb --data_root ROOT --out data
(layouts: egs/voxceleb/v_kd/local/README.md)."""
from __future__ import annotations

import argparse
import sys

from wespeaker_avkd.data.voxceleb import DEV_TRIALS, FaceArgs, prepare_voxceleb
from wespeaker_avkd.data.voxceleb.prepare import FACE_FPS, FACE_MAX_FRAMES, FACE_SIZE
from wespeaker_avkd.utils.errors import ArgumentParser, run_main


def _bool(text: str) -> bool:
    if text not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text == "true"


def build_parser() -> argparse.ArgumentParser:
    """The command line of prepare_voxceleb."""
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--data_root", default=None, help="folder with voxceleb1/ and voxceleb2/ as distributed")
    parser.add_argument("--wespeaker_data", default=None,
                        help="WeSpeaker's prepared data folder (examples/voxceleb/v2/data: vox2_dev/, vox1/) as the "
                             "audio source instead of ROOT's audio")
    parser.add_argument("--out", required=True, help="output folder for train/, dev/ and eval/")
    parser.add_argument("--nj", type=int, default=2, help="parallel decoding processes")
    parser.add_argument("--dev_speakers", type=int, default=100,
                        help="VoxCeleb2 dev identities held out as the dev part (0: no dev part)")
    parser.add_argument("--dev_seed", type=int, default=0, help="seed of the dev identity choice and dev lists")
    parser.add_argument("--dev_max_targets", type=int, default=DEV_TRIALS["E_max_targets"],
                        help="cap on target trials per dev list (nontargets match the target count)")
    parser.add_argument("--need_faces", type=_bool, default=False,
                        help="true: stop before any conversion when a part has no face folder")
    parser.add_argument("--face_fps", type=float, default=FACE_FPS, help="frames taken per second of face track")
    parser.add_argument("--face_max_frames", type=int, default=FACE_MAX_FRAMES, help="at most this many per segment")
    parser.add_argument("--face_size", type=int, default=FACE_SIZE, help="stored frame size in pixels (square)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    return parser


def run(argv: list[str]) -> int:
    """Parse arguments, build OUT/train, OUT/dev and OUT/eval, print the counts and every skipped input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.data_root and not args.wespeaker_data:
        parser.error("give --data_root, --wespeaker_data, or both")
    if args.face_fps <= 0 or args.face_max_frames < 1 or args.face_size < 8:
        parser.error("--face_fps must be > 0, --face_max_frames >= 1 and --face_size >= 8")
    caps = {**DEV_TRIALS, **{f"{n}_max_targets": args.dev_max_targets for n in "OEH"}}
    counts = prepare_voxceleb(args.data_root, args.out, args.nj, dev_speakers=args.dev_speakers,
                              dev_seed=args.dev_seed, dev_caps=caps, need_faces=args.need_faces,
                              face_args=FaceArgs(args.face_fps, args.face_max_frames, args.face_size),
                              wespeaker_data=args.wespeaker_data, progress=not args.no_progress)
    for part in ("train", "dev", "eval"):
        if part in counts:
            print(f"{args.out}/{part}: {counts[part]['speakers']} speakers, {counts[part]['utterances']} utterances")
    for part, lists in counts["trials"].items():
        for name, c in lists.items():
            print(f"{args.out}/{part}/trials/{name}: {c['trials']} trials ({c['target']} target, "
                  f"{c['nontarget']} nontarget)")
    if counts["failed"]:
        print(f"{len(counts['failed'])} unreadable input files were skipped:", file=sys.stderr)
        for line in counts["failed"]:
            print(f"  {line}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("prepare_voxceleb", run, argv)


if __name__ == "__main__":
    sys.exit(main())
