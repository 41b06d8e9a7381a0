"""Write the study's report (results.md with Tables 1-3 as mean +- std over seeds with identity-bootstrap
intervals and per-student verdicts, corrected trials, PCC, gate values; results.json; det.png; venn_*.png) and
print the tables.

    python -m wespeaker_avkd.bin.report --exp exp --seeds 1 2 3 --part eval --trials O E H \\
        --utt2spk data/eval/utt2spk --modalities visual audio \\
        --kd_combos COS KL MMD COS+KL COS+MMD KL+MMD --out exp/report \\
        [--num_boot 1000] [--boot_seed 0] [--boot_scheme per-identity] [--scores_dir scores_asnorm] \\
        [--dev_part dev] [--dev_utt2spk data/dev/utt2spk] [--mde_effect 0.02] [--command "bash run.sh ..."]
"""
from __future__ import annotations

import argparse
import sys

from wespeaker_avkd.analysis.bootstrap import SCHEMES
from wespeaker_avkd.analysis.collect import ReportSettings
from wespeaker_avkd.analysis.report import make_report
from wespeaker_avkd.utils.errors import ArgumentParser, run_main


def run(argv: list[str]) -> int:
    """Parse, build the report, print its tables."""
    d = ReportSettings(exp="exp")  # the defaults
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", default=d.exp, help="experiments root holding seed<N>/<system>/scores/<part>/")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(d.seeds), help="training seeds (exp/seed<N>)")
    parser.add_argument("--part", default=d.part, help="data part whose scores are reported (eval)")
    parser.add_argument("--trials", nargs="+", default=list(d.trials), help="trial list names")
    parser.add_argument("--utt2spk", default=None, help="utterance -> identity of the part (default "
                                                        "data/<part>/utt2spk), for the identity bootstrap")
    parser.add_argument("--modalities", nargs="+", default=list(d.modalities), help="student modalities")
    parser.add_argument("--kd_combos", nargs="+", default=list(d.combos), help="KD loss combinations")
    parser.add_argument("--out", default=None, help="report dir (default EXP/report)")
    parser.add_argument("--num_boot", type=int, default=d.num_boot, help="bootstrap draws per trial list")
    parser.add_argument("--boot_seed", type=int, default=d.boot_seed, help="seed of the bootstrap draws")
    parser.add_argument("--boot_scheme", choices=list(SCHEMES), default=d.boot_scheme,
                        help="trial weight of a draw: m of each distinct identity of the trial (per-identity, the "
                             "calibrated default), m(a) m(b) (two-way) or m(enrolment identity) (one-way)")
    parser.add_argument("--venn_trials", default=None, help="trial list of the Venn figures (default E)")
    parser.add_argument("--scores_dir", default=d.scores_dir,
                        help="folder of each system holding <part>/<list>.score (scores_asnorm: the AS-normed "
                             "scores of run.sh --score_norm asnorm)")
    parser.add_argument("--dev_part", default=d.dev_part, help="part whose scores choose the best single/best "
                        "student and size the seed count ('' = none)")
    parser.add_argument("--dev_utt2spk", default=None, help="utterance -> identity of the dev part (default "
                                                            "data/<dev_part>/utt2spk)")
    parser.add_argument("--mde_effect", type=float, default=d.mde_effect,
                        help="EER effect (fraction, 0.02 = 2 points) the dev section sizes the seed count for")
    parser.add_argument("--command", default="", help="the command line that made the report, recorded verbatim "
                                                      "in results.json/results.md")
    parser.add_argument("--no_gate", action="store_true", help="skip the teacher's gate values (needs torch)")
    args = parser.parse_args(argv)
    if args.num_boot < 2:
        parser.error("--num_boot must be at least 2 (the identity variance needs two draws)")
    if not 0.0 < args.mde_effect < 1.0:
        parser.error(f"--mde_effect must lie in (0, 1) (an EER fraction), got {args.mde_effect}")
    out = args.out or f"{args.exp.rstrip('/')}/report"
    settings = ReportSettings(
        exp=args.exp, part=args.part, seeds=tuple(args.seeds), trials=tuple(args.trials), utt2spk=args.utt2spk or "",
        modalities=tuple(args.modalities), combos=tuple(args.kd_combos), num_boot=args.num_boot,
        boot_seed=args.boot_seed, venn_trials=args.venn_trials or "", with_gate=not args.no_gate,
        boot_scheme=args.boot_scheme, scores_dir=args.scores_dir, dev_part=args.dev_part,
        dev_utt2spk=args.dev_utt2spk or "", mde_effect=args.mde_effect, command=args.command)
    text = make_report(settings, out)
    print(text)
    print(f"\nfull report: {out}/results.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("report", run, argv)


if __name__ == "__main__":
    sys.exit(main())
