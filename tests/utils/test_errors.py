"""utils/errors.py: named errors become one stderr line and exit 2; bugs keep their traceback."""
from __future__ import annotations

import errno
import os

import pytest

from wespeaker_avkd.data.kaldi_dir import TableError
from wespeaker_avkd.registry import RegistryError
from wespeaker_avkd.utils.errors import EXIT_NAMED_ERROR, NamedError, one_line, run_main
from wespeaker_avkd.utils.schema import ConfigError


def _raiser(err: BaseException):
    def main(argv: list[str]) -> int:
        raise err
    return main


@pytest.mark.parametrize("err", [NamedError("conf.yaml: key 'x' must be a number\n(got 'a')"),
                                 ConfigError("conf.yaml: key 'x' is not known"),
                                 TableError("data/feats.scp line 3: pipe specifiers are refused"),
                                 RegistryError("unknown model 'foo'"),
                                 FileNotFoundError(errno.ENOENT, "No such file or directory", "data/wav.scp"),
                                 OSError(errno.ENOSPC, "No space left on device", "exp/models/model_1.pt")])
def test_named_error_is_one_line_exit_2(err, capsys):
    assert run_main("prog", _raiser(err), []) == EXIT_NAMED_ERROR
    out = capsys.readouterr()
    lines = out.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("prog: ") and "Traceback" not in out.err
    assert out.out == ""


def test_registry_error_message_has_no_added_quotes():
    assert one_line(RegistryError("unknown model 'foo'")) == "unknown model 'foo'"


def test_disk_full_says_so():
    line = one_line(OSError(errno.ENOSPC, "No space left on device", "exp/models/model_1.pt"))
    assert line.startswith("disk full writing exp/models/model_1.pt")


def test_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        run_main("prog", _raiser(ZeroDivisionError("bug")), [])
    with pytest.raises(OSError):  # an OSError that names no file is not a named error
        run_main("prog", _raiser(OSError("weird")), [])


def test_debug_shows_traceback_and_is_stripped(capsys):
    seen = []

    def main(argv: list[str]) -> int:
        seen.append(list(argv))
        raise NamedError("bad key")

    assert run_main("prog", main, ["--x", "1", "--debug"]) == EXIT_NAMED_ERROR
    assert seen == [["--x", "1"]]
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1] == "prog: bad key"


def test_return_code_passes_through():
    assert run_main("prog", lambda argv: 0, []) == 0
    assert run_main("prog", lambda argv: None, []) == 0
    assert run_main("prog", lambda argv: 1, []) == 1


def test_full_disk_while_saving_a_checkpoint_names_the_file(tmp_path, monkeypatch):
    """torch's own writer reports a failed write as 'unexpected pos N vs M'; the save keeps the OSError."""
    import builtins
    import contextlib

    import torch

    from wespeaker_avkd.utils import fileio

    real_open = builtins.open

    class FullDisk(contextlib.AbstractContextManager):
        """The temporary file of atomic_write on a full disk: every write fails as the kernel's would."""

        def __init__(self, file):
            self.file = file

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            self.file.flush()

        def fileno(self):
            return self.file.fileno()

        def __exit__(self, *exc):
            self.file.close()

    def open_on_full_disk(path, *args, **kwargs):
        file = real_open(path, *args, **kwargs)
        return FullDisk(file) if os.fspath(path).endswith(".tmp") else file

    monkeypatch.setattr(fileio, "open", open_on_full_disk, raising=False)  # the module's open(): atomic_write's
    target = str(tmp_path / "model_1.pt")
    with pytest.raises(OSError) as err:
        fileio.atomic_torch_save({"w": torch.zeros(3)}, target)
    assert err.value.errno == errno.ENOSPC and err.value.filename == target
    assert one_line(err.value).startswith(f"disk full writing {target}")
    assert os.listdir(tmp_path) == []  # no temporary file left behind


def test_usage_error_is_one_line_and_help_lists_debug(capsys):
    from wespeaker_avkd.utils.errors import ArgumentParser

    def main(argv: list[str]) -> int:
        parser = ArgumentParser(prog="prog")
        parser.add_argument("--n", type=int, required=True)
        parser.parse_args(argv)
        return 0

    assert run_main("prog", main, ["--n", "x"]) == EXIT_NAMED_ERROR
    assert capsys.readouterr().err == "prog: argument --n: invalid int value: 'x' (see --help)\n"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--debug" in capsys.readouterr().out
