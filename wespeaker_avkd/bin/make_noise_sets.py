"""Noise and RIR sets for augmentation (dataset_args.aug_prob) as Kaldi wav.scp dirs OUT/musan and OUT/rirs.

    python -m wespeaker_avkd.bin.make_noise_sets --out data --speech_scp data/train/wav.scp   # generated
    python -m wespeaker_avkd.bin.make_noise_sets --out data --musan /corpora/musan --rirs /corpora/RIRS_NOISES

Generated (no download): coloured noises, babble of --speech_scp's voices and tones (keys noise/, speech/,
music/ as MUSAN's categories, so WeSpeaker's SNR ranges apply) and synthetic exponentially decaying RIRs.
With --musan and --rirs, the real folders are listed instead (RIRS_NOISES: its simulated_rirs part), keyed as
WeSpeaker's voxceleb/v2 data preparation keys them. Train with noise_data: OUT/musan/wav.scp and
reverb_data: OUT/rirs/wav.scp.
"""
from __future__ import annotations

import argparse
import os
import sys

from wespeaker_avkd.data.noise_sets import scan_set, write_noise_set, write_rir_set
from wespeaker_avkd.utils.errors import ArgumentParser, UsageError, run_main


def run(argv: list[str]) -> int:
    """Parse, then generate or list the two sets."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="writes OUT/musan/wav.scp and OUT/rirs/wav.scp")
    parser.add_argument("--speech_scp", help="wav.scp whose voices make the generated babble")
    parser.add_argument("--musan", help="a real MUSAN folder (instead of generated noises)")
    parser.add_argument("--rirs", help="a real RIRS_NOISES folder (instead of generated RIRs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per_kind", type=int, default=8, help="generated noises per kind (5 kinds)")
    parser.add_argument("--num_rirs", type=int, default=40, help="generated RIRs")
    args = parser.parse_args(argv)
    if bool(args.musan) != bool(args.rirs):
        raise UsageError("--musan and --rirs go together (real sets), or give neither (generated sets)")
    noise_dir, rir_dir = os.path.join(args.out, "musan"), os.path.join(args.out, "rirs")
    if args.musan:
        noise, rirs = scan_set(args.musan, noise_dir), scan_set(args.rirs, rir_dir, subdir="simulated_rirs")
    else:
        if not args.speech_scp:
            raise UsageError("generated sets need --speech_scp (the voices of the babble noise)")
        noise = write_noise_set(noise_dir, args.speech_scp, seed=args.seed, per_kind=args.per_kind)
        rirs = write_rir_set(rir_dir, seed=args.seed + 1, count=args.num_rirs)
    print(f"noise set {noise}, RIR set {rirs}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("make_noise_sets", run, argv)


if __name__ == "__main__":
    sys.exit(main())
