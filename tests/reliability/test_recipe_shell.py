"""run.sh as a hostile or careless user meets it: option values are data, never code; runs that would do
nothing or build on missing inputs are refused with a message naming what to run; a failing job fails its
stage and names its log."""
import os
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(ROOT, "egs", "voxceleb", "v_kd")
RUN = os.path.join(ROOT, "egs", "voxceleb", "run.sh")


def _run(tmp_path, *args, cwd=None, timeout=300):
    """run.sh with data/fbank/exp under tmp_path (unless overridden by later args)."""
    cmd = ["bash", RUN, "--data", str(tmp_path / "data"), "--fbank", str(tmp_path / "fbank"),
           "--exp", str(tmp_path / "exp"), "--progress", "false", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd or tmp_path,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


def _pwned(tmp_path):
    """Every PWNED file a hostile value could have created (tmp tree, recipe dir, repository root)."""
    found = [os.path.join(d, "PWNED") for d in (RECIPE, ROOT, os.path.join(RECIPE, "local"))
             if os.path.exists(os.path.join(d, "PWNED"))]
    found += [str(p) for p in tmp_path.rglob("PWNED")]
    return found


HOSTILE = [
    ("--nj", "1;touch PWNED"),
    ("--nj", "a[$(touch PWNED)]"),
    ("--stage", "a[$(touch PWNED)]"),
    ("--stop_stage", "$(touch PWNED)"),
    ("--mean_utts", "x[$(touch PWNED)]"),
    ("--master_port", "1`touch PWNED`"),
    ("--node_rank", "0;touch PWNED"),
    ("--seeds", "1 $(touch PWNED)"),
    ("--trials", "O $(touch PWNED)"),
    ("--modalities", "visual;touch PWNED"),
    ("--kd_combos", "KL $(touch PWNED)"),
    ("--tune_grid", "1 `touch PWNED`"),
    ("--gpus", "0;touch PWNED"),
    ("--master_addr", "$(touch PWNED)"),
    ("--top_n", "1;touch PWNED"),
    ("--top_n", "a[$(touch PWNED)]"),
    ("--score_norm", "$(touch PWNED)"),
    ("--PATH", "/nowhere"),
    ("--a[$(touch PWNED)]", "1"),
]


@pytest.mark.parametrize("option,value", HOSTILE)
def test_hostile_option_values_are_refused_and_never_run(tmp_path, option, value):
    out = _run(tmp_path, option, value, "--stage", "3")
    assert out.returncode != 0
    assert "run.sh:" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert _pwned(tmp_path) == []
    assert not (tmp_path / "exp").exists()  # refused before any work


@pytest.mark.parametrize("option", ["--exp", "--data", "--fbank", "--config", "--conf_dir", "--kd_weights"])
def test_hostile_paths_stay_paths(tmp_path, option):
    """A path option holding shell syntax is used verbatim: the stage fails on the missing input it names."""
    value = str(tmp_path / "x $(touch PWNED) `touch PWNED`;touch PWNED")
    out = _run(tmp_path, option, value, "--stage", "3")
    assert out.returncode != 0 and ("missing" in out.stderr or "no such file" in out.stderr), out.stderr
    assert _pwned(tmp_path) == []


@pytest.mark.parametrize("args,message", [
    (["--stage", "10"], "selects nothing: the last stage is 9"),
    (["--stage", "5", "--stop_stage", "2"], "--stage 5 --stop_stage 2 selects no stage"),
    (["--stage", "abc"], "--stage must be a non-negative integer"),
    (["--stage", "0"], "--stage must be at least 1"),
    (["--stage", "08"], "--stage must be a non-negative integer"),
    (["--stop_stage", "12"], "the last stage is 9"),
    (["--nj", "0"], "--nj must be at least 1"),
    (["--seeds", ""], "--seeds must not be empty"),
    (["--tune", "yes"], "expects true or false"),
    (["--score_norm", "znorm"], "--score_norm must be none or asnorm, got znorm"),
    (["--score_norm", ""], "--score_norm must be none or asnorm"),
    (["--top_n", "0"], "--top_n must be at least 1"),
    (["--top_n", "3e2"], "--top_n must be a non-negative integer"),
    (["--stgae", "3"], "unknown option --stgae"),
    (["positional"], "unexpected argument"),
    (["--exp", "runs/JOB/exp"], "--exp may not contain the word JOB"),
])
def test_runs_that_select_nothing_or_mistype_are_refused(tmp_path, args, message):
    out = _run(tmp_path, *args)
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert "done" not in out.stdout
    assert not (tmp_path / "exp").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("stage,message", [
    ("2", "data/train/wav.scp missing: run stage 1 first"),
    ("3", "data/train/feats.scp missing: run stage 1-2 first"),
    ("5", "exp/seed1/audio_baseline/embeddings/train/xvector.scp missing: run stage 4 first"),
    ("7", "exp/seed1/teacher/kd_export/xvector.scp missing: run stage 5 first"),
    ("8", "data/train_mean/utt2spk missing: run stage 1-2 first"),
    ("9", "exp/seed1/teacher/scores/eval/O.score missing: run stage 5 first"),
])
def test_missing_input_names_the_stage_that_makes_it(tmp_path, stage, message):
    out = _run(tmp_path, "--stage", stage, "--stop_stage", stage)
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def _settings(tmp_path, *args):
    """The settings run.sh derives from its options (its own text up to local/settings.sh, then a dump): the audio
    input, and from the planner a student's kd configs (stage 7's first job) and the score folders (stage 4)."""
    text = open(os.path.join(RECIPE, "run.sh")).read()
    head = text[:text.index('. local/settings.sh "$@"')] + '. local/settings.sh "$@"\n'
    body = head + ('mkdir -p "$exp/seed1/teacher/kd_export" "$data/dev/trials"; touch "$data/dev/trials/"{O,E,H}\n'
                   'touch "$exp/seed1/teacher/kd_export/xvector.scp"\n'
                   'printf "%s\\n" "feat_source=$feat_source"\nplan train 7\n'
                   'plan score 4 dev --out "$exp/s.jobs" >/dev/null\n'
                   'cut -f2 "$exp/s.tsv"\n')
    out = subprocess.run(["bash", "-c", body, os.path.join(RECIPE, "run.sh"), "--exp", str(tmp_path / "exp"),
                          "--data", str(tmp_path / "data"), "--kd_combos", "KL", "--modalities", "audio", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    student = lines[1].split("\t")
    configs = [student[i + 1] for i, w in enumerate(student) if w == "--config"][1:]
    folders = sorted({line.split("/")[-2] for line in lines[2:]})
    return {"feat_source": lines[0].split("=", 1)[1], "KD": " ".join(f"--config {c}" for c in configs),
            "SCORES": " ".join(folders)}


def _conf_set(tmp_path, feat_source=None, kd=None):
    """A copy of conf/tiny with dataset_args.feat_source of audio.yaml set (None: key removed = auto) and,
    when kd is given, a kd.yaml of its own."""
    conf = tmp_path / "conf"
    shutil.copytree(os.path.join(RECIPE, "conf", "tiny"), conf)
    cfg = yaml.safe_load((conf / "audio.yaml").read_text())
    cfg["dataset_args"].pop("feat_source", None)
    if feat_source is not None:
        cfg["dataset_args"]["feat_source"] = feat_source
    (conf / "audio.yaml").write_text(yaml.safe_dump(cfg))
    if kd is not None:
        (conf / "kd.yaml").write_text(yaml.safe_dump({"kd": kd}))
    return conf


def test_settings_follow_the_options_and_confs(tmp_path):
    """One conf/kd.yaml for every set (a set's own kd.yaml merged over it); feat_source read through the
    trainer's config loader from the set's audio.yaml with --config merged over it; AS-norm adds a score dir."""
    default = _settings(tmp_path)
    assert default == {"feat_source": "feats", "KD": "--config conf/kd.yaml", "SCORES": "scores"}
    conf = _conf_set(tmp_path, "wav", kd={"temperature": 0.5})
    own = _settings(tmp_path, "--conf_dir", str(conf), "--score_norm", "asnorm")
    assert own == {"feat_source": "wav", "KD": f"--config conf/kd.yaml --config {conf}/kd.yaml",
                   "SCORES": "scores scores_asnorm"}
    overlay = tmp_path / "over.yaml"
    overlay.write_text("dataset_args:\n  feat_source: wav\n")
    assert _settings(tmp_path, "--config", str(overlay))["feat_source"] == "wav"
    assert _settings(tmp_path, "--conf_dir", str(_conf_set(tmp_path / "auto")))["feat_source"] == "auto"


def test_bad_feat_source_is_refused_before_any_work(tmp_path):
    overlay = tmp_path / "over.yaml"
    overlay.write_text("dataset_args:\n  feat_source: fbank\n")
    out = _run(tmp_path, "--config", str(overlay))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert f"{overlay}: config key 'dataset_args.feat_source': must be one of" in out.stderr, out.stderr
    assert not (tmp_path / "exp").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("feat_source,has_feats,message", [
    ("wav", True, "data/train/wav.scp missing: run stage 1 first"),
    ("feats", False, "data/train/feats.scp missing: run stage 1-2 first"),
    (None, False, "data/train/wav.scp missing: run stage 1 first"),   # auto without feats.scp: wav
])
def test_training_stage_needs_the_audio_input_of_the_conf(tmp_path, feat_source, has_feats, message):
    train = tmp_path / "data" / "train"
    train.mkdir(parents=True)
    if has_feats:
        (train / "feats.scp").write_text("")
    conf = _conf_set(tmp_path, feat_source)
    out = _run(tmp_path, "--stage", "3", "--stop_stage", "3", "--conf_dir", str(conf))
    assert out.returncode != 0 and message in out.stderr, out.stderr


def test_auto_takes_feats_when_the_data_dir_has_them(tmp_path):
    """need_audio_input under auto: feats.scp when present (stage 1-2), else wav.scp (stage 1)."""
    d = tmp_path / "d"
    d.mkdir()
    script = (f'set -euo pipefail\ncd {RECIPE}\n. local/common.sh\nfeat_source=auto\n'
              f'need_audio_input "{d}" && echo NEEDS_MET\n')
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and f"{d}/wav.scp missing: run stage 1 first" in out.stderr
    (d / "feats.scp").write_text("")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "NEEDS_MET" in out.stdout, out.stderr


def test_wav_input_skips_fbank_but_makes_the_mean_part(tmp_path):
    """Stage 2 with feat_source: wav computes no fbank (the wav paths here do not even exist, so computing it
    would fail) and still writes data/train_mean."""
    utts = [f"id{1 + i % 3:05d}/v{i % 2}/{i:05d}" for i in range(9)]
    _wav_data_dirs(tmp_path, utts)
    conf = _conf_set(tmp_path, "wav")
    out = _run(tmp_path, "--stage", "2", "--stop_stage", "2", "--conf_dir", str(conf), "--mean_utts", "4")
    assert out.returncode == 0, out.stderr
    assert "no fbank archives" in out.stdout
    assert not (tmp_path / "fbank").exists()
    assert not any((tmp_path / "data" / p / "feats.scp").exists() for p in ("train", "dev", "eval", "train_mean"))
    assert len((tmp_path / "data" / "train_mean" / "utt2spk").read_text().splitlines()) == 4


def _wav_data_dirs(tmp_path, utts, wav_dir=None):
    """data/{train,dev,eval} with wav.scp, utt2spk and spk2utt for utts; 16 kHz noise wavs in wav_dir when given
    (else paths that do not exist)."""
    import numpy as np
    import soundfile

    for part in ("train", "dev", "eval"):
        d = tmp_path / "data" / part
        d.mkdir(parents=True)
        paths = []
        for i, u in enumerate(utts):
            path = f"{wav_dir or tmp_path / 'nowhere'}/{part}_{i}.wav"
            if wav_dir is not None:
                rng = np.random.default_rng(i)
                soundfile.write(path, (rng.standard_normal(8000) * 3000).astype(np.int16), 16000)
            paths.append(path)
        (d / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in zip(utts, paths)))
        (d / "utt2spk").write_text("".join(f"{u} {u.split('/')[0]}\n" for u in utts))
        spk = sorted({u.split("/")[0] for u in utts})
        (d / "spk2utt").write_text("".join(f"{s} {' '.join(u for u in utts if u.startswith(s))}\n" for s in spk))


def test_fbank_compress_stores_compressed_features(tmp_path):
    """Stage 2 with --fbank_compress true stores Kaldi-compressed fbank: about 4x smaller arks that read back
    within the compression's error of the float32 ones."""
    import kaldiio
    import numpy as np

    utts = [f"id{1 + i % 3:05d}/v{i % 2}/{i:05d}" for i in range(6)]
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    _wav_data_dirs(tmp_path, utts, wavs)
    conf = _conf_set(tmp_path, "feats")
    sizes, feats = {}, {}
    for flag in ("false", "true"):
        out = _run(tmp_path, "--stage", "2", "--stop_stage", "2", "--conf_dir", str(conf), "--mean_utts", "0",
                   "--fbank", str(tmp_path / f"fbank_{flag}"), "--fbank_compress", flag)
        assert out.returncode == 0, out.stderr
        arks = list((tmp_path / f"fbank_{flag}" / "train").rglob("*.ark"))
        sizes[flag] = sum(a.stat().st_size for a in arks)
        feats[flag] = dict(kaldiio.load_scp(str(tmp_path / "data" / "train" / "feats.scp")))
        feats[flag] = {k: np.asarray(v) for k, v in feats[flag].items()}
    assert sizes["true"] < 0.4 * sizes["false"], sizes
    for key, ref in feats["false"].items():
        assert np.abs(feats["true"][key] - ref).max() < 0.05 * (ref.max() - ref.min())
    bad = _run(tmp_path, "--stage", "2", "--stop_stage", "2", "--fbank_compress", "yes")
    assert bad.returncode != 0 and "expects true or false" in bad.stderr


def test_asnorm_report_names_the_scores_it_needs(tmp_path):
    """Stage 9 with --score_norm asnorm checks every report's inputs before writing any report."""
    raw = tmp_path / "exp" / "seed1" / "teacher" / "scores" / "eval"
    raw.mkdir(parents=True)
    (raw / "O.score").write_text("")
    out = _run(tmp_path, "--stage", "9", "--score_norm", "asnorm")
    assert out.returncode != 0, out.stdout
    assert ("exp/seed1/teacher/scores_asnorm/eval/O.score missing: run stage 5 with --score_norm asnorm first"
            in out.stderr), out.stderr
    assert not (tmp_path / "exp" / "report").exists()


def test_tuning_stage_names_the_teacher_it_needs(tmp_path):
    out = _run(tmp_path, "--stage", "6", "--stop_stage", "6", "--tune", "true")
    assert out.returncode != 0 and "teacher/kd_export/xvector.scp missing: run stage 5 first" in out.stderr
    skipped = _run(tmp_path, "--stage", "6", "--stop_stage", "6")  # --tune false: a skip line, success
    assert skipped.returncode == 0 and "tuning skipped" in skipped.stdout, skipped.stderr


def test_failing_job_fails_the_stage_and_names_its_log(tmp_path):
    """Stage 3 with a config the trainer refuses: the stage exits non-zero naming each job and its log, and
    a value with spaces and shell syntax (--exp) arrives as one verbatim path."""
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    (data / "feats.scp").write_text("")
    conf = tmp_path / "conf"
    shutil.copytree(os.path.join(RECIPE, "conf", "tiny"), conf)
    for mod in ("audio", "visual"):
        with open(conf / f"{mod}.yaml", "a") as f:
            f.write("num_epocs_typo: 1\n")  # unknown key or a data error: either way the training fails
    exp = tmp_path / "my exp $(touch PWNED)"
    out = _run(tmp_path, "--stage", "3", "--stop_stage", "3", "--conf_dir", str(conf), "--exp", str(exp))
    assert out.returncode != 0
    for job, mod in ((1, "audio"), (2, "visual")):   # the runner names each failed job's log
        log = exp / "logs" / f"stage3_train.{job}.log"
        assert f"job {job} failed (exit 2): see {log}" in out.stderr, out.stderr
        assert f"{exp}/seed1/{mod}_baseline" in log.read_text()   # the log's header line is the job's command
    assert "stage 3 done" not in out.stdout and "done (stages" not in out.stdout
    assert _pwned(tmp_path) == []


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck_clean():
    files = ["run.sh", "path.sh", "cmd.sh", "local/common.sh", "local/settings.sh", "local/prepare_voxceleb.sh",
             "../run.sh", "../../../tools/parse_options.sh"]
    out = subprocess.run(["shellcheck", "-x", "-S", "warning", *files], capture_output=True, text=True, cwd=RECIPE)
    assert out.returncode == 0, out.stdout
