"""Cosine-score trial lists: python -m wespeaker_avkd.bin.score --embeddings EMB.scp --trials T1 [T2 ...]
--output_dir DIR [--mean_vec FILE] [--skip_missing] [--cohort COHORT.scp --top_k 300]."""
import argparse

from wespeaker_avkd.scoring.pipeline import run_cli, score_files


def get_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description="Cosine scoring of trial lists (writes DIR/<trials name>.score with "
                                            "lines 'enroll test score [target|nontarget]').")
    p.add_argument("--embeddings", required=True, help="xvector.scp / .ark / .npz (keys, embeddings)")
    p.add_argument("--trials", required=True, nargs="+", help="trial lists ('1 e t', 'e t target' or 'e t')")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--mean_vec", default=None, help="mean_vec.npy, or embeddings whose mean is subtracted")
    p.add_argument("--skip_missing", action="store_true", help="skip (and count) trials with a missing key")
    p.add_argument("--cohort", default=None, help="AS-norm cohort embeddings (scp/ark/npz)")
    p.add_argument("--cohort_utt2spk", default=None, help="average the cohort per speaker with this utt2spk")
    p.add_argument("--top_k", type=int, default=300, help="AS-norm top-k cohort size")
    return p.parse_args(argv)


def main(argv=None) -> None:
    """Parse options and score."""
    args = get_args(argv)
    run_cli(lambda: score_files(args.embeddings, args.trials, args.output_dir, args.mean_vec, args.skip_missing,
                                args.cohort, args.cohort_utt2spk, args.top_k))


if __name__ == "__main__":
    main()
