"""Ownership of an exp dir by one training at a time: exp_dir/.lock holds the owner's pid, host and start time.

The lock file is created with O_EXCL, so of two trainings started at once exactly one gets it. A lock left
by a process that no longer exists on this host (killed, crashed) is stale and taken over with a log line; a
lock held by a live process, or by another host (whose processes cannot be checked from here), refuses.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from typing import Any

from wespeaker_avkd.utils.errors import NamedError

logger = logging.getLogger("wespeaker_avkd.train")

LOCK_NAME = ".lock"


class ExpDirLockedError(NamedError, RuntimeError):
    """Another live training owns the exp dir."""


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host (signal 0 probe)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def read_lock(path: str) -> dict[str, Any] | None:
    """The holder record of a lock file, {} when it is unreadable, None when there is none."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def describe_holder(holder: dict[str, Any]) -> str:
    """'pid 123 on host h since 2026-01-01 10:00:00 UTC' for messages."""
    since = holder.get("start_time")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if isinstance(since, (int, float)) else "?"
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} since {when}"


class ExpDirLock:
    """exp_dir/.lock owned by this process between acquire() and release() (also a context manager)."""

    def __init__(self, exp_dir: str) -> None:
        self.exp_dir = exp_dir
        self.path = os.path.join(exp_dir, LOCK_NAME)
        self.token = uuid.uuid4().hex
        self.held = False

    def _try_create(self) -> bool:
        """Create the lock file exclusively; False when it already exists."""
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        record = {"pid": os.getpid(), "host": socket.gethostname(), "start_time": time.time(), "token": self.token}
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        return True

    def acquire(self) -> str | None:
        """Take the lock; returns a message when a stale lock was taken over (to be logged), else None.

        Raises ExpDirLockedError naming the holder when a live training (or one on another host) holds it.
        """
        os.makedirs(self.exp_dir, exist_ok=True)
        note = None
        for _ in range(3):
            if self._try_create():
                self.held = True
                return note
            holder = read_lock(self.path)
            if holder is None:  # released between our attempt and the read: try again
                continue
            if not holder:
                raise ExpDirLockedError(
                    f"{self.exp_dir} is locked by {self.path}, which is unreadable (a training starting this "
                    f"instant, or a damaged file); if no training uses {self.exp_dir}, delete {self.path}")
            same_host = holder.get("host") == socket.gethostname()
            pid = int(holder.get("pid", -1)) if str(holder.get("pid", "")).lstrip("-").isdigit() else -1
            if same_host and pid != os.getpid() and not pid_alive(pid):
                note = f"{self.path}: taking over a stale lock of {describe_holder(holder)} (process gone)"
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
                continue
            where = "this process" if same_host and pid == os.getpid() else describe_holder(holder)
            hint = "" if same_host else (f"; the holder runs on another host and cannot be checked from here: if it "
                                         f"is gone, delete {self.path}")
            raise ExpDirLockedError(f"{self.exp_dir} is in use by another training ({where}, lock {self.path}); "
                                    f"wait for it to finish or use another --exp_dir{hint}")
        raise ExpDirLockedError(f"{self.exp_dir}: could not take the lock {self.path} (contended)")

    def release(self) -> None:
        """Remove the lock file if it is still ours (never someone else's that took over)."""
        if not self.held:
            return
        self.held = False
        holder = read_lock(self.path)
        if holder and holder.get("token") == self.token:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def __enter__(self) -> ExpDirLock:
        note = self.acquire()
        if note:
            logger.warning(note)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
