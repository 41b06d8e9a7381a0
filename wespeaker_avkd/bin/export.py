"""Export a trained student's (or baseline's) encoder to TorchScript or ONNX.

    python -m wespeaker_avkd.bin.export --exp_dir exp/seed1/audio_kd_cos --format torchscript --out audio.pt
    python -m wespeaker_avkd.bin.export --exp_dir exp/seed1/visual_kd_cos_kl --format onnx --out visual.onnx
    python -m wespeaker_avkd.bin.export --config pretrained/config.yaml --checkpoint pretrained/avg_model.pt \
        --format onnx --out model.onnx --mean_vec exp/seed1/audio_kd_cos/embeddings/train/mean_vec.npy

Audio: (B, T, F) CMN'd fbank -> (B, D), T dynamic (at least 16 frames). Visual: (B, 3, H, W) normalised
faces -> (B, D) per frame. Input `feats`, output `embs` (WeSpeaker's names); --mean_vec folds the mean
subtraction into the file (embs = model(feats) - mean, as WeSpeaker's export_onnx.py --mean_vec). --config with
--checkpoint exports a WeSpeaker model dir (config.yaml as its train.py saves it, avg_model.pt). OUT.json
describes the input preprocessing. ONNX needs the `onnx` extra.
"""
from __future__ import annotations

import argparse
import logging
import sys

from wespeaker_avkd.registry import add_trust_plugins_option, trust_saved_plugins
from wespeaker_avkd.utils.errors import ArgumentParser, run_main


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", help="trained experiment dir (config.yaml, spk2id, models/)")
    parser.add_argument("--checkpoint", help="model file (with --exp_dir: default EXP/models/avg_model.pt; "
                                             "with --config: required)")
    parser.add_argument("--config", help="instead of --exp_dir: the yaml config of --checkpoint (a WeSpeaker model "
                                         "dir's config.yaml, or our models/config.yaml)")
    parser.add_argument("--mean_vec", help="a (D,) .npy mean vector (e.g. bin.extract's mean_vec.npy) subtracted "
                                           "inside the exported file")
    parser.add_argument("--format", required=True, choices=["torchscript", "onnx"], help="output format")
    parser.add_argument("--out", required=True, help="output file (OUT.json is written beside it)")
    add_trust_plugins_option(parser)
    return parser


def run(argv: list[str]) -> int:
    """Parse and export."""
    parser = get_parser()
    args = parser.parse_args(argv)
    if bool(args.exp_dir) == bool(args.config) or (args.config and not args.checkpoint):
        parser.error("give --exp_dir [--checkpoint FILE], or --config CONF with --checkpoint FILE")
    trust_saved_plugins(args.trust_plugins)
    from wespeaker_avkd.inference.export import export_trained, export_wespeaker

    # Our progress at INFO; the ONNX exporter's and its optimizer's pass-by-pass INFO lines are not for users.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("wespeaker_avkd").setLevel(logging.INFO)
    if args.exp_dir:
        record = export_trained(args.exp_dir, args.out, args.format, args.checkpoint, args.mean_vec)
    else:
        record = export_wespeaker(args.config, args.checkpoint, args.out, args.format, args.mean_vec)
    print(f"{args.out}: {record['modality']} encoder, input {record['input_shape']} ({args.format})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("export", run, argv)


if __name__ == "__main__":
    sys.exit(main())
