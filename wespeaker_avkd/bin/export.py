"""Export a trained student's (or baseline's) encoder to TorchScript or ONNX.

    python -m wespeaker_avkd.bin.export --exp_dir exp/seed1/audio_kd_cos --format torchscript --out audio.pt
    python -m wespeaker_avkd.bin.export --exp_dir exp/seed1/visual_kd_cos_kl --format onnx --out visual.onnx

Audio: (B, T, F) CMN'd fbank -> (B, D), T dynamic (at least 16 frames). Visual: (B, 3, H, W) normalised
faces -> (B, D) per frame. OUT.json describes the input preprocessing. ONNX needs the `onnx` extra.
"""
from __future__ import annotations

import argparse
import logging
import sys

from wespeaker_avkd.utils.errors import ArgumentParser, run_main


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", required=True, help="trained experiment dir (config.yaml, spk2id, models/)")
    parser.add_argument("--checkpoint", help="model file (default EXP/models/avg_model.pt)")
    parser.add_argument("--format", required=True, choices=["torchscript", "onnx"], help="output format")
    parser.add_argument("--out", required=True, help="output file (OUT.json is written beside it)")
    return parser


def run(argv: list[str]) -> int:
    """Parse and export."""
    args = get_parser().parse_args(argv)
    from wespeaker_avkd.inference.export import export_trained

    # Our progress at INFO; the ONNX exporter's and its optimizer's pass-by-pass INFO lines are not for users.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("wespeaker_avkd").setLevel(logging.INFO)
    record = export_trained(args.exp_dir, args.out, args.format, args.checkpoint)
    print(f"{args.out}: {record['modality']} encoder, input {record['input_shape']} ({args.format})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("export", run, argv)


if __name__ == "__main__":
    sys.exit(main())
