"""Kaldi table values read without running anything: the one rule for every scp/ark the package reads.

Kaldi (and kaldiio) treat a table value such as `gunzip -c x.ark.gz |` or `| cmd` as a shell command, `-` as
stdin, `ark:x.ark` as an rspecifier, and kaldiio unpickles an ark entry that starts with `PKL`. Here a value
is only ever a file: `path` or `path:offset`, whose `path` is an existing regular file (a named pipe or a
device would block or stream). Every table the package reads goes through this module (data-dir tables in
`data/kaldi_dir.py`, embedding tables in `utils/embedding_table.py`, feature matrices in `data/features.py`,
the validator), and matrices are parsed from files opened here, so kaldiio never opens a name itself.
There is no opt-in for pipes: run your pipeline first and point the table at its output files.
"""
from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np

from wespeaker_avkd.utils.errors import NamedError


class TableError(NamedError, ValueError):
    """A malformed Kaldi table; the message names file:line and what was expected."""


# An rspecifier/wspecifier prefix (`ark:`, `scp:`, `ark,s,cs:`, ...): a table of tables, not a file.
_SPECIFIER = re.compile(r"^(ark|scp)(,[a-z]+)*:")
# Kaldi binary objects a table entry may hold: float/double matrices and vectors, compressed matrices.
_BINARY_TYPES = (b"FM ", b"DM ", b"FV ", b"DV ", b"CM ", b"CM2", b"CM3")


def rxfile_problem(value: str) -> str | None:
    """Why `value` is not a plain `path` or `path:offset` table value (a pipe, stdin, a specifier), else None."""
    if not value:
        return "an empty value (expected a file path)"
    if value[0] == "|" or value[-1] == "|":
        return f"'{value}' is a Kaldi pipe (it would run a command); only file paths are read"
    if value == "-":
        return "'-' (standard input); only file paths are read"
    if ":" in value and _SPECIFIER.match(value):
        return f"'{value}' is an rspecifier (ark:/scp:); only a file path or path:offset is read"
    return None  # the whole value is the path (this package allows spaces in paths; Kaldi does not)


def values_problem(values: list[str], several: bool) -> str | None:
    """Why the values of one table line are not plain file values: one value a line (`several` False: the
    tokens joined, as the readers join them), or each token (faces.scp); a line starting or ending with '|' is
    a pipe either way. None when they are."""
    line = " ".join(values)
    if not several or line[:1] == "|" or line[-1:] == "|":
        return rxfile_problem(line)
    return next((why for why in map(rxfile_problem, values) if why), None)


def check_rxfile(value: str, path: str, line: int) -> str:
    """`value` when it is a plain file value (see rxfile_problem), else TableError naming path:line."""
    problem = rxfile_problem(value)
    if problem:
        raise TableError(f"{path}:{line}: {problem}")
    return value


def split_offset(value: str) -> tuple[str, int | None]:
    """'path:offset' -> (path, offset); a value without a numeric ':offset' tail is a whole-file path."""
    path, sep, offset = value.rpartition(":")
    return (path, int(offset)) if sep and path and offset.isdigit() else (value, None)


def open_regular(path: str, what: str) -> BinaryIO:
    """Open `path` for binary reading when it is a regular file (symlinks followed); a FIFO, device or directory
    raises TableError naming `what` (opened non-blocking first, so a named pipe cannot stall the check)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise TableError(f"{what}: {path} is not a regular file (a named pipe, device or directory is "
                             "never read)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_object(f: BinaryIO) -> np.ndarray:
    """One Kaldi matrix or vector (binary or text) at the position of `f`; anything else kaldiio would accept
    (pickles, numpy files, audio) raises ValueError before it is parsed (callers name the entry, as for any
    corrupt one)."""
    from kaldiio.matio import read_kaldi  # kaldiio parses the matrix; the file is opened here

    head = f.read(5)
    f.seek(-len(head), os.SEEK_CUR)
    # A head cut short by the end of the file is left to the parser, which reports a truncated entry.
    binary = b"\0B".startswith(head[:2]) and any(t.startswith(head[2:5]) for t in _BINARY_TYPES)
    text = head.lstrip()[:1] == b"["
    if not (binary or text):
        raise ValueError(f"not a Kaldi matrix or vector (starts with {head!r}); only Kaldi binary or text "
                         "matrices are read from tables")
    return read_kaldi(f)


def read_rxfile(value: str, where: str) -> np.ndarray:
    """The matrix or vector at `value` ('path' or 'path:offset', checked by rxfile_problem); `where` names the
    table entry in errors."""
    problem = rxfile_problem(value)
    if problem:
        raise TableError(f"{where}: {problem}")
    path, offset = split_offset(value)
    with open_regular(path, where) as f:
        if offset is not None:
            f.seek(offset)
        return read_object(f)


def iter_scp_values(entries: Iterator[tuple[str, int, str]], table: str,
                    on_error: Callable[[str, int, str, Exception], Exception] | None = None,
                    ) -> Iterator[tuple[str, np.ndarray]]:
    """(key, matrix) of (key, line, value) scp entries in order, keeping one ark open while consecutive
    entries share it. `on_error(key, line, value, exc)` turns a read failure into the caller's error."""
    current, f = None, None
    try:
        for key, line, value in entries:
            check_rxfile(value, table, line)
            path, offset = split_offset(value)
            try:
                if path != current:
                    if f is not None:
                        f.close()
                    current, f = None, None
                    f = open_regular(path, f"{table}:{line}")
                    current = path
                if offset is not None:
                    f.seek(offset)
                else:
                    f.seek(0)
                mat = read_object(f)
            except TableError:
                raise
            except Exception as e:
                if on_error is None:
                    raise
                raise on_error(key, line, value, e) from e
            yield key, mat
    finally:
        if f is not None:
            f.close()


def iter_ark(path: str) -> Iterator[tuple[str, np.ndarray]]:
    """(key, matrix) of every entry of the ark file `path`, in file order (a regular file only)."""
    from kaldiio.matio import read_token

    with open_regular(path, path) as f:
        while True:
            key = read_token(f)
            if key is None:
                return
            yield key, read_object(f)
