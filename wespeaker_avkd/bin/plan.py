"""The recipe's planner: the job lines of one step of egs/voxceleb/v_kd/run.sh, and the runner of one job line.

    python -m wespeaker_avkd.bin.plan train 3 SETTINGS [--out FILE]      # stage 3's trainings
    python -m wespeaker_avkd.bin.plan extract 4 SETTINGS --out FILE      # + FILE's stem.<i>.tsv extraction tables
    python -m wespeaker_avkd.bin.plan score 4 dev SETTINGS --out FILE    # + FILE's stem.tsv score table
    python -m wespeaker_avkd.bin.plan kd_export|select|report SETTINGS [--out FILE]
    python -m wespeaker_avkd.bin.plan train 6 SETTINGS --tune_round R    # stage 6: round R's tuning runs
    python -m wespeaker_avkd.bin.plan tune_next SETTINGS --tune_round R  # 'more' (another round) or 'done'
    python -m wespeaker_avkd.bin.plan parts SETTINGS                     # the parts every system embeds
    python -m wespeaker_avkd.bin.plan check SETTINGS                     # the configs every stage reads exist
    python -m wespeaker_avkd.bin.plan job FILE N                         # run job N of FILE (a job array's JOB)

SETTINGS are run.sh's checked options (--exp, --data, --seeds, ...; every one required, see --help; --command
is the report's record of run.sh's command line, --tune_round stage 6's round, 1 by default). Stage 6's round R
trains the weights the grid grew to in its round R (analysis/tuning.py, from --tune_grid and the dev results
on disk); `tune_next` says on stdout whether round R+1 has any, and on stderr where each loss stands. A job
line is one command, its words tab-separated; with --out the lines go to FILE and the count is printed,
without it the lines are printed. `job` prints the command as a '# ' line and executes it in place (an
argument vector, never a shell string), so any Kaldi-style job command (cmd.sh) can run a job file as an array
job: `$cmd JOB=1:N LOG python3 -m wespeaker_avkd.bin.plan job FILE JOB`.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys

from wespeaker_avkd.analysis.tuning import MAX_ROUNDS, PENDING, GrownGrid, grown_grids
from wespeaker_avkd.recipe import eval_jobs, train_jobs
from wespeaker_avkd.recipe.jobfile import read_job, write_rows
from wespeaker_avkd.recipe.settings import SINGLE_LOSSES, RecipeSettings
from wespeaker_avkd.utils.errors import ArgumentParser, InputValueError, UsageError, run_main
from wespeaker_avkd.utils.naming import TUNE_DIR

SCALARS = ("exp", "data", "conf_dir", "config", "mean_part", "score_norm", "top_n", "kd_weights", "data_type",
           "gpus", "node_rank", "master_addr", "master_port", "tune_seed")
LISTS = ("seeds", "modalities", "kd_combos", "tune_grid", "trials")
FLAGS = ("aug", "overwrite", "progress", "tune")
STEPS = ("train", "extract", "score", "kd_export", "select", "report", "tune_next", "parts", "check")


def settings_parser() -> argparse.ArgumentParser:
    """The options every planning step takes: run.sh's settings, all required (run.sh holds the defaults)."""
    parser = argparse.ArgumentParser(add_help=False)
    for name in SCALARS:
        parser.add_argument(f"--{name}", required=True)
    for name in LISTS:
        parser.add_argument(f"--{name}", nargs="+", required=True)
    for name in FLAGS:
        parser.add_argument(f"--{name}", choices=("true", "false"), required=True)
    for name in ("jobs", "nnodes"):
        parser.add_argument(f"--{name}", type=int, required=True)
    parser.add_argument("--command", default="", help="run.sh's command line as typed (the report records it)")
    parser.add_argument("--tune_round", type=int, default=1, help="stage 6's round (1: --tune_grid)")
    parser.add_argument("--out", help="write the job lines to this file and print their count")
    return parser


def to_settings(args: argparse.Namespace) -> RecipeSettings:
    """RecipeSettings of the parsed options; the tuning seed may not be an eval seed."""
    if args.tune_seed in args.seeds:
        raise UsageError(f"--seeds {' '.join(args.seeds)} holds the tuning seed {args.tune_seed}: the eval seeds must "
                         "differ from --tune_seed (a model tuned on dev is no eval sample)")
    return RecipeSettings(
        exp=args.exp, data=args.data, conf_dir=args.conf_dir, config=args.config, seeds=tuple(args.seeds),
        modalities=tuple(args.modalities), combos=tuple(args.kd_combos), grid=tuple(args.tune_grid),
        trials=tuple(args.trials), mean_part=args.mean_part, score_norm=args.score_norm, top_n=args.top_n,
        kd_weights=args.kd_weights, data_type=args.data_type, aug=args.aug == "true", gpus=args.gpus,
        jobs=args.jobs, nnodes=args.nnodes, node_rank=args.node_rank, master_addr=args.master_addr,
        master_port=args.master_port, overwrite=args.overwrite == "true", progress=args.progress == "true",
        tune=args.tune == "true", tune_seed=args.tune_seed, command=args.command)


