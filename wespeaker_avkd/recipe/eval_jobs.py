"""The embedding and evaluation jobs: extraction (stages 4, 5, 6, 8), scoring, the teacher's KD export, the
KD-weight selection and the report. The tuning seed's systems (--tune true) embed and score no eval part, and
the report reads the eval seeds only.

Extraction lines are bin.extract's job table (exp_dir, data_dir, out_dir, mean 0|1, embedding scps or '-');
a stage's lines are dealt by whole systems (a system's parts differ a lot in size, and a process then loads
each model once) to min(jobs, systems) processes, each with a table of its own. Score lines are bin.score's
(embeddings, output dir, mean vector [, cohort embeddings, cohort utt2spk]); a stage scores one part in one
process.
"""
from __future__ import annotations

from wespeaker_avkd.recipe.jobfile import need, write_rows
from wespeaker_avkd.recipe.settings import PAIR, SINGLE_LOSSES, RecipeSettings, extractor
from wespeaker_avkd.recipe.tuned import tune_dir
from wespeaker_avkd.utils.errors import InputValueError
from wespeaker_avkd.utils.naming import TEACHER, TUNE_DIR, baseline_name, seed_dir_name, student_name

EXTRACT = ["python3", "-m", "wespeaker_avkd.bin.extract"]


def extract_line(settings: RecipeSettings, system: str, part: str, scps: tuple[str, ...] = ()) -> list[str]:
    """Embed data/<part> with the model of `system` (an exp dir) into <system>/embeddings/<part>."""
    mean = "1" if part == settings.mean_part else "0"
    return [system, f"{settings.data}/{part}", f"{system}/embeddings/{part}", mean, ",".join(scps) or "-"]


def _baselines(settings: RecipeSettings, seeds: tuple[str, ...]) -> list[str]:
    """The baseline exp dirs of these seeds, in run order."""
    return [settings.system_dir(seed, baseline_name(mod)) for seed in seeds for mod in PAIR]


def _tuning_runs(settings: RecipeSettings) -> list[str]:
    """The stage-6 tuning exp dirs of the current round, in run order."""
    return [tune_dir(settings, mod, loss, w) for mod in settings.modalities for loss in SINGLE_LOSSES
            for w in settings.weights_of(mod, loss)]


def _students(settings: RecipeSettings, seeds: tuple[str, ...] | None = None) -> list[str]:
    """The stage-7 student exp dirs of these seeds (default: the eval seeds), in run order."""
    return [settings.system_dir(seed, student_name(mod, combo)) for seed in (settings.seeds if seeds is None else seeds)
            for mod in settings.modalities for combo in settings.combos]


def extraction_lines(settings: RecipeSettings, stage: int) -> list[list[str]]:
    """The extraction table of `stage` (4, 5, 6 or 8), after its input checks."""
    if stage == 5:   # the teacher embeds each part from its seed's baseline embeddings of that part
        return [extract_line(settings, settings.system_dir(seed, TEACHER), part,
                             tuple(f"{mod}={settings.system_dir(seed, baseline_name(mod))}/embeddings/{part}/"
                                   "xvector.scp" for mod in PAIR))
                for seed in settings.train_seeds for part in settings.parts_of(seed)]
    if stage == 6:   # the tuning seed's baselines' dev scores (stage 4) are the selection's reference
        for system in _baselines(settings, (settings.tune_seed,)):
            need(f"{system}/embeddings/dev/xvector.scp", 4)
        return [extract_line(settings, d, part) for d in _tuning_runs(settings) for part in (settings.mean_part, "dev")]
    if stage not in (4, 8):
        raise InputValueError(f"stage {stage} extracts nothing (extraction stages: 4, 5, 6, 8)")
    if stage == 4:
        systems, made_by = [(seed, d) for seed in settings.train_seeds for d in _baselines(settings, (seed,))], 3
    else:   # students: the mean part, dev (the report chooses the best student on it) and eval
        systems, made_by = [(seed, d) for seed in settings.seeds for d in _students(settings, (seed,))], 7
    parts_of = settings.parts_of if stage == 4 else (lambda _seed: (settings.mean_part, "dev", "eval"))
    for part in dict.fromkeys(p for seed, _ in systems for p in parts_of(seed)):
        need(f"{settings.data}/{part}/utt2spk", "1-2")
    for _, system in systems:
        need(f"{system}/models/avg_model.pt", made_by)
    return [extract_line(settings, d, part) for seed, d in systems for part in parts_of(seed)]


def deal_systems(lines: list[list[str]], processes: int) -> list[list[list[str]]]:
    """Deal whole systems (all lines of one exp dir) round-robin, in order of first appearance, to at most
    `processes` shares; never an empty share."""
    order = list(dict.fromkeys(line[0] for line in lines))
    shares = max(0, min(processes, len(order)))
    rank = {system: i for i, system in enumerate(order)}
    return [[line for line in lines if rank[line[0]] % shares == i] for i in range(shares)]


