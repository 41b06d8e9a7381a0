"""Embed wav files or face images with a trained model, or with a WeSpeaker checkpoint and its config.

    python -m wespeaker_avkd.bin.embed --exp_dir exp/seed1/audio_kd_cos --inputs a.wav b.wav
    python -m wespeaker_avkd.bin.embed --exp_dir exp/seed1/visual_kd_cos --faces_scp data/eval/faces.scp \
        --out ark,scp:faces.ark,faces.scp
    python -m wespeaker_avkd.bin.embed --wespeaker_checkpoint avg_model.pt --config config.yaml --wav_scp wav.scp

Inputs: --inputs FILE ... (each file its own key), --list FILE (lines 'path' or 'key path [frame ...]'),
--wav_scp or --faces_scp (Kaldi tables; faces.scp lists a segment's frames). The features are the recipe's:
an embedding equals the one bin.extract writes for the same file. Without --out, prints 'key v1 v2 ...'.
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
    model = parser.add_argument_group("model (one of)")
    model.add_argument("--exp_dir", help="trained experiment dir (config.yaml, spk2id, models/)")
    model.add_argument("--checkpoint", help="with --exp_dir: model file (default EXP/models/avg_model.pt)")
    model.add_argument("--wespeaker_checkpoint", help="a WeSpeaker model file (avg_model.pt); needs --config")
    model.add_argument("--config", help="with --wespeaker_checkpoint: its yaml config (model, model_args, "
                                        "dataset_args.fbank_args)")
    inputs = parser.add_argument_group("inputs (one of)")
    inputs.add_argument("--inputs", nargs="+", metavar="FILE", help="wav files or face images")
    inputs.add_argument("--list", dest="list_file", help="file with one input per line: 'path' or 'key path ...'")
    inputs.add_argument("--wav_scp", help="Kaldi wav.scp ('key path')")
    inputs.add_argument("--faces_scp", help="faces.scp ('key frame1 frame2 ...')")
    parser.add_argument("--out", help="Kaldi wspecifier, e.g. ark,scp:x.ark,x.scp (default: print to stdout)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--num_threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--num_workers", type=int, default=0, help="data loader processes (default 0: in process)")
    add_trust_plugins_option(parser)
    return parser


def run(argv: list[str]) -> int:
    """Parse, embed, write or print."""
    args = get_parser().parse_args(argv)
    import torch

    from wespeaker_avkd.inference.embed import (
        embed_table,
        format_vector,
        load_model,
        read_inputs,
        write_wspecifier,
    )

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    trust_saved_plugins(args.trust_plugins)
    source, table = read_inputs(args.inputs, args.list_file, args.wav_scp, args.faces_scp)
    cfg, net = load_model(args.exp_dir, args.checkpoint, args.wespeaker_checkpoint, args.config, args.device)
    pairs = embed_table(cfg, net, table, source, args.device, args.num_workers)
    if args.out:
        count = write_wspecifier(pairs, args.out)
        print(f"embed: wrote {count} embeddings to {args.out}", file=sys.stderr)
    else:
        for key, vec in pairs:
            print(format_vector(key, vec))
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("embed", run, argv)


if __name__ == "__main__":
    sys.exit(main())
