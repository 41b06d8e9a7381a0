"""Stage 8: write exp/report (results.md with Tables 1-3, corrected trials, PCC; det.png; venn_*.png) and
print the tables.

    python -m wespeaker_avkd.bin.report --exp exp --out exp/report [--trials O E H]
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from wespeaker_avkd.analysis.report import PAPER_COMBOS, build_report


def main(argv: Optional[List[str]] = None) -> int:
    """Parse, build the report, print its tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", default="exp", help="experiments root holding <system>/scores/<trials>.score")
    parser.add_argument("--out", default=None, help="report dir (default EXP/report)")
    parser.add_argument("--trials", nargs="+", default=["O", "E", "H"], help="trial list names")
    parser.add_argument("--modalities", nargs="+", default=["visual", "audio"], help="student modalities")
    parser.add_argument("--kd_combos", nargs="+", default=list(PAPER_COMBOS), help="KD loss combinations")
    parser.add_argument("--venn_trials", default=None, help="trial list of the Venn figures (default E)")
    args = parser.parse_args(argv)
    out = args.out or f"{args.exp.rstrip('/')}/report"
    text = build_report(args.exp, out, args.trials, args.modalities, args.kd_combos, args.venn_trials)
    print(text)
    print(f"\nfull report: {out}/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
