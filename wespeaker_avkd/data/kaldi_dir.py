"""Kaldi data-dir tables (wav.scp, utt2spk, spk2utt, faces.scp, spk2id): read, write, speaker -> class id.

A table whose name ends in `.scp` (wav.scp, feats.scp, faces.scp, xvector.scp: Kaldi's name for a table of
file values) has every value checked by utils/kaldi_tables.py's rule when it is read: a file path or
path:offset, never a pipe (`cmd |`, `| cmd`), stdin (`-`) or an rspecifier (`ark:...`), refused with file:line.
`read_scp` applies the same rule to a table of any name."""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from wespeaker_avkd.utils.errors import NamedError
from wespeaker_avkd.utils.fileio import PathLike, atomic_write
from wespeaker_avkd.utils.kaldi_tables import TableError, values_problem

__all__ = ["TableError", "make_spk2id", "read_multi_table", "read_scp", "read_spk2id", "read_table",
           "subset_data_dir", "utt2spk_to_spk2utt", "write_spk2id", "write_table"]


class SameDirError(NamedError, ValueError):
    """An output data dir that is its own input (the same path, or one reached through a symlink)."""


def _iter_rows(path: PathLike):
    """Yield (line_no, key, rest_tokens) for every non-blank line of a Kaldi table."""
    path = os.fspath(path)
    try:
        with open(path, "r", encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                tokens = line.split()
                if not tokens:
                    continue
                yield line_no, tokens[0], tokens[1:]
    except UnicodeDecodeError:
        raise TableError(f"{path}:{_first_undecodable_line(path)}: not UTF-8 text (a binary file given as a "
                         "Kaldi table?)") from None


def _first_undecodable_line(path: str) -> int:
    """1-based number of the first line of `path` that is not UTF-8 (only called once decoding failed)."""
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return line_no
    return 0


def holds_files(path: PathLike) -> bool:
    """True for a table of file values by Kaldi's naming (`*.scp`), whose values read_table checks."""
    return os.fspath(path).endswith(".scp")


def _read_rows(path: PathLike, files: bool | None = None, multi: bool = False) -> dict[str, list[str]]:
    """{key: values} of a table; a key without values or a repeated key raises TableError naming file:line.
    With `files` (default: holds_files(path)) no line may be a pipe and its value (the rest of the line), or
    each of its values with `multi`, must be a plain file value (kaldi_tables' rule)."""
    if files is None:
        files = holds_files(path)
    table: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    for line_no, key, rest in _iter_rows(path):
        if not rest:
            raise TableError(f"{os.fspath(path)}:{line_no}: key '{key}' has no values (expected 'key value ...')")
        problem = values_problem(rest, several=multi) if files else None
        if problem:
            raise TableError(f"{os.fspath(path)}:{line_no}: {problem}")
        if key in table:
            raise TableError(f"{os.fspath(path)}:{line_no}: duplicate key '{key}' "
                             f"(first on line {first_line[key]})")
        table[key] = rest
        first_line[key] = line_no
    return table


def read_table(path: PathLike) -> dict[str, str]:
    """Read `key value...` lines into {key: rest of line}; duplicate keys or missing values raise TableError,
    and so does a value of a `*.scp` table that is not a plain file value (a pipe, stdin, a specifier)."""
    return {key: " ".join(rest) for key, rest in _read_rows(path).items()}


def read_multi_table(path: PathLike) -> dict[str, list[str]]:
    """Read `key v1 v2 ...` lines into {key: [v1, v2, ...]} (spk2utt, faces.scp); errors name file:line; each
    value of a `*.scp` table must be a plain file value."""
    return _read_rows(path, multi=True)


def read_scp(path: PathLike, multi: bool = False) -> dict[str, str] | dict[str, list[str]]:
    """A table of file values whatever its name (a user's --wav_scp): {key: value}, or {key: [values]} with
    `multi`; every value is checked like a `*.scp` table's (no pipes, stdin or specifiers)."""
    rows = _read_rows(path, files=True, multi=multi)
    return rows if multi else {key: " ".join(rest) for key, rest in rows.items()}


def write_table(path: PathLike, mapping: Mapping[str, str | Sequence[str]]) -> None:
    """Write {key: value or [values]} as Kaldi lines sorted by key (C locale order), atomically."""
    with atomic_write(path) as f:
        for key in sorted(mapping):
            value = mapping[key]
            if not isinstance(value, str):
                value = " ".join(str(v) for v in value)
            if not key or any(c.isspace() for c in key):
                raise TableError(f"{os.fspath(path)}: key {key!r} is empty or contains whitespace")
            f.write(f"{key} {value}\n")


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert utt2spk into spk2utt with utterances sorted."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return spk2utt


def make_spk2id(speakers: Iterable[str]) -> dict[str, int]:
    """Map speaker ids to class ids 0..C-1 by sorted speaker id (WeSpeaker convention)."""
    return {spk: i for i, spk in enumerate(sorted(set(speakers)))}


def write_spk2id(path: PathLike, spk2id: Mapping[str, int]) -> None:
    """Write `spk class_id` lines sorted by class id, atomically."""
    with atomic_write(path) as f:
        for spk, idx in sorted(spk2id.items(), key=lambda kv: kv[1]):
            f.write(f"{spk} {idx}\n")


def read_spk2id(path: PathLike) -> dict[str, int]:
    """Read a spk2id file written by write_spk2id; ids must be 0..C-1 without gaps or repeats."""
    spk2id: dict[str, int] = {}
    for key, value in read_table(path).items():
        try:
            spk2id[key] = int(value)
        except ValueError:
            raise TableError(f"{os.fspath(path)}: speaker '{key}' has non-integer class id '{value}'") from None
    if sorted(spk2id.values()) != list(range(len(spk2id))):
        raise TableError(f"{os.fspath(path)}: class ids must be 0..{len(spk2id) - 1} with no gap or repeat")
    return spk2id


# Tables keyed by utterance id that a data dir may hold (filtered by subset_data_dir).
UTT_TABLES = ("utt2spk", "wav.scp", "feats.scp", "faces.scp", "utt2meta")


def subset_data_dir(src: PathLike, dst: PathLike, num_utts: int) -> list[str]:
    """Write data dir `dst` with `num_utts` utterances of `src` evenly spaced over its sorted ids (all when it
    has fewer; Kaldi's utils/subset_data_dir.sh idea); every utterance table is filtered, spk2utt rebuilt.
    Returns the chosen ids."""
    import numpy as np  # local: keep this module importable by the torch-free scorer at no cost

    src, dst = os.fspath(src), os.fspath(dst)
    if os.path.realpath(src) == os.path.realpath(dst) or (
            os.path.isdir(src) and os.path.isdir(dst) and os.path.samefile(src, dst)):
        raise SameDirError(f"subset: the destination {dst} is the source data dir {src} "
                           f"({os.path.realpath(src)}); writing the subset there would cut the source; choose "
                           f"another --dst")
    utt2spk = read_table(os.path.join(src, "utt2spk"))
    utts = sorted(utt2spk)
    if num_utts < len(utts):
        utts = [utts[i] for i in np.linspace(0, len(utts) - 1, num_utts).round().astype(int)]
    keep = set(utts)
    os.makedirs(dst, exist_ok=True)
    for name in UTT_TABLES:
        path = os.path.join(src, name)
        if os.path.isfile(path):
            write_table(os.path.join(dst, name), {k: v for k, v in read_table(path).items() if k in keep})
    write_table(os.path.join(dst, "spk2utt"), utt2spk_to_spk2utt({u: utt2spk[u] for u in utts}))
    return utts
