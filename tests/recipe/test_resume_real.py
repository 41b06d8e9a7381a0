"""SIGKILL in the middle of an epoch with the real data loaders and model (tiny corpus + tiny audio config):
the same command again resumes from the last checkpoint and ends with the same weights as an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "egs", "voxceleb", "v_kd", "conf", "tiny")
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _train_cmd(data, exp):
    return [sys.executable, "-m", "wespeaker_avkd.bin.train", "--config", os.path.join(TINY, "audio.yaml"),
            "--exp_dir", exp, "--train_data", os.path.join(data, "train"), "--device", "cpu", "--num_threads", "1",
            "--no_progress", "--num_epochs", "3", "dataloader_args.batch_size=4", "dev_eval=null"]


@pytest.mark.slow
def test_sigkill_resume_real_loader(tmp_path):
    data = str(tmp_path / "data")
    subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.make_toy_corpus", "--out", data, "--config",
                    os.path.join(TINY, "corpus.yaml"), "--no_progress"], check=True, env=ENV, capture_output=True)
    subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.compute_fbank", "--data", os.path.join(data, "train"),
                    "--out", str(tmp_path / "fbank")], check=True, env=ENV, capture_output=True)
    ref, killed = str(tmp_path / "ref"), str(tmp_path / "killed")
    subprocess.run(_train_cmd(data, ref), check=True, env=ENV, capture_output=True, timeout=600)
    log = os.path.join(killed, "train.log")
    proc = subprocess.Popen(_train_cmd(data, killed), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    # kill once epoch 2 has logged a batch (model_1.pt is then complete, model_2.pt not yet written)
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(log) and "epoch 2 batch" in open(log).read():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(killed, "models", "model_2.pt"))
    subprocess.run(_train_cmd(data, killed), check=True, env=ENV, capture_output=True, timeout=600)
    assert "resuming from" in open(log).read()
    a = torch.load(os.path.join(ref, "models", "model_3.pt"), weights_only=True)
    b = torch.load(os.path.join(killed, "models", "model_3.pt"), weights_only=True)
    assert set(a) == set(b)  # flat WeSpeaker layout: encoder keys + projection.*
    for key in a:
        assert torch.equal(a[key], b[key]), key
