"""Convert model files of the old nested layout ({'model', 'projection', training state}) to WeSpeaker's flat layout.

    python -m wespeaker_avkd.bin.convert_checkpoint --src exp/old/models/model_10.pt --dst model_10.pt
    python -m wespeaker_avkd.bin.convert_checkpoint --models_dir exp/old/models

The flat file holds the encoder's state_dict plus `projection.*` (WeSpeaker's load_checkpoint matches every
tensor); an epoch file's training state goes to train_state/train_state_<epoch>.pt beside its models/ dir
(--models_dir also moves training states an earlier version left in models/ there).

Files are read with the weights-only loader (numpy arrays, the old layout's RNG state, are the one addition):
nothing stored in a file can run code.
"""
from __future__ import annotations

import argparse
import os
import sys

from wespeaker_avkd.utils.errors import ArgumentParser, UsageError, run_main


def run(argv: list[str]) -> int:
    """Parse and convert."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", help="one old-layout model file")
    parser.add_argument("--dst", help="with --src: the flat model file to write (may equal --src)")
    parser.add_argument("--state_dst", help="with --src: where its training state goes "
                                            "(default train_state/train_state_<epoch>.pt in the dir above --dst's)")
    parser.add_argument("--models_dir", help="convert every model_N.pt and avg_model.pt of this dir in place")
    args = parser.parse_args(argv)
    from wespeaker_avkd.checkpoint import convert_checkpoint, convert_models_dir

    if bool(args.models_dir) == bool(args.src):
        raise UsageError("give either --src/--dst or --models_dir")
    if args.models_dir:
        if not os.path.isdir(args.models_dir):
            raise UsageError(f"--models_dir {args.models_dir}: no such directory")
        done = convert_models_dir(args.models_dir)
        print(f"converted {len(done)} files in {args.models_dir}")
        return 0
    if not args.dst:
        raise UsageError("--src needs --dst")
    out = convert_checkpoint(args.src, args.dst, args.state_dst)
    print(f"wrote {args.dst} ({out['keys']} tensors)" + (f" and {out['train_state']}" if out["train_state"] else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("convert_checkpoint", run, argv)


if __name__ == "__main__":
    sys.exit(main())
