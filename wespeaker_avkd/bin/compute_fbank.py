"""Kaldi fbank of a data dir: python -m wespeaker_avkd.bin.compute_fbank --data DATA_DIR --out FEAT_DIR [--nj N]
[--compress].

Precomputed features are optional: a config with dataset_args.feat_source: wav computes them on the fly from
wav.scp, as WeSpeaker does. When stored, --compress writes them with Kaldi's matrix compression (one byte a
value instead of four; the readers decompress transparently, within Kaldi's quantisation error).
"""
from __future__ import annotations

import sys

from wespeaker_avkd.data.features import KALDI_COMPRESSION_METHODS, extract_fbank_dir
from wespeaker_avkd.utils.errors import ArgumentParser, run_main

KALDI_AUTOMATIC_METHOD = 1  # what Kaldi's --compress=true uses: kSpeechFeature for more than 8 frames


def run(argv: list[str]) -> int:
    """Parse arguments and extract (resumably) fbank for every utterance of the data dir."""
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="data dir with wav.scp (feats.scp is written into it)")
    parser.add_argument("--out", required=True, help="feature dir for raw_fbank.*.ark/scp and feats.scp")
    parser.add_argument("--nj", type=int, default=2, help="parallel processes")
    parser.add_argument("--num_mel_bins", type=int, default=40)
    parser.add_argument("--frame_length", type=float, default=25.0, help="ms")
    parser.add_argument("--frame_shift", type=float, default=10.0, help="ms")
    parser.add_argument("--compress", action="store_true",
                        help="store Kaldi-compressed matrices (Kaldi's --compress=true: about 1/4 of the float32 size)")
    parser.add_argument("--compression_method", type=int, choices=list(KALDI_COMPRESSION_METHODS), default=None,
                        help="another Kaldi compression method (kaldiio's numbering 1-7; implies --compress)")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    table = extract_fbank_dir(args.data, args.out, args.nj,
                              {"num_mel_bins": args.num_mel_bins, "frame_length": args.frame_length,
                               "frame_shift": args.frame_shift}, progress=not args.no_progress,
                              compression_method=args.compression_method or
                              (KALDI_AUTOMATIC_METHOD if args.compress else None))
    print(f"fbank: {len(table)} utterances -> {args.out}/feats.scp (and {args.data}/feats.scp)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("compute_fbank", run, argv)


if __name__ == "__main__":
    sys.exit(main())
