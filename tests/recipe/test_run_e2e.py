"""The whole recipe (stages 1-9 of egs/voxceleb/run.sh) on a tiny corpus with tiny configs: two eval seeds, the
KD-weight tuning on dev at its own seed (which must never read an eval list, nor become an eval student), the
students and the report; every stage but the tuning with --score_norm asnorm (AS-normed scores beside the cosine
ones, a second report)."""
import json
import os
import subprocess

import numpy as np
import pytest
import yaml

from wespeaker_avkd.config.train_config import load_saved_config
from wespeaker_avkd.scoring import read_score_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(ROOT, "egs", "voxceleb", "run.sh")
TINY = os.path.join(ROOT, "egs", "voxceleb", "v_kd", "conf", "tiny")
SEEDS = ("1", "2")
COMBOS = ("KL", "COS+KL")           # one single-loss student (never a tuning run) and one pair
TUNE_SEED = "101"                   # run.sh's default --tune_seed
STUDENTS = ["visual_kd_kl", "visual_kd_cos_kl"]
GRID = ("1", "10")


def _run(tmp_path, *args):
    cmd = ["bash", RUN, "--data", str(tmp_path / "data"), "--fbank", str(tmp_path / "fbank"),
           "--exp", str(tmp_path / "exp"), "--corpus_config", os.path.join(TINY, "corpus.yaml"),
           "--conf_dir", TINY, "--config", str(tmp_path / "epochs.yaml"), "--progress", "false",
           "--seeds", " ".join(SEEDS), "--tune_grid", " ".join(GRID), "--modalities", "visual",
           "--kd_combos", " ".join(COMBOS), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3000, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def _check_asnorm(system_dir, part, trials):
    """The AS-normed scores of a list: the same trials as the cosine ones, other scores, metrics beside them."""
    raw = read_score_file(system_dir / "scores" / part / f"{trials}.score")
    norm = read_score_file(system_dir / "scores_asnorm" / part / f"{trials}.score")
    assert (norm.enroll, norm.test) == (raw.enroll, raw.test) and np.array_equal(norm.labels, raw.labels)
    assert not np.allclose(norm.scores, raw.scores), (system_dir, part, trials)
    record = json.load(open(system_dir / "scores_asnorm" / part / f"{trials}.json"))
    assert 0.0 <= record["eer"] <= 1.0 and record["num_trials"] == len(raw.scores)


@pytest.mark.slow
def test_seeds_tuning_students_report(tmp_path):
    (tmp_path / "epochs.yaml").write_text("num_epochs: 1\n")
    exp, data = tmp_path / "exp", tmp_path / "data"
    stdout = _run(tmp_path, "--stop_stage", "5", "--score_norm", "asnorm", "--tune", "true")
    assert "stage 6" not in stdout
    for part in ("train", "train_mean", "dev", "eval"):
        assert (data / part / "utt2spk").exists(), part
    for seed in SEEDS:
        for name in ("audio_baseline", "visual_baseline", "teacher"):
            d = exp / f"seed{seed}" / name
            assert (d / "embeddings" / "train_mean" / "mean_vec.npy").exists(), d  # the same mean for all
            for part in ("dev", "eval"):
                for t in ("O", "E", "H"):
                    record = json.load(open(d / "scores" / part / f"{t}.json"))
                    assert 0.0 <= record["eer"] <= 1.0 and record["num_trials"] > 0, (d, part, t)
                    _check_asnorm(d, part, t)
        assert (exp / f"seed{seed}" / "teacher" / "kd_export" / "xvector.scp").exists()
        cfg = yaml.safe_load(open(exp / f"seed{seed}" / "visual_baseline" / "config.yaml"))
        assert cfg["seed"] == int(seed) and cfg["num_epochs"] == 1
    for name in ("audio_baseline", "visual_baseline", "teacher"):   # the tuning seed's: dev, never eval
        d = exp / f"seed{TUNE_SEED}" / name
        assert (d / "scores" / "dev" / "O.json").exists() and not (d / "embeddings" / "eval").exists(), d
        assert not (d / "scores" / "eval").exists() and not (d / "scores_asnorm" / "eval").exists(), d
    assert (exp / f"seed{TUNE_SEED}" / "teacher" / "kd_export" / "xvector.scp").exists()

    # stage 6 reads dev only: with the eval part out of reach it still succeeds
    os.rename(data / "eval", tmp_path / "eval_hidden")
    try:
        _run(tmp_path, "--stage", "6", "--stop_stage", "6", "--tune", "true")
    finally:
        os.rename(tmp_path / "eval_hidden", data / "eval")
    tune = exp / "tune"
    weights = yaml.safe_load(open(tune / "kd_weights.yaml"))
    assert set(weights["visual"]) >= {"COS", "KL", "MMD"}
    assert "tried " in (tune / "dev_results.md").read_text()   # every loss's weights and where its EER turns
    grids = json.load(open(tune / "dev_results.json"))["grids"]["visual"]
    for loss in ("cos", "kl", "mmd"):
        assert set(GRID) <= set(grids[loss.upper()]["weights"])   # the grid only grows
        for w in grids[loss.upper()]["weights"]:
            d = tune / f"visual_kd_{loss}_w{w}"
            cfg = yaml.safe_load(open(d / "config.yaml"))
            assert cfg["seed"] == int(TUNE_SEED)
            assert cfg["kd"]["teacher_dir"].endswith(f"seed{TUNE_SEED}/teacher/kd_export")
            assert sorted(os.listdir(d / "scores")) == ["dev"] and not (d / "embeddings" / "eval").exists()
            assert not (d / "scores_asnorm").exists()  # stage 6 ran with the default --score_norm none

    stdout = _run(tmp_path, "--stage", "7", "--tune", "true", "--score_norm", "asnorm")
    # every eval-seed student is trained at its own seed: no tuning run is reused
    chosen = weights["visual"]["KL"]["alpha"]
    assert not (exp / "seed1" / "visual_kd_kl").is_symlink()
    for seed in SEEDS:
        for name in STUDENTS:
            d = exp / f"seed{seed}" / name
            cfg = yaml.safe_load(open(d / "config.yaml"))
            assert cfg["seed"] == int(seed) and cfg["kd"]["teacher_dir"].endswith(f"seed{seed}/teacher/kd_export")
            for part in ("dev", "eval"):   # dev: the report's choice of the best student
                for t in ("O", "E", "H"):
                    assert json.load(open(d / "scores" / part / f"{t}.json"))["num_trials"] > 0, (d, part, t)
                    _check_asnorm(d, part, t)
    # config.yaml records the kd block in its `losses:` form (every term, its weight and its defaults)
    kd = load_saved_config(str(exp / "seed2" / "visual_kd_kl" / "config.yaml")).kd
    assert kd.terms["kl"]["weight"] == float(chosen)
    for f in ("results.md", "results.json"):
        assert (exp / "report" / f).stat().st_size > 0, f
        assert (exp / "report_asnorm" / f).stat().st_size > 0, f
    assert "scores_asnorm" not in (exp / "report" / "results.md").read_text()
    assert json.load(open(exp / "report" / "results.json"))["settings"]["seeds_asked"] == [1, 2]   # no tuning seed
    asnorm_report = json.load(open(exp / "report_asnorm" / "results.json"))
    assert asnorm_report["settings"]["scores_dir"] == "scores_asnorm"
    assert asnorm_report["metrics"] != json.load(open(exp / "report" / "results.json"))["metrics"]
    for line in stdout.splitlines():
        if "stage " in line and " done in " in line:
            assert line.rstrip().endswith(" s")  # each stage's wall time is logged

    # a second pass over the student stages reuses the finished students (no new checkpoint, no re-extraction)
    ckpt = exp / "seed2" / "visual_kd_cos_kl" / "models" / "avg_model.pt"
    emb = exp / "seed2" / "visual_kd_cos_kl" / "embeddings" / "eval" / "xvector.scp"  # names a fresh ark when redone
    before = (ckpt.stat().st_mtime, emb.stat().st_mtime)
    _run(tmp_path, "--stage", "7", "--stop-stage", "8", "--tune", "true")
    assert (ckpt.stat().st_mtime, emb.stat().st_mtime) == before