def tuning_state(settings: RecipeSettings, rounds: int) -> dict[str, dict[str, GrownGrid]]:
    """Every modality's and single loss's grid after at most `rounds` rounds (the dev results on disk)."""
    if not 1 <= rounds <= MAX_ROUNDS:
        raise UsageError(f"--tune_round {rounds}: stage 6 runs rounds 1 to {MAX_ROUNDS}")
    return grown_grids(f"{settings.exp}/{TUNE_DIR}", settings.modalities, SINGLE_LOSSES, settings.grid,
                       settings.trials, rounds)


def round_settings(settings: RecipeSettings, tune_round: int) -> RecipeSettings:
    """`settings` whose tuning weights are those stage 6 trains in round `tune_round` (the grid's growth then)."""
    if tune_round == 1:
        return settings
    state = tuning_state(settings, tune_round)
    return dataclasses.replace(settings, tune_weights={
        mod: {loss: g.added if g.rounds == tune_round else () for loss, g in per_loss.items()}
        for mod, per_loss in state.items()})


def tune_next(settings: RecipeSettings, tune_round: int) -> str:
    """'more' when round tune_round + 1 adds a weight for some loss, else 'done'; each loss's state on stderr."""
    state = tuning_state(settings, min(tune_round + 1, MAX_ROUNDS))
    more = False
    for mod, per_loss in state.items():
        for loss, grown in per_loss.items():
            if grown.status == PENDING and grown.rounds <= tune_round:
                raise InputValueError(f"{mod} {loss}: a tuning run of round {grown.rounds} has no dev result "
                                      "(train, extract and score stage 6's round first)")
            if grown.rounds == tune_round + 1:
                more = True
                print(f"  {mod} {loss}: best at an edge of the weights tried, round {tune_round + 1} adds "
                      + " ".join(grown.added), file=sys.stderr)
            else:
                print(f"  {mod} {loss}: {' '.join(grown.weights)} ({grown.status})", file=sys.stderr)
    return "more" if more else "done"


def plan_step(args: argparse.Namespace, settings: RecipeSettings) -> list[list[str]]:
    """The job lines of the parsed step; extraction and score tables are written beside --out."""
    stem = os.path.splitext(args.out)[0] if args.out else None
    if args.step in ("extract", "score") and stem is None:
        raise UsageError(f"{args.step} writes its tables beside --out: give --out FILE")
    if args.step in ("train", "extract", "score") and args.stage == 6:
        settings = round_settings(settings, args.tune_round)
    if args.step == "train":
        return train_jobs.training_jobs(settings, args.stage)
    if args.step == "extract":
        return eval_jobs.extraction_jobs(settings, args.stage, stem)
    if args.step == "score":
        return eval_jobs.score_jobs(settings, args.stage, args.part, stem)
    return {"kd_export": eval_jobs.kd_export_jobs, "select": eval_jobs.select_jobs,
            "report": eval_jobs.report_jobs}[args.step](settings)


def run_job(path: str, index: str) -> int:
    """Print job `index` of `path` as a '# ' line and replace this process with it."""
    argv = read_job(path, index)
    print("# " + shlex.join(argv), flush=True)
    os.execvp(argv[0], argv)
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    """plan STEP [STAGE [PART]] SETTINGS [--out FILE], or plan job FILE N."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    settings = settings_parser()
    for step in STEPS:
        sub = steps.add_parser(step, parents=[settings])
        if step in ("train", "extract", "score"):
            sub.add_argument("stage", type=int)
        if step == "score":
            sub.add_argument("part")
    job = steps.add_parser("job")
    job.add_argument("file")
    job.add_argument("index")
    for sub in steps.choices.values():
        sub.error = parser.error   # usage errors of a step are one line too
    return parser


def run(argv: list[str]) -> int:
    """Plan one step (print or write its job lines), or run one job line."""
    args = build_parser().parse_args(argv)
    if args.step == "job":
        return run_job(args.file, args.index)
    settings = to_settings(args)
    if args.step == "parts":
        print("\n".join(settings.system_parts))
        return 0
    if args.step == "check":
        train_jobs.check_confs(settings)
        return 0
    if args.step == "tune_next":
        print(tune_next(settings, args.tune_round))
        return 0
    jobs = plan_step(args, settings)
    if args.out:
        write_rows(args.out, jobs)
        print(len(jobs))
    else:
        print("".join("\t".join(job) + "\n" for job in jobs), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("plan", run, argv)


if __name__ == "__main__":
    sys.exit(main())
