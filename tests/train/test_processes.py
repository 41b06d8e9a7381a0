"""Trainer in real processes: torchrun with 2 gloo ranks, and SIGKILL in the middle of an epoch + resume."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from .fakes import write_data_dir

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_worker.py")
ENV = dict(os.environ, OMP_NUM_THREADS="1")


@pytest.mark.slow
def test_torchrun_two_ranks_hold_the_same_weights(tmp_path):
    data = write_data_dir(tmp_path / "data")
    exp = str(tmp_path / "exp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", WORKER, exp, data,
           "--epochs", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    a = torch.load(os.path.join(exp, "final_rank0.pt"))
    b = torch.load(os.path.join(exp, "final_rank1.pt"))
    for part in ("model", "projection"):
        for key in a[part]:
            if "running" in key or "num_batches" in key:
                continue  # BatchNorm statistics are per rank in DDP (not synchronised), as in WeSpeaker
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    # each rank saw half the data per epoch: 48 utts / 2 ranks / batch 8 = 3 iterations
    assert "3 iterations/epoch" in open(os.path.join(exp, "train.log")).read()
    start = torch.load(os.path.join(exp, "models", "model_1.pt"), weights_only=True)
    assert not torch.equal(start["fc.weight"], a["model"]["fc.weight"])  # it trained (model files are flat)


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    data = write_data_dir(tmp_path / "data")
    ref, killed = str(tmp_path / "ref"), str(tmp_path / "killed")
    subprocess.run([sys.executable, WORKER, ref, data], check=True, env=ENV, timeout=300, capture_output=True)
    proc = subprocess.Popen([sys.executable, WORKER, killed, data, "--sleep", "0.15"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = os.path.join(killed, "models", "model_1.pt")
    deadline = time.time() + 120
    while not os.path.exists(first) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.4)  # a few batches into epoch 2 (6 batches of 0.15 s per epoch)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    models = sorted(os.listdir(os.path.join(killed, "models")))
    assert "model_1.pt" in models and "model_3.pt" not in models, models
    out = subprocess.run([sys.executable, WORKER, killed, data], env=ENV, timeout=300, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    a = torch.load(os.path.join(ref, "final_rank0.pt"))
    b = torch.load(os.path.join(killed, "final_rank0.pt"))
    for part in ("model", "projection"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    assert "resuming from" in open(os.path.join(killed, "train.log")).read()
