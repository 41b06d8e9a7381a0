"""An exp dir is owned by one training at a time (exp_dir/.lock): a second one is refused, stale locks taken over."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from wespeaker_avkd.train.exp_lock import ExpDirLock, ExpDirLockedError

TRAIN_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train")
WORKER = os.path.join(TRAIN_TESTS, "fake_worker.py")  # the trainer on a tiny model + in-memory data
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _data_dir(path, num_spk=4, num_utts=48):
    path.mkdir(parents=True)
    (path / "utt2spk").write_text("".join(f"utt{i} spk{i % num_spk}\n" for i in range(num_utts)))
    return str(path)


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_training_into_a_locked_dir_is_refused(tmp_path):
    data = _data_dir(tmp_path / "data")
    exp = tmp_path / "exp"
    go = tmp_path / "go"  # the first training holds in epoch 2 until this file exists
    first = subprocess.Popen([sys.executable, WORKER, str(exp), data, "--epochs", "2", "--wait_for", str(go)], env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (exp / "models" / "model_1.pt").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None, first.stderr.read()[-3000:]
        holder = json.loads((exp / ".lock").read_text())
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        config_before = (exp / "config.yaml").read_bytes()
        second = subprocess.run([sys.executable, WORKER, str(exp), data, "--epochs", "3"], env=ENV,
                                capture_output=True, text=True, timeout=300)
        assert second.returncode != 0
        assert "in use by another training" in second.stderr and f"pid {first.pid}" in second.stderr
        assert (exp / "config.yaml").read_bytes() == config_before  # nothing of the first run was touched
        assert not (exp / "models" / "model_3.pt").exists()
        assert first.poll() is None  # still running: the refusal was the lock's doing
        go.write_text("")
        assert first.wait(timeout=300) == 0, first.stderr.read()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert not (exp / ".lock").exists()  # released at exit
    again = subprocess.run([sys.executable, WORKER, str(exp), data, "--epochs", "2"], env=ENV,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    data = _data_dir(tmp_path / "data")
    exp = tmp_path / "exp"
    exp.mkdir()
    dead = _dead_pid()
    (exp / ".lock").write_text(json.dumps({"pid": dead, "host": socket.gethostname(), "start_time": 0}))
    out = subprocess.run([sys.executable, WORKER, str(exp), data, "--epochs", "1"], env=ENV, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"stale lock of pid {dead}" in (exp / "train.log").read_text()
    assert (exp / "models" / "model_1.pt").exists() and not (exp / ".lock").exists()


def test_lock_of_another_host_or_live_process_refuses(tmp_path):
    (tmp_path / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "start_time": 0}))
    with pytest.raises(ExpDirLockedError, match="another host"):
        ExpDirLock(str(tmp_path)).acquire()
    (tmp_path / ".lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))
    with pytest.raises(ExpDirLockedError, match=f"pid {os.getppid()}"):
        ExpDirLock(str(tmp_path)).acquire()
    (tmp_path / ".lock").write_text("{half")
    with pytest.raises(ExpDirLockedError, match="unreadable"):
        ExpDirLock(str(tmp_path)).acquire()


def test_release_never_removes_a_lock_taken_over_by_another(tmp_path):
    lock = ExpDirLock(str(tmp_path))
    assert lock.acquire() is None
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    with pytest.raises(ExpDirLockedError, match="this process"):
        ExpDirLock(str(tmp_path)).acquire()
    (tmp_path / ".lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "token": "x"}))
    lock.release()
    assert (tmp_path / ".lock").exists()
