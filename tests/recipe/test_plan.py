"""The recipe's planner (wespeaker_avkd/recipe, bin/plan.py): names from utils.naming, the dealing of extraction
work, score lines, the tuning seed (its own systems, never an eval seed's, never reported), the grid's rounds, the
trainer's launcher, the report's command line, and the `job` runner of one job line."""
import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from wespeaker_avkd.recipe import eval_jobs, train_jobs
from wespeaker_avkd.recipe.jobfile import MissingInputError, write_rows
from wespeaker_avkd.recipe.settings import RecipeSettings, trainer
from wespeaker_avkd.utils.errors import InputValueError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(ROOT, "egs", "voxceleb", "v_kd")
GRID = ("0.1", "1", "10", "100")


def settings(tmp_path, **changes) -> RecipeSettings:
    """The default run's settings with exp and data under tmp_path."""
    base = RecipeSettings(
        exp=f"{tmp_path}/exp", data=f"{tmp_path}/data", conf_dir="conf/toy", config="", seeds=("1",),
        modalities=("visual", "audio"), combos=("COS", "KL", "MMD", "COS+KL", "COS+MMD", "KL+MMD"), grid=GRID,
        trials=("O", "E", "H"), mean_part="train_mean", score_norm="none", top_n="300",
        kd_weights="conf/kd_weights.yaml",
        data_type="raw", aug=False, gpus="", jobs=2, nnodes=1, node_rank="0", master_addr="localhost",
        master_port="29500", overwrite=False, progress=True)
    return replace(base, **changes)


def _exp_dir(job):
    return job[job.index("--exp_dir") + 1]


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()


def test_system_names_are_the_studys(tmp_path, monkeypatch):
    """Every exp dir a stage trains is named as the report and the tuning selection read them."""
    monkeypatch.chdir(RECIPE)
    s = settings(tmp_path, seeds=("1", "2"), combos=("COS+KL",), modalities=("visual",), grid=("0.1",), tune=True,
                 tune_seed="101")
    exp = f"{tmp_path}/exp"
    assert [_exp_dir(j) for j in train_jobs.baseline_jobs(s)] == [
        f"{exp}/seed{n}/{m}_baseline" for n in (101, 1, 2) for m in ("audio", "visual")]
    for seed in ("101", "1", "2"):
        for part in s.parts_of(seed):
            for m in ("audio", "visual"):
                _touch(f"{exp}/seed{seed}/{m}_baseline/embeddings/{part}/xvector.scp")
        _touch(f"{exp}/seed{seed}/teacher/kd_export/xvector.scp")
    assert [_exp_dir(j) for j in train_jobs.teacher_jobs(s)] == [f"{exp}/seed{n}/teacher" for n in (101, 1, 2)]
    assert [_exp_dir(j) for j in train_jobs.student_jobs(s)] == [f"{exp}/seed1/visual_kd_cos_kl",
                                                                  f"{exp}/seed2/visual_kd_cos_kl"]
    for part in ("train_mean", "dev"):
        _touch(f"{tmp_path}/data/{part}/utt2spk")
    for t in s.trials:
        _touch(f"{tmp_path}/data/dev/trials/{t}")
    tuning = train_jobs.tuning_jobs(s)
    assert [_exp_dir(j) for j in tuning] == [f"{exp}/tune/visual_kd_{loss}_w0.1" for loss in ("cos", "kl", "mmd")]
    assert [j[-1] for j in tuning] == ["+kd.beta=0.1", "+kd.alpha=0.1", "+kd.gamma=0.1"]   # paper Eq. 7
    assert all(j[j.index("--seed") + 1] == "101" and j[j.index("--kd.teacher_dir") + 1] ==
               f"{exp}/seed101/teacher/kd_export" for j in tuning)   # the tuning seed's own teacher


