"""Train a baseline, the fusion teacher or a KD student from yaml (plain python or under torchrun).

    python -m wespeaker_avkd.bin.train --config conf/toy/audio.yaml --exp_dir exp/audio_baseline \
        [--config extra.yaml] [--num_epochs 2] [dataset_args.num_frms=[100,150]] [--device cpu]
    torchrun --nproc_per_node=2 -m wespeaker_avkd.bin.train --config ... --exp_dir ...

Re-running the same command resumes from the newest epoch with models/model_N.pt and train_state_N.pt, or
starts afresh when there is none. --resume insists on resuming: with nothing to resume from it stops with an
error instead of starting a new training (a mistyped --exp_dir is not trained from scratch). --overwrite
starts afresh: it checks every input first, sets the old models/ aside (models.old-*) and deletes it once the
new training has completed. A rerun on changed inputs (config, speakers, training-data content, a num_epochs
below the trained epochs, a num_avg needing pruned epochs) is refused before anything is written.
"""
from __future__ import annotations

import argparse
import os
import sys

from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.config.train_config import apply_overrides, load_config, parse_config, parse_override_args
from wespeaker_avkd.utils.errors import ArgumentParser, UsageError, run_main


def nothing_to_resume(exp_dir: str) -> str | None:
    """Why `--resume` cannot continue in exp_dir (no epoch with both its model and training state), or None."""
    model_dir = os.path.join(exp_dir, "models")
    if ckpt.resume_point(model_dir) is not None:
        return None
    found = "no such directory" if not os.path.isdir(model_dir) else (
        "model files without a train_state_<N>.pt" if ckpt.list_checkpoints(model_dir) else "no checkpoint")
    return (f"--resume: nothing to resume from in {model_dir} ({found}; a run resumes from an epoch with both "
            f"model_<N>.pt and train_state_<N>.pt); drop --resume to start a new training there")


def get_parser() -> argparse.ArgumentParser:
    """Command-line options; unknown `--key value` / `key=value` tokens are config overrides."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True,
                        help="yaml config; repeat to deep-merge several (later wins)")
    parser.add_argument("--exp_dir", required=True, help="experiment dir (config.yaml, models/, train.log)")
    parser.add_argument("--train_data", help="data dir with utt2spk etc. (overrides config train_data)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    parser.add_argument("--num_threads", type=int, default=None, help="torch threads (default: cores / local ranks)")
    parser.add_argument("--resume", action="store_true",
                        help="require resuming: stop with an error when EXP/models has no checkpoint to continue "
                             "from (without it a run resumes when it can and starts afresh otherwise)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh: the old models/ and train_state/ are set aside and deleted once the new "
                             "training completed")
    parser.add_argument("--no_progress", action="store_true", help="no tqdm progress bar")
    return parser


def run(argv: list[str]) -> int:
    """Parse, merge configs + overrides, train."""
    args, rest = get_parser().parse_known_args(argv)
    from wespeaker_avkd.train.trainer import run_training

    cfg = apply_overrides(load_config(args.config), parse_override_args(rest))
    if args.train_data:
        cfg["train_data"] = args.train_data
    if args.overwrite and args.resume:
        raise UsageError("--resume and --overwrite contradict each other")
    problem = nothing_to_resume(args.exp_dir) if args.resume else None
    if problem:
        raise UsageError(problem)
    run_training(parse_config(cfg), args.exp_dir, device=args.device, num_threads=args.num_threads,
                 overwrite=args.overwrite, progress=not args.no_progress)
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("train", run, argv)


if __name__ == "__main__":
    sys.exit(main())
