"""Extract embeddings of a data dir with a trained system, run a file of such jobs, or write the teacher's KD export.

    python -m wespeaker_avkd.bin.extract --exp_dir exp/audio_baseline --data data/train \
        --out_dir exp/audio_baseline/embeddings/train --mean_vec
    python -m wespeaker_avkd.bin.extract --exp_dir exp/teacher --data data/eval --out_dir exp/teacher/embeddings/eval \
        --embedding_scps audio=exp/audio_baseline/embeddings/eval/xvector.scp \
                         visual=exp/visual_baseline/embeddings/eval/xvector.scp
    python -m wespeaker_avkd.bin.extract --jobs stage4.tsv [--device cpu] [--num_threads N] [--no_progress] [--force]
    python -m wespeaker_avkd.bin.extract --exp_dir exp/teacher --kd_export \
        --train_scp exp/teacher/embeddings/train/xvector.scp

A jobs file holds one job per line, five TAB-separated fields (paths may contain spaces, not tabs):
    exp_dir <TAB> data_dir <TAB> out_dir <TAB> mean_vec (0|1) <TAB> embedding_scps ('-' or MODALITY=PATH,MODALITY=PATH)
Blank lines and lines starting with '#' are skipped. The jobs run in order in this one process; consecutive
jobs of one exp dir load its model once.

A finished extraction is skipped when it was made from the same inputs, compared by content (checkpoint, data
dir tables and the files they list, embedding scps, the config values that change embeddings); --force redoes it.
"""
from __future__ import annotations

import argparse
import logging
import sys

from wespeaker_avkd.registry import add_trust_plugins_option, trust_saved_plugins
from wespeaker_avkd.utils.errors import ArgumentParser, UsageError, run_main


def parse_scps(items: list[str] | None) -> dict[str, str] | None:
    """['audio=a.scp', 'visual=v.scp'] -> {'audio': 'a.scp', 'visual': 'v.scp'}."""
    if not items:
        return None
    from wespeaker_avkd.inference.jobs import parse_embedding_scps

    try:
        return parse_embedding_scps(",".join(items), "--embedding_scps")
    except ValueError as err:  # a malformed option value: one line naming it
        raise UsageError(str(err)) from err


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", help="trained experiment dir (config.yaml, spk2id, models/)")
    parser.add_argument("--data", help="data dir to embed (wav.scp/feats.scp, faces.scp, utt2spk)")
    parser.add_argument("--out_dir", help="where xvector.ark/scp go (default EXP/embeddings/<basename of data>)")
    parser.add_argument("--jobs", metavar="JOBS.tsv", help="run every job of this file (see above) in one process")
    parser.add_argument("--checkpoint", help="model file (default EXP/models/avg_model.pt)")
    parser.add_argument("--embedding_scps", nargs="+", metavar="MODALITY=SCP",
                        help="fusion teacher inputs: audio=... visual=... pre-extracted embeddings")
    parser.add_argument("--mean_vec", action="store_true", help="also write OUT_DIR/mean_vec.npy (training set)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--num_threads", type=int, default=None,
                        help="torch threads (default: the cores this process may use; more are clamped)")
    parser.add_argument("--force", action="store_true", help="redo even when a complete extraction exists")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    parser.add_argument("--kd_export", action="store_true",
                        help="write EXP/kd_export (teacher embeddings of --train_scp, W, spk2id) instead")
    parser.add_argument("--train_scp", help="with --kd_export: the teacher's embeddings of the training set")
    add_trust_plugins_option(parser)
    return parser


def run(argv: list[str]) -> int:
    """Parse and run."""
    args = get_parser().parse_args(argv)
    trust_saved_plugins(args.trust_plugins)
    import os

    from wespeaker_avkd.inference.extract import extract_embeddings
    from wespeaker_avkd.inference.jobs import read_jobs, run_jobs
    from wespeaker_avkd.inference.kd_export import export_teacher
    from wespeaker_avkd.utils.runtime import set_cpu_threads, setup_logging

    setup_logging(None, True)
    set_cpu_threads(args.num_threads)
    if args.jobs:
        if any((args.exp_dir, args.data, args.out_dir, args.checkpoint, args.embedding_scps, args.mean_vec,
                args.kd_export)):
            raise UsageError("--jobs takes the exp/data/out dirs from the file; only --device, --num_threads, "
                             "--no_progress and --force combine with it")
        run_jobs(read_jobs(args.jobs), device=args.device, progress=not args.no_progress, force=args.force)
        return 0
    if not args.exp_dir:
        raise UsageError("--exp_dir is required (or --jobs)")
    if args.kd_export:
        if not args.train_scp:
            raise UsageError("--kd_export needs --train_scp")
        export_teacher(args.exp_dir, args.train_scp, args.out_dir, args.checkpoint, force=args.force)
        return 0
    if not args.data:
        raise UsageError("--data is required (or --kd_export, or --jobs)")
    out_dir = args.out_dir or os.path.join(args.exp_dir, "embeddings", os.path.basename(args.data.rstrip("/")))
    extract_embeddings(args.exp_dir, args.data, out_dir, checkpoint=args.checkpoint,
                       embedding_scps=parse_scps(args.embedding_scps), device=args.device, mean_vec=args.mean_vec,
                       progress=not args.no_progress, force=args.force)
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("extract", run, argv)


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
