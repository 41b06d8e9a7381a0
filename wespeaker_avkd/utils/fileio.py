"""Atomic file output: a reader never sees a half-written file, an interrupted writer leaves none behind."""
from __future__ import annotations

import contextlib
import errno
import io
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

PathLike = str | os.PathLike[str]   # the one path type of the package: a str or any os.PathLike
# errnos of a failed write (full disk, quota, file too large, I/O error): atomic_write names its output in them
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


def _umask() -> int:
    """The process umask: from /proc/self/status on Linux (thread-safe), else by setting and restoring it."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success fsync and rename it onto `path`, on error delete it (a
    failed write naming no file, such as a full disk, is raised again naming `path`). The file gets mode
    0666 & ~umask, as a plain open() would give it."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; the result gets what open() would give
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno in _WRITE_ERRNOS and err.filename is None:
            raise OSError(err.errno, err.strerror or str(err), path) from err  # name the output in the message
        raise


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """torch.save `obj` to `path` atomically (temporary file + rename); a full disk is an OSError(ENOSPC) naming
    `path`."""
    import torch  # local import: the scorer must stay importable without torch

    # Serialised in memory first: torch's own file writer turns a failed write (a full disk) into
    # "unexpected pos N vs M"; a plain write keeps the OSError and its errno.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_write(path, "wb") as f:
        f.write(buffer.getbuffer())
