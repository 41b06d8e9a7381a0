"""The learning-curve file of a training, exp_dir/learning_curve.tsv: one row per epoch (the epoch, the training
means the trainer logged, the dev EER in % of each dev list as `dev_eer_<list>`, '-' where not measured).
Written by train/dev_curve.py, read by the report (analysis/learning_curves.py)."""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from wespeaker_avkd.utils.fileio import atomic_write

CURVE_FILE = "learning_curve.tsv"
MISSING = "-"


def curve_path(exp_dir: str) -> str:
    """exp_dir/learning_curve.tsv."""
    return os.path.join(exp_dir, CURVE_FILE)


EER_PREFIX = "dev_eer_"


def eer_column(trial_list: str) -> str:
    """The curve's column of one dev list's EER (in %)."""
    return f"{EER_PREFIX}{trial_list}"


def eer_lists(columns: Iterable[str]) -> list[str]:
    """The dev lists whose EER columns a curve has, in column order."""
    return [c[len(EER_PREFIX):] for c in columns if c.startswith(EER_PREFIX)]


def read_curve(path: str) -> list[dict[str, str]]:
    """The rows of a learning_curve.tsv as {column: text} (empty when the file does not exist)."""
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    if not lines:
        return []
    header = lines[0]
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        if len(cells) != len(header):
            raise ValueError(f"{path}:{number}: {len(cells)} columns, the header has {len(header)}")
        rows.append(dict(zip(header, cells)))
    return rows


def write_curve(path: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write rows ({column: value}; floats with 6 significant digits, None as '-') as a tsv, atomically; the
    columns are the union of the rows' keys in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with atomic_write(path, "w") as f:
        f.write("\t".join(columns) + "\n")
        for row in rows:
            f.write("\t".join(_cell(row.get(c)) for c in columns) + "\n")


def _cell(value: Any) -> str:
    """A tsv cell: '-' for None, 6 significant digits for floats."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