def extraction_jobs(settings: RecipeSettings, stage: int, stem: str) -> list[list[str]]:
    """Stage's extraction processes; share i's table is written to <stem>.<i>.tsv (i from 1)."""
    shares = deal_systems(extraction_lines(settings, stage), settings.jobs)
    jobs = []
    for i, share in enumerate(shares, 1):
        write_rows(f"{stem}.{i}.tsv", share)
        jobs.append([*EXTRACT, "--jobs", f"{stem}.{i}.tsv", *extractor(settings, len(shares) > 1)])
    return jobs


def score_lines(settings: RecipeSettings, system: str, part: str) -> list[list[str]]:
    """Score `system`'s embeddings of data/<part> (its mean-part mean subtracted) into <system>/scores/<part>;
    with --score_norm asnorm also AS-normed into scores_asnorm/<part>, the cohort being the system's own
    mean-part embeddings, one mean per speaker of data/<mean part>/utt2spk."""
    emb, mean = f"{system}/embeddings/{part}/xvector.scp", f"{system}/embeddings/{settings.mean_part}/mean_vec.npy"
    lines = [[emb, f"{system}/scores/{part}", mean]]
    if settings.score_norm == "asnorm":
        lines.append([emb, f"{system}/scores_asnorm/{part}", mean,
                      f"{system}/embeddings/{settings.mean_part}/xvector.scp",
                      f"{settings.data}/{settings.mean_part}/utt2spk"])
    return lines


def scored_systems(settings: RecipeSettings, stage: int, part: str) -> list[str]:
    """The systems whose embeddings of `part` `stage` (4, 5, 6 or 8) scores, in run order: the tuning seed's
    baselines and teacher on dev only, the tuning runs (this round's) on dev only."""
    seeds = settings.train_seeds if part != "eval" else settings.seeds
    if stage == 4:
        return _baselines(settings, seeds)
    if stage == 5:
        return [settings.system_dir(seed, TEACHER) for seed in seeds]
    if stage == 6 and part == "dev":
        return _tuning_runs(settings)
    if stage == 8:
        return _students(settings)
    raise InputValueError(f"stage {stage} scores nothing on {part} (scoring stages: 4, 5, 8; 6 on dev)")


def score_jobs(settings: RecipeSettings, stage: int, part: str, stem: str) -> list[list[str]]:
    """One bin.score process over every system of `stage` on data/<part>'s trial lists; table in <stem>.tsv."""
    lists = [f"{settings.data}/{part}/trials/{t}" for t in settings.trials]
    for trials in lists:
        need(trials, 1)
    write_rows(f"{stem}.tsv", [line for system in scored_systems(settings, stage, part)
                               for line in score_lines(settings, system, part)])
    return [["python3", "-m", "wespeaker_avkd.bin.score", "--jobs", f"{stem}.tsv", "--trials", *lists, "--metrics",
             "--top_k", settings.top_n]]


def kd_export_jobs(settings: RecipeSettings) -> list[list[str]]:
    """Stage 5: every training seed's teacher embeddings of the training set exported as the KD targets of its
    students (the tuning runs' at the tuning seed)."""
    return [[*EXTRACT, "--exp_dir", settings.system_dir(seed, TEACHER), "--kd_export", "--train_scp",
             f"{settings.system_dir(seed, TEACHER)}/embeddings/train/xvector.scp"]
            for seed in settings.train_seeds]


def select_jobs(settings: RecipeSettings) -> list[list[str]]:
    """Stage 6: the KD weights chosen on dev from the tuning runs' scores over the grid the rounds grew from
    --tune_grid (--extend), the tuning seed's baselines for reference."""
    tune = f"{settings.exp}/{TUNE_DIR}"
    return [["python3", "-m", "wespeaker_avkd.bin.select_kd_weights", "--sweep_dir", tune,
             "--modalities", *settings.modalities, "--losses", *SINGLE_LOSSES, "--grid", *settings.grid, "--extend",
             "--dev_trials", *settings.trials, "--out", f"{tune}/kd_weights.yaml", "--table", f"{tune}/dev_results.md",
             "--baseline_dir", f"{settings.exp}/{seed_dir_name(settings.tune_seed)}"]]


def report_jobs(settings: RecipeSettings) -> list[list[str]]:
    """Stage 9: one report per score folder (scores -> exp/report, scores_asnorm -> exp/report_asnorm) of the
    eval seeds (never the tuning seed), with run.sh's command line (--command), after checking every report's
    inputs."""
    for scores in settings.score_dirs:
        made_by = "5" if scores == "scores" else f"5 with --score_norm {settings.score_norm}"
        for seed in settings.seeds:
            need(f"{settings.system_dir(seed, TEACHER)}/{scores}/eval/{settings.trials[0]}.score", made_by)
    return [["python3", "-m", "wespeaker_avkd.bin.report", "--exp", settings.exp, "--seeds", *settings.seeds,
             "--part", "eval", "--trials", *settings.trials, "--utt2spk", f"{settings.data}/eval/utt2spk",
             "--dev_part", "dev", "--dev_utt2spk", f"{settings.data}/dev/utt2spk",
             "--modalities", *settings.modalities, "--kd_combos", *settings.combos, "--scores_dir", scores,
             "--out", f"{settings.exp}/report{scores.removeprefix('scores')}",
             *(["--command", settings.command] if settings.command else [])]
            for scores in settings.score_dirs]
