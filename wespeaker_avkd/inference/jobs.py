"""The extraction job file: one job per line, read and run in one process (bin.extract --jobs).

A jobs file holds five TAB-separated fields per line (JOB_FIELDS; paths may contain spaces, not tabs); blank
lines and lines starting with '#' are skipped. Consecutive jobs of one exp dir share its loaded model
(extract.ModelCache); an error names the job's file and line.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from wespeaker_avkd.inference.extract import ModelCache, extract_embeddings
from wespeaker_avkd.utils.errors import InputValueError


@dataclasses.dataclass(frozen=True)
class ExtractJob:
    """One line of a jobs file: embed data_dir with exp_dir's model into out_dir."""

    exp_dir: str
    data_dir: str
    out_dir: str
    mean_vec: bool = False
    embedding_scps: dict[str, str] | None = None
    where: str = ""


JOB_FIELDS = ("exp_dir", "data_dir", "out_dir", "mean_vec (0|1)", "embedding_scps ('-' or MODALITY=PATH,...)")


def parse_embedding_scps(text: str, where: str) -> dict[str, str] | None:
    """'-' -> None; 'audio=a.scp,visual=v.scp' -> {'audio': 'a.scp', 'visual': 'v.scp'} (errors name `where`)."""
    if text == "-":
        return None
    out: dict[str, str] = {}
    for item in text.split(","):
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path:
            raise InputValueError(f"{where}: embedding_scps entry {item!r} is not MODALITY=PATH")
        if name.strip() in out:
            raise InputValueError(f"{where}: embedding_scps names modality {name.strip()!r} twice")
        out[name.strip()] = path
    return out


def read_jobs(path: str) -> list[ExtractJob]:
    """Parse a jobs file: one tab-separated job per line (JOB_FIELDS); blank lines and '#' comments skipped.
    Paths may contain spaces (not tabs). A malformed line raises ValueError naming the file and line."""
    jobs = []
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputValueError(f"{path}: cannot read the jobs file ({err})") from err
    for number, line in enumerate(lines, 1):
        where = f"{path}:{number}"
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != len(JOB_FIELDS):
            raise InputValueError(f"{where}: expected {len(JOB_FIELDS)} tab-separated fields "
                                  f"({', '.join(JOB_FIELDS)}), got {len(fields)}")
        exp_dir, data_dir, out_dir, mean, scps = fields
        for name, value in (("exp_dir", exp_dir), ("data_dir", data_dir), ("out_dir", out_dir)):
            if not value:
                raise InputValueError(f"{where}: field {name} is empty")
        if mean not in ("0", "1"):
            raise InputValueError(f"{where}: field mean_vec must be 0 or 1, got {mean!r}")
        jobs.append(ExtractJob(exp_dir, data_dir, out_dir, mean == "1", parse_embedding_scps(scps, where), where))
    if not jobs:
        raise InputValueError(f"{path}: no job in the jobs file")
    return jobs


def run_jobs(jobs: Sequence[ExtractJob], device: str = "cpu", progress: bool = True, force: bool = False,
             models: ModelCache | None = None) -> list[str]:
    """Run extraction jobs in order in this process; consecutive jobs of one exp dir share its loaded model.
    Returns the scp paths. An error names the job's file and line."""
    models = models or ModelCache()
    out = []
    for job in jobs:
        try:
            out.append(extract_embeddings(job.exp_dir, job.data_dir, job.out_dir, embedding_scps=job.embedding_scps,
                                          device=device, mean_vec=job.mean_vec, progress=progress, force=force,
                                          models=models))
        except Exception as err:
            if job.where and _reraisable(err):
                raise type(err)(f"job {job.where}: {err}") from err
            raise
    return out


def _reraisable(err: Exception) -> bool:
    """True when err's type can be rebuilt from one message (to prefix the job's location)."""
    try:
        type(err)("x")
    except Exception:
        return False
    return True