def test_stage_inputs_name_the_stage_that_makes_them(tmp_path):
    s = settings(tmp_path)
    with pytest.raises(InputValueError, match=r"stage 6 tunes the KD weights only with --tune true"):
        train_jobs.tuning_jobs(s)
    with pytest.raises(MissingInputError, match=r"exp/seed7/teacher/kd_export/xvector.scp missing: run stage 5 first"):
        train_jobs.tuning_jobs(replace(s, tune=True, tune_seed="7"))
    with pytest.raises(MissingInputError, match=r"data/train/utt2spk missing: run stage 1-2 first"):
        eval_jobs.extraction_lines(s, 4)
    with pytest.raises(InputValueError, match="stage 4 trains nothing"):
        train_jobs.training_jobs(s, 4)


@pytest.mark.parametrize("systems,lines_per_system,processes,expected", [
    (1, 4, 2, 1),    # the default run's teacher: one system, two job slots -> one process, never an empty share
    (2, 2, 2, 2),
    (3, 2, 2, 2),
    (5, 1, 3, 3),
    (0, 0, 2, 0),
])
def test_extraction_deals_whole_systems(systems, lines_per_system, processes, expected):
    lines = [[f"exp/s{s}", f"data/p{p}", f"exp/s{s}/embeddings/p{p}", "0", "-"]
             for s in range(systems) for p in range(lines_per_system)]
    shares = eval_jobs.deal_systems(lines, processes)
    assert len(shares) == expected and all(shares)
    owners = [sorted({line[0] for line in share}) for share in shares]
    assert sorted(s for owner in owners for s in owner) == [f"exp/s{s}" for s in range(systems)]  # each once
    assert sorted(line for share in shares for line in share) == sorted(lines)                    # nothing split off
    if expected:
        assert owners[0][0] == "exp/s0" and (expected < 2 or owners[1][0] == "exp/s1")             # round robin


