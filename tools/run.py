#!/usr/bin/env python3
"""Run a command, or an array of commands, on this machine with one log per job: the recipe's local job
runner, used like Kaldi's run.pl (egs/voxceleb/v_kd/cmd.sh).

    tools/run.py [--max-jobs-run N] [JOB=1:M] LOG COMMAND [ARG...]

With JOB=1:M the command runs M times; in LOG and in every ARG the word JOB (not inside a longer name) becomes
the job's index. At most N jobs run at once (default: all). Each job's output (stdout and stderr) goes to its
log, between a '# COMMAND' / '# Started at' header and an '# Ended (code C) at' footer; when the jobs run one at
a time it is also shown here. The command is an argument vector, executed as given: no shell, no evaluation.
Every job runs, even after one failed; then each failed job is named in one stderr line with its log (and the
log's last line when its output was not shown), and the exit status is the first failed job's. A bad command
line is one stderr line and exit status 2.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import IO

PROG = "run.py"
ARRAY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$")


class UsageError(Exception):
    """A bad command line of the runner."""


@dataclass
class Job:
    """One job of the array: its index, command, log file and, once started, its process."""

    index: int
    argv: list[str]
    log: str
    proc: subprocess.Popen | None = None
    logf: IO[bytes] | None = None
    output_start: int = 0       # where the job's own output starts in its log (after the header)
    started: float = 0.0
    code: int | None = None     # exit status once finished (127: the program could not be started)
    shown: bool = False         # output also copied to this process's stdout


def parse(argv: list[str]) -> tuple[int, str | None, int, int, str, list[str]]:
    """(max jobs at once (0: all), array variable or None, first, last, log template, command)."""
    max_jobs = 0
    while argv and argv[0] in ("--max-jobs-run", "--max_jobs_run"):
        if len(argv) < 2 or not argv[1].isdigit() or int(argv[1]) < 1:
            raise UsageError(f"{argv[0]} needs a positive integer")
        max_jobs, argv = int(argv[1]), argv[2:]
    if argv and argv[0].startswith("-"):
        raise UsageError(f"unknown option {argv[0]}")
    name, first, last = None, 1, 1
    match = ARRAY.match(argv[0]) if argv else None
    if match:
        name, first, last = match.group(1), int(match.group(2)), int(match.group(3))
        if first > last:
            raise UsageError(f"{argv[0]}: an empty job range")
        argv = argv[1:]
    if len(argv) < 2:
        raise UsageError("usage: run.py [--max-jobs-run N] [JOB=1:M] LOG COMMAND [ARG...]")
    return max_jobs, name, first, last, argv[0], argv[1:]


def substitute(word: str, name: str | None, index: int) -> str:
    """`word` with the array variable (as a whole word) replaced by the job index."""
    if name is None:
        return word
    return re.sub(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", str(index), word)


def start(job: Job, show: bool) -> None:
    """Open the job's log, write its header and start it."""
    os.makedirs(os.path.dirname(job.log) or ".", exist_ok=True)
    job.logf = open(job.log, "wb")
    job.logf.write(f"# {shlex.join(job.argv)}\n# Started at {time.ctime()}\n".encode())
    job.logf.flush()
    job.output_start, job.started, job.shown = job.logf.tell(), time.monotonic(), show
    try:
        job.proc = subprocess.Popen(job.argv, stdout=subprocess.PIPE if show else job.logf,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    except OSError as err:
        job.logf.write(f"{PROG}: cannot run {job.argv[0]}: {err.strerror}\n".encode())
        job.code = 127


def relay(job: Job) -> None:
    """Copy a shown job's output to the log and to this stdout as it comes (progress bars included)."""
    out = sys.stdout.buffer
    while chunk := os.read(job.proc.stdout.fileno(), 65536):
        job.logf.write(chunk)
        job.logf.flush()
        out.write(chunk)
        out.flush()


def finish(job: Job) -> None:
    """Wait for the job (if it started), note its exit status and close its log with the footer."""
    if job.proc is not None:
        if job.shown:
            relay(job)
        code = job.proc.wait()
        job.code = 128 - code if code < 0 else code   # killed by signal N: 128 + N, as a shell reports it
    job.logf.flush()
    job.logf.write(f"# Ended (code {job.code}) at {time.ctime()}, elapsed time "
                   f"{time.monotonic() - job.started:.0f} seconds\n".encode())
    job.logf.close()


def last_output_line(job: Job) -> str:
    """The last non-empty line the job wrote (its one-line error, for a failed job), '' when none."""
    with open(job.log, "rb") as f:
        f.seek(job.output_start)
        lines = [line.strip() for line in f.read().decode(errors="replace").splitlines()]
    lines = [line for line in lines[:-1] if line]   # the last line is the footer
    return lines[-1] if lines else ""


def run_all(jobs: list[Job], max_jobs: int) -> None:
    """Run the jobs in order, at most max_jobs at once (shown here when one runs at a time)."""
    show = min(max_jobs, len(jobs)) == 1
    running: list[Job] = []
    for job in jobs:
        while len(running) >= max_jobs:
            running = [j for j in running if j.proc is not None and j.proc.poll() is None]
            if len(running) >= max_jobs:
                time.sleep(0.2)
        start(job, show)
        if show:
            finish(job)
        else:
            running.append(job)
    for job in jobs:
        if job.logf is not None and not job.logf.closed:
            finish(job)


def main(argv: list[str]) -> int:
    """Run the job array of argv; report the failed jobs."""
    try:
        max_jobs, name, first, last, log, command = parse(argv)
    except UsageError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    jobs = [Job(i, [substitute(w, name, i) for w in command], substitute(log, name, i)) for i in range(first, last + 1)]
    try:
        run_all(jobs, max_jobs or len(jobs))
    except KeyboardInterrupt:   # the jobs got the terminal's SIGINT too; stop the rest and say so in one line
        for job in jobs:
            if job.proc is not None and job.proc.poll() is None:
                job.proc.terminate()
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    failed = [job for job in jobs if job.code]
    for job in failed:
        last_line = "" if job.shown else last_output_line(job)
        print(f"{PROG}: job {job.index} failed (exit {job.code}): see {job.log}" + (f" ({last_line})" if last_line
              else ""), file=sys.stderr)
    return failed[0].code if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
