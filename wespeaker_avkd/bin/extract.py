"""Extract embeddings of a data dir with a trained system, or write the teacher's KD export.

    python -m wespeaker_avkd.bin.extract --exp_dir exp/audio_baseline --data data/train \
        --out_dir exp/audio_baseline/embeddings/train --mean_vec
    python -m wespeaker_avkd.bin.extract --exp_dir exp/teacher --data data/eval --out_dir exp/teacher/embeddings/eval \
        --embedding_scps audio=exp/audio_baseline/embeddings/eval/xvector.scp \
                         visual=exp/visual_baseline/embeddings/eval/xvector.scp
    python -m wespeaker_avkd.bin.extract --exp_dir exp/teacher --kd_export \
        --train_scp exp/teacher/embeddings/train/xvector.scp

A finished extraction made by the same checkpoint from the same data is skipped (--force redoes it).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Dict, List, Optional


def parse_scps(items: Optional[List[str]]) -> Optional[Dict[str, str]]:
    """['audio=a.scp', 'visual=v.scp'] -> {'audio': 'a.scp', 'visual': 'v.scp'}."""
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"extract: --embedding_scps entry {item!r} is not MODALITY=PATH")
        out[name] = path
    return out


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", required=True, help="trained experiment dir (config.yaml, spk2id, models/)")
    parser.add_argument("--data", help="data dir to embed (wav.scp/feats.scp, faces.scp, utt2spk)")
    parser.add_argument("--out_dir", help="where xvector.ark/scp go (default EXP/embeddings/<basename of data>)")
    parser.add_argument("--checkpoint", help="model file (default EXP/models/avg_model.pt)")
    parser.add_argument("--embedding_scps", nargs="+", metavar="MODALITY=SCP",
                        help="fusion teacher inputs: audio=... visual=... pre-extracted embeddings")
    parser.add_argument("--mean_vec", action="store_true", help="also write OUT_DIR/mean_vec.npy (training set)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--num_threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--force", action="store_true", help="redo even when a complete extraction exists")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    parser.add_argument("--kd_export", action="store_true",
                        help="write EXP/kd_export (teacher embeddings of --train_scp, W, spk2id) instead")
    parser.add_argument("--train_scp", help="with --kd_export: the teacher's embeddings of the training set")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Parse and run."""
    args = get_parser().parse_args(argv)
    import os

    import torch

    from wespeaker_avkd.train.extract import export_teacher, extract_embeddings
    from wespeaker_avkd.train.trainer import default_num_threads, setup_logging

    setup_logging(None, True)
    torch.set_num_threads(args.num_threads or default_num_threads())
    if args.kd_export:
        if not args.train_scp:
            print("extract: --kd_export needs --train_scp", file=sys.stderr)
            return 2
        export_teacher(args.exp_dir, args.train_scp, args.out_dir, args.checkpoint)
        return 0
    if not args.data:
        print("extract: --data is required (or --kd_export)", file=sys.stderr)
        return 2
    out_dir = args.out_dir or os.path.join(args.exp_dir, "embeddings", os.path.basename(args.data.rstrip("/")))
    extract_embeddings(args.exp_dir, args.data, out_dir, checkpoint=args.checkpoint,
                       embedding_scps=parse_scps(args.embedding_scps), device=args.device, mean_vec=args.mean_vec,
                       progress=not args.no_progress, force=args.force)
    return 0


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
