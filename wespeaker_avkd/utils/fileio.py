"""Atomic file output: a reader never sees a half-written file, an interrupted writer leaves none behind.

Every output goes through a temporary file created exclusively (a fresh unique name, O_EXCL, never following a
symlink planted in the directory) beside its destination, gets the mode a plain open() would give it
(0666 & ~umask) and is renamed onto the destination only when complete. A destination that exists and is not
a regular file (a device, a named pipe, a directory, a symlink to one of them) is refused before anything is
written: replacing it would destroy something that is not ours. A write that fails for lack of space raises
an OSError with errno ENOSPC naming the destination (utils.errors.one_line prints it as "disk full").
"""
from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from wespeaker_avkd.utils.errors import NamedError

PathLike = str | os.PathLike[str]   # the one path type of the package: a str or any os.PathLike


class OutputPathError(NamedError, ValueError):
    """An output path that exists and is not a regular file (device, pipe, socket, directory)."""


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


def default_file_mode() -> int:
    """The permission bits a plain open(path, 'w') gives a new file: 0666 & ~umask."""
    return 0o666 & ~_umask()


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_output_path(path: PathLike) -> None:
    """Refuse (OutputPathError naming it) an output path that exists, through any symlinks, as anything but a
    regular file; an absent path or a regular file (to be replaced) passes."""
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode):
        return
    kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
    via = f" (a symlink to {os.path.realpath(path)})" if os.path.islink(path) else ""
    raise OutputPathError(f"output {path} exists and is {kind}{via}; refusing to replace it (remove it or "
                          f"choose another output path)")


def _with_filename(err: OSError, path: str) -> OSError:
    """`err` naming `path` when it names no file (a failed write or fsync names none)."""
    if err.filename is not None:
        return err
    return OSError(err.errno, err.strerror or os.strerror(err.errno or 0), path)


def create_exclusive(path: PathLike) -> None:
    """Create `path` as a new empty file (O_EXCL | O_NOFOLLOW: never an existing file or a planted symlink)
    with the umask's mode; raises FileExistsError naming it when something is already there."""
    fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    os.close(fd)


@contextlib.contextmanager
def temp_path_beside(path: PathLike) -> Iterator[str]:
    """A fresh, exclusively created empty file beside `path` (mode 0666 & ~umask), for writers that need a file
    name (kaldiio); deleted when the block fails or leaves it in place. Publish it with replace_into."""
    path = os.fspath(path)
    check_output_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, default_file_mode())  # mkstemp creates 0600; the result gets what open() would give
        os.close(fd)
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def replace_into(tmp: PathLike, path: PathLike) -> None:
    """Rename the complete temporary file `tmp` onto `path` (refused when `path` is not a regular file)."""
    check_output_path(path)
    os.replace(os.fspath(tmp), os.fspath(path))


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success fsync and rename it onto `path`, on error delete it.
    The file gets mode 0666 & ~umask, as a plain open() would give it; see the module docstring for what is
    refused. An OSError of the write (a full disk) names `path`."""
    path = os.fspath(path)
    with temp_path_beside(path) as tmp:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        try:
            with open(tmp, mode, **kwargs) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:
            raise _with_filename(err, path) from err
        replace_into(tmp, path)


class _ErrorKeepingWriter(io.RawIOBase):
    """A write-only view of a binary file that remembers the first OSError of a write (torch.save turns it
    into an unrelated 'unexpected pos' RuntimeError)."""

    def __init__(self, f: IO[bytes]) -> None:
        super().__init__()
        self._f = f
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        try:
            return self._f.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def flush(self) -> None:
        self._f.flush()


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """torch.save `obj` to `path` atomically (temporary file + rename); a failed write (a full disk) raises
    the OSError naming `path`, not torch's 'unexpected pos'."""
    import torch  # local import: the scorer must stay importable without torch

    path = os.fspath(path)
    with atomic_write(path, "wb") as f:
        writer = _ErrorKeepingWriter(f)
        try:
            torch.save(obj, writer)
        except (RuntimeError, OSError) as err:
            if writer.error is not None:
                raise _with_filename(writer.error, path) from err
            raise
