"""The recipe's planner (wespeaker_avkd/recipe, bin/plan.py): names from utils.naming, the dealing of extraction
work, score lines, the tuning-run reuse, the trainer's launcher, and the `job` runner of one job line."""
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import yaml

from wespeaker_avkd.recipe import eval_jobs, train_jobs, tuned
from wespeaker_avkd.recipe.jobfile import MissingInputError, write_rows
from wespeaker_avkd.recipe.settings import RecipeSettings, trainer
from wespeaker_avkd.utils.errors import InputValueError
from wespeaker_avkd.utils.yaml_io import YamlError

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
    s = settings(tmp_path, seeds=("1", "2"), combos=("COS+KL",), modalities=("visual",), grid=("0.1",))
    exp = f"{tmp_path}/exp"
    assert [_exp_dir(j) for j in train_jobs.baseline_jobs(s)] == [
        f"{exp}/seed{n}/{m}_baseline" for n in (1, 2) for m in ("audio", "visual")]
    for seed in ("1", "2"):
        for part in s.system_parts:
            for m in ("audio", "visual"):
                _touch(f"{exp}/seed{seed}/{m}_baseline/embeddings/{part}/xvector.scp")
        _touch(f"{exp}/seed{seed}/teacher/kd_export/xvector.scp")
    assert [_exp_dir(j) for j in train_jobs.teacher_jobs(s)] == [f"{exp}/seed1/teacher", f"{exp}/seed2/teacher"]
    assert [_exp_dir(j) for j in train_jobs.student_jobs(s)] == [f"{exp}/seed1/visual_kd_cos_kl",
                                                                  f"{exp}/seed2/visual_kd_cos_kl"]
    for part in ("train_mean", "dev"):
        _touch(f"{tmp_path}/data/{part}/utt2spk")
    for t in s.trials:
        _touch(f"{tmp_path}/data/dev/trials/{t}")
    tuning = train_jobs.tuning_jobs(s)
    assert [_exp_dir(j) for j in tuning] == [f"{exp}/tune/visual_kd_{loss}_w0.1" for loss in ("cos", "kl", "mmd")]
    assert [j[-1] for j in tuning] == ["+kd.beta=0.1", "+kd.alpha=0.1", "+kd.gamma=0.1"]   # paper Eq. 7


def test_stage_inputs_name_the_stage_that_makes_them(tmp_path):
    s = settings(tmp_path)
    with pytest.raises(MissingInputError, match=r"exp/seed1/teacher/kd_export/xvector.scp missing: run stage 5 first"):
        train_jobs.tuning_jobs(s)
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


@pytest.mark.parametrize("entry,loss,expected", [
    ({"alpha": 10.0, "beta": 0.0, "gamma": 0.0}, "KL", "10"),
    ({"alpha": 0.0, "beta": 0.1, "gamma": 0.0}, "COS", "0.1"),
    ({"gamma": 100}, "MMD", "100"),
    ({"alpha": 0.0, "beta": 0.0, "gamma": 3.0}, "MMD", ""),         # not a grid value: no tuning run
    ({"alpha": 1.0, "beta": 1.0, "gamma": 0.0}, "KL", ""),          # two losses: not the tuning run
    ({"losses": [{"name": "KL", "weight": 1.0}]}, "KL", ""),        # another form: not matched
])
def test_chosen_entry(entry, loss, expected):
    assert tuned.chosen_entry({"visual": {loss: entry}}, "visual", loss, GRID) == expected
    assert tuned.chosen_entry({"visual": {loss: entry}}, "audio", loss, GRID) == ""


def test_link_tuned_reuses_only_a_finished_matching_run(tmp_path):
    weights = tmp_path / "w.yaml"
    weights.write_text(yaml.safe_dump({"visual": {"KL": {"alpha": 10.0}, "COS": {"beta": 3.0}}}))
    s = settings(tmp_path, kd_weights=str(weights), modalities=("visual",), combos=("KL", "COS", "COS+KL"))
    assert tuned.link_tuned(s) == []                       # the tuning run has not finished
    _touch(f"{tmp_path}/exp/tune/visual_kd_kl_w10/models/avg_model.pt")
    link = tmp_path / "exp" / "seed1" / "visual_kd_kl"
    assert tuned.link_tuned(s) == [f"{link} -> {tmp_path}/exp/tune/visual_kd_kl_w10 (trained during tuning with "
                                   "the chosen weight 10)"]
    assert os.readlink(link) == "../tune/visual_kd_kl_w10" and (link / "models" / "avg_model.pt").exists()
    weights.write_text(yaml.safe_dump({"visual": {"KL": {"alpha": 1.0}}}))
    assert tuned.link_tuned(s) == [] and not os.path.lexists(link)   # a stale link is dropped
    (link / "models").mkdir(parents=True)                             # a student trained here stays
    assert tuned.link_tuned(replace(s, kd_weights=str(tmp_path / "none.yaml"), combos=("KL",))) == []


def test_link_tuned_refuses_a_yaml_bomb_naming_it(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(7)))
    with pytest.raises(YamlError, match=f"^{bomb}: its aliases expand"):
        tuned.link_tuned(settings(tmp_path, kd_weights=str(bomb), combos=("KL",)))


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
              "--progress", "false"]
    out = _plan("train", "3", *common)
    assert out.returncode == 2 and out.stderr.splitlines() == [
        f"plan: {tmp_path}/data/train/shard.list missing: run stage 2 first"]
    _touch(f"{tmp_path}/data/train/shard.list")
    out = _plan("train", "3", *common)
    assert out.returncode == 0, out.stderr
    jobs = [line.split("\t") for line in out.stdout.splitlines()]
    assert [j[j.index("--config") + 1] for j in jobs] == ["conf/toy/audio.yaml", "conf/toy/visual.yaml"]
    assert all(j[-7] == "+dataset_args.data_type=shard" for j in jobs)
    assert _plan("parts", *common).stdout.split() == ["train", "dev", "eval"]
    assert _plan("check", *common).returncode == 0
    missing = _plan("check", *common[:5], str(tmp_path / "nowhere"), *common[6:])
    assert missing.returncode == 2 and f"{tmp_path}/nowhere/audio.yaml is missing (--conf_dir)" in missing.stderr
