"""Cosine-score trial lists: python -m wespeaker_avkd.bin.score --embeddings EMB.scp --trials T1 [T2 ...]
--output_dir DIR [--mean_vec FILE] [--skip_missing] [--cohort COHORT.scp [--cohort_utt2spk U2S]
--top_k 300] [--metrics [--p_target P]];
several systems in one process: --jobs JOBS.tsv (lines
'embeddings<TAB>output_dir[<TAB>mean_vec[<TAB>cohort[<TAB>cohort_utt2spk]]]', '-' for none; --top_k applies to
every job with a cohort) instead of --embeddings/--output_dir/--mean_vec/--cohort/--cohort_utt2spk."""
import argparse
import sys

from wespeaker_avkd.scoring.pipeline import JOB_LINE, read_jobs, score_files, score_jobs
from wespeaker_avkd.utils.errors import ArgumentParser, run_main


def get_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = ArgumentParser(description="Cosine scoring of trial lists (writes DIR/<trials name>.score with "
                                   "lines 'enroll test score [target|nontarget]'; with --metrics also "
                                   "DIR/<trials name>.json and a one-line summary per list).")
    p.add_argument("--embeddings", default=None, help="xvector.scp / .ark / .npz (keys, embeddings)")
    p.add_argument("--trials", required=True, nargs="+",
                   help="trial lists ('1 e t', 'e t target' or 'e t'); their file names must differ")
    p.add_argument("--output_dir", default=None)
    p.add_argument("--mean_vec", default=None, help="mean_vec.npy, or embeddings whose mean is subtracted")
    p.add_argument("--jobs", default=None,
                   help=f"score several systems: tab-separated lines '{JOB_LINE}' ('-' = none; replaces "
                        "--embeddings, --output_dir, --mean_vec, --cohort, --cohort_utt2spk)")
    p.add_argument("--skip_missing", action="store_true", help="skip (and count) trials with a missing key")
    p.add_argument("--cohort", default=None, help="AS-norm cohort embeddings (scp/ark/npz)")
    p.add_argument("--cohort_utt2spk", default=None, help="average the cohort per speaker with this utt2spk")
    p.add_argument("--top_k", type=int, default=300, help="AS-norm top-k cohort size (every job with a cohort)")
    p.add_argument("--metrics", action="store_true",
                   help="also write DIR/<trials name>.json (as compute_metrics --json) and print a summary line")
    p.add_argument("--p_target", type=float, action="append", default=None,
                   help="minDCF prior for --metrics (repeatable; default 0.01 and 0.05)")
    args = p.parse_args(argv)
    if args.jobs:
        clash = [f"--{k}" for k in ("embeddings", "output_dir", "mean_vec", "cohort", "cohort_utt2spk")
                 if getattr(args, k)]
        if clash:
            p.error(f"--jobs replaces {', '.join(clash)} (each job line names its own files, its AS-norm cohort "
                    "included)")
    elif args.cohort_utt2spk and not args.cohort:
        p.error("--cohort_utt2spk needs --cohort")
    elif not (args.embeddings and args.output_dir):
        p.error("give --embeddings and --output_dir, or --jobs")
    if args.p_target and not args.metrics:
        p.error("--p_target needs --metrics")
    if args.top_k < 1:
        p.error(f"--top_k must be a positive integer, got {args.top_k}")
    return args


def run(argv: list[str]) -> int:
    """Parse options and score."""
    args = get_args(argv)
    p_targets = (args.p_target or [0.01, 0.05]) if args.metrics else None
    if args.jobs:
        score_jobs(read_jobs(args.jobs), args.trials, args.skip_missing, p_targets=p_targets, top_k=args.top_k)
    else:
        score_files(args.embeddings, args.trials, args.output_dir, args.mean_vec, args.skip_missing, args.cohort,
                    args.cohort_utt2spk, args.top_k, p_targets=p_targets)
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("score", run, argv)


if __name__ == "__main__":
    sys.exit(main())
