"""Copy a Kaldi data dir restricted to N utterances evenly spaced over its sorted list (Kaldi's
utils/subset_data_dir.sh idea); every utterance-keyed table present is filtered, spk2utt is rebuilt.

    python -m wespeaker_avkd.bin.subset_data_dir --src data/train --dst data/train_mean --num_utts 300
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

import numpy as np

from wespeaker_avkd.data.kaldi_dir import read_table, utt2spk_to_spk2utt, write_table

# Tables keyed by utterance id that a data dir may hold.
UTT_TABLES = ("utt2spk", "wav.scp", "feats.scp", "faces.scp", "utt2meta")


def subset_data_dir(src: str, dst: str, num_utts: int) -> List[str]:
    """Write dst with `num_utts` utterances of src (all when it has fewer); returns the chosen ids."""
    utt2spk = read_table(os.path.join(src, "utt2spk"))
    utts = sorted(utt2spk)
    if num_utts < len(utts):
        utts = [utts[i] for i in np.linspace(0, len(utts) - 1, num_utts).round().astype(int)]
    keep = set(utts)
    os.makedirs(dst, exist_ok=True)
    for name in UTT_TABLES:
        path = os.path.join(src, name)
        if os.path.isfile(path):
            write_table(os.path.join(dst, name), {k: v for k, v in read_table(path).items() if k in keep})
    write_table(os.path.join(dst, "spk2utt"), utt2spk_to_spk2utt({u: utt2spk[u] for u in utts}))
    return utts


def main(argv: Optional[List[str]] = None) -> int:
    """Parse and subset."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", required=True)
    parser.add_argument("--dst", required=True)
    parser.add_argument("--num_utts", type=int, required=True)
    args = parser.parse_args(argv)
    utts = subset_data_dir(args.src, args.dst, args.num_utts)
    print(f"{args.dst}: {len(utts)} utterances of {args.src}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