def test_extraction_jobs_write_one_table_per_process(tmp_path):
    s = settings(tmp_path, seeds=("1", "2"))
    for part in s.system_parts:
        _touch(f"{tmp_path}/data/{part}/utt2spk")
    for seed in s.seeds:
        for m in ("audio", "visual"):
            _touch(f"{tmp_path}/exp/seed{seed}/{m}_baseline/models/avg_model.pt")
    jobs = eval_jobs.extraction_jobs(s, 4, f"{tmp_path}/jobs/x")
    assert [j[4] for j in jobs] == [f"{tmp_path}/jobs/x.1.tsv", f"{tmp_path}/jobs/x.2.tsv"]
    assert jobs[0][5:] == ["--device", "cpu", "--num_threads", str(max(1, len(os.sched_getaffinity(0)) // 2)),
                           "--no_progress"]
    first = [line.split("\t") for line in open(jobs[0][4]).read().splitlines()]
    assert first[1] == [f"{tmp_path}/exp/seed1/audio_baseline", f"{tmp_path}/data/train_mean",
                        f"{tmp_path}/exp/seed1/audio_baseline/embeddings/train_mean", "1", "-"]
    assert {line[0] for line in first} == {f"{tmp_path}/exp/seed{n}/audio_baseline" for n in (1, 2)}


def test_score_lines_carry_the_cohort_with_asnorm(tmp_path):
    cosine = ["exp/s 1/embeddings/eval/xvector.scp", "exp/s 1/scores/eval",
              "exp/s 1/embeddings/train_mean/mean_vec.npy"]
    assert eval_jobs.score_lines(settings(tmp_path, data="D"), "exp/s 1", "eval") == [cosine]
    assert eval_jobs.score_lines(settings(tmp_path, data="D", score_norm="asnorm"), "exp/s 1", "eval") == [
        cosine, ["exp/s 1/embeddings/eval/xvector.scp", "exp/s 1/scores_asnorm/eval",
                 "exp/s 1/embeddings/train_mean/mean_vec.npy", "exp/s 1/embeddings/train_mean/xvector.scp",
                 "D/train_mean/utt2spk"]]


def test_trainer_launchers(tmp_path):
    cores = len(os.sched_getaffinity(0))
    assert trainer(settings(tmp_path)) == ["python3", "-m", "wespeaker_avkd.bin.train", "--device", "cpu",
                                           "--num_threads", str(max(1, cores // 2)), "--no_progress"]
    assert trainer(settings(tmp_path, jobs=1, overwrite=True)) == [
        "python3", "-m", "wespeaker_avkd.bin.train", "--device", "cpu", "--num_threads", str(cores), "--overwrite"]
    assert trainer(settings(tmp_path, gpus="3", jobs=1)) == [
        "env", "CUDA_VISIBLE_DEVICES=3", "python3", "-m", "wespeaker_avkd.bin.train", "--device", "cuda"]
    assert trainer(settings(tmp_path, gpus="0,1", jobs=1, progress=False))[:8] == [
        "env", "CUDA_VISIBLE_DEVICES=0,1", "torchrun", "--nnodes=1", "--node_rank=0", "--nproc_per_node=2",
        "--master_addr=localhost", "--master_port=29500"]


def _plan(*args, cwd=RECIPE):
    return subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.plan", *args], capture_output=True, text=True,
                          cwd=cwd, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)


def test_job_runs_one_line_as_an_argument_vector(tmp_path):
    hostile = "$(touch PWNED); `touch PWNED`"
    write_rows(str(tmp_path / "jobs"), [[sys.executable, "-c", "import sys; print(sys.argv[1])", hostile],
                                        [sys.executable, "-c", "import sys; sys.exit(3)"]])
    out = _plan("job", str(tmp_path / "jobs"), "1", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.splitlines()[1] == hostile, out.stderr
    assert out.stdout.startswith("# ") and not (tmp_path / "PWNED").exists()
    assert _plan("job", str(tmp_path / "jobs"), "2", cwd=tmp_path).returncode == 3
    bad = _plan("job", str(tmp_path / "jobs"), "3", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.splitlines() == [
        f"plan: {tmp_path}/jobs: no job '3' (the file lists jobs 1 to 2)"]
    with pytest.raises(InputValueError, match="holds a tab or a newline"):
        write_rows(str(tmp_path / "bad"), [["a\tb"]])


def test_plan_prints_job_lines_and_names_missing_inputs(tmp_path):
    common = ["--exp", str(tmp_path / "exp"), "--data", str(tmp_path / "data"), "--conf_dir", "conf/toy",
              "--config=", "--seeds", "1", "--modalities", "visual", "--kd_combos", "KL", "--tune_grid", "1",
              "--trials", "O", "--mean_part", "train", "--score_norm", "none", "--top_n", "300", "--kd_weights",
              "conf/kd_weights.yaml", "--data_type", "shard", "--aug", "false", "--gpus=", "--jobs", "1", "--nnodes",
              "1", "--node_rank", "0", "--master_addr", "h", "--master_port", "1", "--overwrite", "false",
              "--progress", "false", "--tune", "false", "--tune_seed", "101"]
    out = _plan("train", "3", *common)
    assert out.returncode == 2 and out.stderr.splitlines() == [
        f"plan: {tmp_path}/data/train/shard.list missing: run stage 2 first"]
    _touch(f"{tmp_path}/data/train/shard.list")
    out = _plan("train", "3", *common)
    assert out.returncode == 0, out.stderr
    jobs = [line.split("\t") for line in out.stdout.splitlines()]
    assert [j[j.index("--config") + 1] for j in jobs] == ["conf/toy/audio.yaml", "conf/toy/visual.yaml"]
    assert all(j[-9] == "+dataset_args.data_type=shard" and j[-4:-2] == ["--dev_eval.data", f"{tmp_path}/data/dev"]
               for j in jobs)
    assert _plan("parts", *common).stdout.split() == ["train", "dev", "eval"]
    assert _plan("check", *common).returncode == 0
    missing = _plan("check", *common[:5], str(tmp_path / "nowhere"), *common[6:])
    assert missing.returncode == 2 and f"{tmp_path}/nowhere/audio.yaml is missing (--conf_dir)" in missing.stderr


def test_the_tuning_seeds_systems_stay_off_eval_and_out_of_the_report(tmp_path):
    s = settings(tmp_path, seeds=("1", "2"), tune=True, tune_seed="101", modalities=("audio",), combos=("KL",))
    exp, data = f"{tmp_path}/exp", f"{tmp_path}/data"
    for part in s.system_parts:
        _touch(f"{data}/{part}/utt2spk")
    for trials in s.trials:
        for part in ("dev", "eval"):
            _touch(f"{data}/{part}/trials/{trials}")
    for seed in ("101", "1", "2"):
        for m in ("audio", "visual"):
            _touch(f"{exp}/seed{seed}/{m}_baseline/models/avg_model.pt")
        _touch(f"{exp}/seed{seed}/teacher/scores/eval/O.score")
    lines = eval_jobs.extraction_lines(s, 4)
    assert sorted({line[2].rsplit("/", 1)[1] for line in lines if "/seed101/" in line[0]}) == ["dev", "train",
                                                                                               "train_mean"]
    assert sorted({line[2].rsplit("/", 1)[1] for line in lines if "/seed1/" in line[0]}) == ["dev", "eval", "train",
                                                                                             "train_mean"]
    assert {line[2].rsplit("/", 1)[1] for line in eval_jobs.extraction_lines(s, 5)
            if line[0] == f"{exp}/seed101/teacher"} == {"train", "train_mean", "dev"}
    assert eval_jobs.scored_systems(s, 5, "dev") == [f"{exp}/seed{n}/teacher" for n in (101, 1, 2)]
    assert eval_jobs.scored_systems(s, 5, "eval") == [f"{exp}/seed{n}/teacher" for n in (1, 2)]
    assert [j[j.index("--exp_dir") + 1] for j in eval_jobs.kd_export_jobs(s)] == [
        f"{exp}/seed{n}/teacher" for n in (101, 1, 2)]
    report = eval_jobs.report_jobs(replace(s, command="egs/voxceleb/run.sh --seeds '1 2' --tune true"))[0]
    assert report[report.index("--seeds") + 1:report.index("--part")] == ["1", "2"]
    assert report[-2:] == ["--command", "egs/voxceleb/run.sh --seeds '1 2' --tune true"]
    assert "--command" not in eval_jobs.report_jobs(s)[0]
    select = eval_jobs.select_jobs(s)[0]
    assert select[select.index("--baseline_dir") + 1] == f"{exp}/seed101" and "--extend" in select


def test_students_are_extracted_and_scored_on_dev_and_eval(tmp_path):
    s = settings(tmp_path, modalities=("visual",), combos=("KL",))
    for part in s.system_parts:
        _touch(f"{tmp_path}/data/{part}/utt2spk")
    _touch(f"{tmp_path}/exp/seed1/visual_kd_kl/models/avg_model.pt")
    assert [line[2] for line in eval_jobs.extraction_lines(s, 8)] == [
        f"{tmp_path}/exp/seed1/visual_kd_kl/embeddings/{part}" for part in ("train_mean", "dev", "eval")]
    assert eval_jobs.scored_systems(s, 8, "dev") == [f"{tmp_path}/exp/seed1/visual_kd_kl"]


def test_a_tuning_run_linked_as_a_student_by_earlier_code_is_dropped(tmp_path, monkeypatch):
    monkeypatch.chdir(RECIPE)
    s = settings(tmp_path, modalities=("visual",), combos=("KL",), kd_weights="conf/kd_weights.yaml")
    _touch(f"{tmp_path}/exp/tune/visual_kd_kl_w10/models/avg_model.pt")
    _touch(f"{tmp_path}/exp/seed1/teacher/kd_export/xvector.scp")
    link = tmp_path / "exp" / "seed1" / "visual_kd_kl"
    os.symlink("../tune/visual_kd_kl_w10", link)
    jobs = train_jobs.student_jobs(s)
    assert not os.path.lexists(link) and (tmp_path / "exp/tune/visual_kd_kl_w10/models/avg_model.pt").exists()
    assert [_exp_dir(j) for j in jobs] == [str(link)] and jobs[0][jobs[0].index("--seed") + 1] == "1"


def _plan_args(tmp_path, *more):
    return ["--exp", str(tmp_path / "exp"), "--data", str(tmp_path / "data"), "--conf_dir", "conf/toy", "--config=",
            "--seeds", "1", "2", "--modalities", "audio", "--kd_combos", "KL", "--tune_grid", "1", "10", "--trials",
            "O", "--mean_part", "train", "--score_norm", "none", "--top_n", "300", "--kd_weights",
            "conf/kd_weights.yaml", "--data_type", "raw", "--aug", "false", "--gpus=", "--jobs", "1", "--nnodes", "1",
            "--node_rank", "0", "--master_addr", "h", "--master_port", "1", "--overwrite", "false", "--progress",
            "false", "--tune", "true", *more]


def test_plan_refuses_a_tuning_seed_among_the_eval_seeds(tmp_path):
    out = _plan("parts", *_plan_args(tmp_path, "--tune_seed", "2"))
    assert out.returncode == 2 and out.stderr.splitlines() == [
        "plan: --seeds 1 2 holds the tuning seed 2: the eval seeds must differ from --tune_seed (a model tuned on "
        "dev is no eval sample)"]


def _dev_eer(tmp_path, run, eer):
    path = tmp_path / "exp" / "tune" / run / "scores" / "dev" / "O.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"eer": eer}))


def test_rounds_grow_the_grid_until_the_dev_eer_turns(tmp_path):
    """Round 1 trains --tune_grid; while a loss's best weight is at an edge the next round trains the log step
    beyond it (each run once); tune_next says 'more' until every loss turns."""
    _touch(f"{tmp_path}/exp/seed101/teacher/kd_export/xvector.scp")
    _touch(f"{tmp_path}/data/train/utt2spk")
    _touch(f"{tmp_path}/data/dev/utt2spk")
    _touch(f"{tmp_path}/data/dev/trials/O")
    args = _plan_args(tmp_path, "--tune_seed", "101")

    def trained(tune_round):
        out = _plan("train", "6", *args, "--tune_round", str(tune_round))
        assert out.returncode == 0, out.stderr
        return [_exp_dir(line.split("\t")).rsplit("/", 1)[1] for line in out.stdout.splitlines()]

    def next_round(tune_round):
        out = _plan("tune_next", *args, "--tune_round", str(tune_round))
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert trained(1) == [f"audio_kd_{loss}_w{w}" for loss in ("cos", "kl", "mmd") for w in ("1", "10")]
    missing = _plan("tune_next", *args, "--tune_round", "1")
    assert missing.returncode == 2 and "a tuning run of round 1 has no dev result" in missing.stderr
    for loss, eers in {"cos": {"1": 0.2, "10": 0.3}, "kl": {"1": 0.3, "10": 0.2}, "mmd": {"1": 0.3, "10": 0.3}}.items():
        for w, eer in eers.items():
            _dev_eer(tmp_path, f"audio_kd_{loss}_w{w}", eer)
    assert next_round(1) == "more"   # COS best at 1 (bottom), KL at 10 (top), MMD tie -> 1 (bottom)
    assert trained(2) == ["audio_kd_cos_w0.1", "audio_kd_kl_w100", "audio_kd_mmd_w0.1"]
    for run, eer in {"audio_kd_cos_w0.1": 0.25, "audio_kd_kl_w100": 0.1, "audio_kd_mmd_w0.1": 0.4}.items():
        _dev_eer(tmp_path, run, eer)
    assert next_round(2) == "more"   # COS and MMD turn; KL still falls at the top
    assert trained(3) == ["audio_kd_kl_w1000"]
    _dev_eer(tmp_path, "audio_kd_kl_w1000", 0.15)
    assert next_round(3) == "done"
    assert trained(4) == []
