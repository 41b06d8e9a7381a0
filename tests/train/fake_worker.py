"""Run the trainer on the test-only model + in-memory loader in a fresh process (torchrun or kill tests).

    python tests/train/fake_worker.py EXP_DIR DATA_DIR [--epochs N] [--sleep S] [--wait_for FILE]
Writes EXP_DIR/final_rank<R>.pt with the encoder + head weights every rank holds at the end.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fakes  # noqa: E402
import torch  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("exp_dir")
    parser.add_argument("data_dir")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds per batch (to be killed mid-epoch)")
    parser.add_argument("--wait_for", help="from epoch 2 on, hold before each batch until this file exists")
    args = parser.parse_args()
    if args.sleep or args.wait_for:
        orig_iter = fakes.FakeLoader.__iter__

        def slow_iter(self):
            for batch in orig_iter(self):
                time.sleep(args.sleep)
                while args.wait_for and self.epoch >= 2 and not os.path.exists(args.wait_for):
                    time.sleep(0.05)
                yield batch

        fakes.FakeLoader.__iter__ = slow_iter
    from wespeaker_avkd.train.trainer import run_training

    trainer = run_training(fakes.tiny_config(args.data_dir, num_epochs=args.epochs), args.exp_dir, device="cpu",
                           num_threads=1, progress=False, loaders=fakes.fake_loaders())
    state = {"model": trainer.net.encoder.state_dict(), "projection": trainer.net.projection.state_dict()}
    torch.save(state, os.path.join(args.exp_dir, f"final_rank{trainer.info.rank}.pt"))


if __name__ == "__main__":
    main()
