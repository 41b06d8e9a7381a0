"""Named errors and the one-line form every entry point gives them.

A NamedError is a problem with the user's input (a config key, a data file, a checkpoint, an argument) whose
message already names the file, line or key and what was expected. Entry points run their `main` through
`run_main`: a NamedError (also a missing or forbidden path, an OSError naming its file such as a full disk, and
the classes registered with register_named) is printed as one line `<prog>: <message>` on stderr and the
process exits 2; anything else is a bug and keeps its traceback. InputValueError, InputKeyError and
UnreadableInputError are the general input errors of raise sites that have no more specific class.
`--debug` on the command line (or WESPEAKER_AVKD_DEBUG=1) shows the traceback of a named error too.
`ArgumentParser` is argparse's parser for entry points: it lists --debug in every --help and turns a usage error
(a missing or malformed option) into a UsageError, so that too is one line and exit 2.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
import typing
from collections.abc import Callable, Sequence

EXIT_NAMED_ERROR = 2
DEBUG_FLAG = "--debug"
DEBUG_ENV = "WESPEAKER_AVKD_DEBUG"


class NamedError(Exception):
    """Bad user input; the message names the file, line or key and what was expected (one line, exit 2)."""


class InputValueError(NamedError, ValueError):
    """A user's file, table or value holds something it may not (a ValueError, so older handlers still catch it)."""


class InputKeyError(NamedError, KeyError):
    """A key the user's tables must share is missing (an utterance, a speaker, a tensor name); a KeyError."""


class UnreadableInputError(NamedError, RuntimeError):
    """A user's file that cannot be read or decoded (audio, image); a RuntimeError, as the readers raised before."""


class UsageError(NamedError):
    """A bad command line (missing, unknown or malformed option); the message names the option."""


DEBUG_HELP = "on an input error, also print its traceback (default: one line 'PROG: message', exit status 2)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser that documents --debug and raises UsageError instead of printing usage + exit 2."""

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        """As argparse.ArgumentParser; adds the --debug option (run_main acts on it)."""
        super().__init__(*args, **kwargs)
        self.add_argument(DEBUG_FLAG, action="store_true", help=DEBUG_HELP)

    def error(self, message: str) -> typing.NoReturn:
        """Raise UsageError(message + a pointer to --help) for run_main to print as one line."""
        raise UsageError(f"{message} (see --help)")


def one_line(err: BaseException) -> str:
    """The message of `err` folded onto one line (newlines become '; ')."""
    text = str(err)
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
        text = err.args[0]  # str(KeyError) adds quotes around the message
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        where = f" writing {err.filename}" if err.filename else ""
        text = f"disk full{where} ({os.strerror(errno.ENOSPC)})"
    return "; ".join(part.strip() for part in text.splitlines() if part.strip()) or type(err).__name__


# Input-error classes that cannot derive from NamedError (the compiled scorer's ScoringError: layer 0 imports
# nothing of the package); their layer registers them with register_named.
_ALSO_NAMED: list[type[BaseException]] = []


def register_named(*error_types: type[BaseException]) -> None:
    """Count `error_types` as named errors (one line, exit 2) though they do not derive from NamedError."""
    _ALSO_NAMED.extend(t for t in error_types if t not in _ALSO_NAMED)


def is_named(err: BaseException) -> bool:
    """True for errors of the user's input: NamedError (and registered classes), a missing or forbidden path, and
    OSErrors that carry the file they concern."""
    if isinstance(err, (NamedError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
                        *_ALSO_NAMED)):
        return True  # the library raises these for a path the user gave, with a message naming it
    return isinstance(err, OSError) and (err.errno == errno.ENOSPC or err.filename is not None)


def debug_requested(argv: Sequence[str] | None) -> bool:
    """True when --debug is among `argv` (default sys.argv) or WESPEAKER_AVKD_DEBUG=1."""
    args = sys.argv[1:] if argv is None else argv
    return DEBUG_FLAG in args or os.environ.get(DEBUG_ENV) == "1"


def strip_debug(argv: Sequence[str] | None) -> list[str]:
    """`argv` (default sys.argv[1:]) without the --debug flag, for parsers that do not declare it."""
    return [a for a in (sys.argv[1:] if argv is None else argv) if a != DEBUG_FLAG]


def run_main(prog: str, main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Call main(args without --debug); a named error becomes one stderr line `prog: message` and exit 2."""
    try:
        rc = main(strip_debug(argv))
    except Exception as err:  # noqa: BLE001 -- split into named errors (one line) and bugs (traceback)
        if not is_named(err):
            raise
        if debug_requested(argv):
            traceback.print_exc()
        print(f"{prog}: {one_line(err)}", file=sys.stderr)
        return EXIT_NAMED_ERROR
    return 0 if rc is None else int(rc)
