"""Pack a Kaldi data dir into tar shards (WeSpeaker's shard format + face frames and fbank):

    python -m wespeaker_avkd.bin.make_shards --data DATA_DIR --out SHARD_DIR [--list FILE] [--utts_per_shard 1000]
        [--shuffle] [--seed 42] [--nj N] [--no_faces] [--no_feats] [--no_progress]

Writes SHARD_DIR/shard_NNNNNN.tar and the shard list (default DATA_DIR/shard.list, which the loaders read with
dataset_args.data_type: shard). Resumable: a shard whose inputs are unchanged is kept (data/shard_writer.py).
"""
from __future__ import annotations

import argparse

from wespeaker_avkd.data.shard_writer import DEFAULT_UTTS_PER_SHARD, PackArgs, make_shards
from wespeaker_avkd.utils.errors import ArgumentParser, run_main


def run(argv: list[str]) -> int:
    """Parse arguments and pack the data dir."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="data dir with utt2spk and wav.scp (faces.scp, feats.scp)")
    parser.add_argument("--out", required=True, help="folder of the tar shards")
    parser.add_argument("--list", default=None, help="shard list to write (default DATA/shard.list)")
    parser.add_argument("--utts_per_shard", type=int, default=DEFAULT_UTTS_PER_SHARD)
    parser.add_argument("--shuffle", action="store_true", help="pack in a seeded random order (default: sorted keys)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--nj", type=int, default=1, help="processes writing shards side by side")
    parser.add_argument("--no_faces", action="store_true", help="leave the face frames out")
    parser.add_argument("--no_feats", action="store_true", help="leave the stored fbank (feats.scp) out")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    if args.utts_per_shard < 1 or args.nj < 1:
        parser.error("--utts_per_shard and --nj must be at least 1")
    paths = make_shards(args.data, args.out, args.list, args.utts_per_shard, args.shuffle, args.seed, args.nj,
                        PackArgs(faces=not args.no_faces, feats=not args.no_feats), progress=not args.no_progress)
    print(f"make_shards: {len(paths)} shards of {args.data} in {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("make_shards", run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
