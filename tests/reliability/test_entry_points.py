"""Every bin.* entry point gives a bad input of each kind (config, data, checkpoint, input/argument) as ONE stderr
line '<prog>: message' naming the file or key, exit status 2, no traceback; --debug adds the traceback.

Most cases call each module's main() in this process (one torch import for all); each entry point also runs once
as `python -m wespeaker_avkd.bin.<name>`, the way the recipe calls it. A new entry point without cases here fails
test_every_entry_point_has_cases."""
import importlib
import os
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import kaldiio
import numpy as np
import pytest
import torch

import wespeaker_avkd.bin
from wespeaker_avkd.utils.errors import EXIT_NAMED_ERROR

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(REPO, "egs", "voxceleb", "v_kd")
TINY_AUDIO = os.path.join(RECIPE, "conf", "tiny", "audio.yaml")
ENTRY_POINTS = sorted(m.name for m in pkgutil.iter_modules(wespeaker_avkd.bin.__path__))


@pytest.fixture(scope="module")
def ws(tmp_path_factory, request):
    """A workspace: a valid feats data dir and untrained exp dir, and one bad file of each kind (paths by file name,
    '.' as '_')."""
    # tests/conftest.py's TinyDirs (the shared data/exp dir writers), found among pytest's conftest plugins: other
    # conftest modules share its module name
    root_conftest = os.path.join(REPO, "tests", "conftest.py")
    tiny = next(p for p in request.config.pluginmanager.get_plugins()
                if getattr(p, "__file__", None) == root_conftest).TinyDirs()
    root = tmp_path_factory.mktemp("entry")
    data, _ = tiny.feats_dir(root / "data", tiny.speakers(6, 3), [40, 41, 42, 43, 44, 45], feat_dim=8)
    cfg = {"modality": "audio", "model": "ResNet34", "model_args": {"feat_dim": 8, "embed_dim": 8, "m_channels": 2},
           "projection_args": {"project_type": "arc_margin", "scale": 16.0}, "train_data": data,
           "dataset_args": {"feat_source": "feats"}}
    tiny.feats_dir(root / "short_data", tiny.speakers(3, 3), [40, 3, 42], feat_dim=8)  # a 3-frame utterance
    exp, _ = tiny.untrained_exp(root / "exp", cfg, [f"spk{i}" for i in range(3)])
    bad_models = root / "bad_models"
    bad_models.mkdir()
    (bad_models / "model_1.pt").write_bytes(b"not a checkpoint\n")
    (root / "empty_models").mkdir()
    mixed = root / "mixed_models"  # two epochs of different models
    mixed.mkdir()
    torch.save({"a": torch.ones(2)}, mixed / "model_1.pt")
    torch.save({"b": torch.ones(2)}, mixed / "model_2.pt")
    (root / "no_config").mkdir()
    (root / "garbage.pt").write_bytes(b"not a checkpoint\n")
    (root / "bad.score").write_text("a b 0.5 target\na c xx nontarget\n")
    (root / "bad_jobs.tsv").write_text("a\tb\n")
    (root / "binary_jobs.tsv").write_bytes(b"e.scp\tout\n\xbf\x00\xff\n")
    targets_only = root / "report_exp" / "seed1" / "audio_baseline" / "scores" / "eval"
    targets_only.mkdir(parents=True)
    (targets_only / "E.score").write_text("spk0-utt000 spk1-utt001 0.5 target\n")
    (root / "trials").write_text("spk0-utt000 spk1-utt001 target\n")
    kaldiio.save_ark(str(root / "emb.ark"), {u: np.ones(8, np.float32) for u in ("spk0-utt000", "spk1-utt001")},
                     scp=str(root / "emb.scp"))
    np.save(root / "object_mean.npy", np.array([{"a": 1}], dtype=object))
    (root / "corpus_int.yaml").write_text("layout:\n  train_speakers: 2.5\n")
    (root / "corpus_key.yaml").write_text("layout:\n  train_speakerz: 2\n")
    (root / "train_key.yaml").write_text("num_epoch: 2\n")
    (root / "train_nan.yaml").write_text("scheduler_args: {initial_lr: .nan}\n")
    return {"root": str(root), "data": data, "exp": exp, **{p.name.replace(".", "_"): str(p) for p in root.iterdir()}}


# entry point -> [(kind, argv with {name} placeholders for ws paths, text the line must contain)]
CASES = {
    "average_model": [
        ("checkpoint", ["--src_path", "{bad_models}", "--dst_model", "{root}/avg.pt"], "{bad_models}/model_1.pt"),
        ("checkpoint", ["--src_path", "{mixed_models}", "--dst_model", "{root}/avg.pt", "--num", "2"],
         "{mixed_models}/model_1.pt: its tensors differ from those of {mixed_models}/model_2.pt"),
        ("input", ["--src_path", "{empty_models}", "--dst_model", "{root}/avg.pt"], "no model_N.pt checkpoints in"),
        ("argument", ["--src_path", "{empty_models}"], "--dst_model"),
    ],
    "compute_fbank": [
        ("data", ["--data", "{root}/missing_data", "--out", "{root}/fb", "--no_progress"], "missing_data/wav.scp"),
        ("argument", ["--data", "{data}", "--out", "{root}/fb", "--nj", "two"], "--nj"),
    ],
    "compute_metrics": [
        ("data", ["{bad_score}"], "{bad_score}:2: bad score 'xx'"),
        ("input", ["{root}/missing.score"], "missing.score: no such score file"),
    ],
    "embed": [
        ("config", ["--exp_dir", "{no_config}", "--inputs", "x.wav"], "{no_config}/config.yaml does not exist"),
        ("checkpoint", ["--exp_dir", "{exp}", "--checkpoint", "{garbage_pt}", "--inputs", "{root}/x.wav"],
         "{garbage_pt}"),
        ("input", ["--exp_dir", "{exp}", "--inputs", "{root}/missing.wav"], "missing.wav: cannot read audio"),
    ],
    "export": [
        ("config", ["--exp_dir", "{no_config}", "--format", "torchscript", "--out", "{root}/x.pt"],
         "{no_config}/config.yaml does not exist"),
        ("checkpoint", ["--exp_dir", "{exp}", "--checkpoint", "{garbage_pt}", "--format", "torchscript", "--out",
                        "{root}/x.pt"], "{garbage_pt}"),
        ("argument", ["--exp_dir", "{exp}", "--format", "tflite", "--out", "{root}/x.pt"], "--format"),
    ],
    "extract": [
        ("config", ["--exp_dir", "{no_config}", "--data", "{data}", "--no_progress"],
         "{no_config}/config.yaml does not exist"),
        ("data", ["--exp_dir", "{exp}", "--data", "{root}/missing_data", "--out_dir", "{root}/e1", "--no_progress"],
         "missing_data/feats.scp"),
        ("data", ["--exp_dir", "{exp}", "--data", "{short_data}", "--out_dir", "{root}/e3", "--no_progress"],
         "{short_data}: utterance 'spk1-utt001': ResNet34 needs at least 8 frames"),
        ("checkpoint", ["--exp_dir", "{exp}", "--data", "{data}", "--out_dir", "{root}/e2", "--checkpoint",
                        "{garbage_pt}", "--no_progress"], "{garbage_pt}"),
        ("input", ["--jobs", "{bad_jobs_tsv}"], "{bad_jobs_tsv}:1: expected 5 tab-separated fields"),
        ("argument", ["--exp_dir", "{exp}", "--kd_export"], "--kd_export needs --train_scp"),
    ],
    "make_noise_sets": [
        ("input", ["--out", "{root}/sets", "--musan", "{root}/missing_musan", "--rirs", "{root}/missing_rirs"],
         "missing_musan: no such directory"),
        ("argument", ["--out", "{root}/sets", "--musan", "{root}/missing_musan"], "--musan and --rirs go together"),
    ],
    "make_shards": [
        ("data", ["--data", "{root}/missing_data", "--out", "{root}/sh", "--no_progress"],
         "missing_data: a data dir to pack needs utt2spk and wav.scp"),
        ("argument", ["--data", "{data}", "--out", "{root}/sh", "--utts_per_shard", "0"],
         "--utts_per_shard and --nj must be at least 1"),
    ],
    "make_toy_corpus": [
        ("config", ["--out", "{root}/c1", "--config", "{corpus_int_yaml}"],
         "{corpus_int_yaml}: key 'layout.train_speakers' must be an integer"),
        ("config", ["--out", "{root}/c2", "--config", "{corpus_key_yaml}"], "unknown key 'layout.train_speakerz'"),
        ("input", ["--out", "{root}/c3", "--config", "{root}/missing.yaml"], "missing.yaml"),
        ("argument", ["--out", "{root}/with space"], "{root}/with space' contains whitespace"),
    ],
    "prepare_voxceleb": [
        ("input", ["--data_root", "{root}/missing_root", "--out", "{root}/vox"], "missing_root/voxceleb2"),
    ],
    "report": [
        ("input", ["--exp", "{root}/missing_exp", "--utt2spk", "{data}/utt2spk", "--out", "{root}/rep"],
         "missing_exp: no scored system"),
        ("data", ["--exp", "{report_exp}", "--utt2spk", "{data}/utt2spk", "--trials", "E", "--out", "{root}/rep",
                  "--no_gate"], "{report_exp}/seed1/audio_baseline/scores/eval/E.score: the trials are all targets"),
        ("argument", ["--exp", "{exp}", "--num_boot", "1"], "--num_boot must be at least 2"),
    ],
    "score": [
        ("input", ["--embeddings", "{emb_scp}", "--trials", "{trials}", "--output_dir", "{root}/s",
                   "--mean_vec", "{object_mean_npy}"], "{object_mean_npy}: cannot read the mean vector"),
        ("input", ["--jobs", "{binary_jobs_tsv}", "--trials", "{trials}"], "{binary_jobs_tsv}: not UTF-8 text"),
        ("data", ["--embeddings", "{root}/missing.scp", "--trials", "{trials}", "--output_dir", "{root}/s"],
         "missing.scp: no such embeddings file"),
        ("argument", ["--embeddings", "{emb_scp}", "--trials", "{trials}", "--output_dir", "{root}/s",
                      "--cohort_utt2spk", "{data}/utt2spk"], "--cohort_utt2spk needs --cohort"),
    ],
    "select_kd_weights": [
        ("input", ["--sweep_dir", "{root}/missing_sweep", "--out", "{root}/w.yaml"], "missing_sweep/visual_kd_cos"),
    ],
    "plan": [
        ("input", ["job", "{root}/missing.jobs", "1"], "missing.jobs"),
        ("argument", ["train", "3"], "--exp"),
    ],
    "subset_data_dir": [
        ("data", ["--src", "{root}/missing_data", "--dst", "{root}/sub", "--num_utts", "2"], "missing_data/utt2spk"),
        ("argument", ["--src", "{data}", "--dst", "{root}/sub"], "--num_utts"),
        ("argument", ["--src", "{data}", "--dst", "{root}/sub", "--num_utts", "-3"], "--num_utts must be at least 1"),
    ],
    "train": [
        ("config", ["--config", "{train_key_yaml}", "--exp_dir", "{root}/t1"],
         "{train_key_yaml}: config key 'num_epoch': is not known"),
        ("config", ["--config", TINY_AUDIO, "--config", "{train_nan_yaml}", "--exp_dir", "{root}/t2"],
         "{train_nan_yaml}: config key 'scheduler_args.initial_lr': must be a finite number"),
        ("config", ["--config", TINY_AUDIO, "--exp_dir", "{root}/t3", "--optimizer_args.lrr", "0.1"],
         "'optimizer_args.lrr'"),
        ("data", ["--config", TINY_AUDIO, "--exp_dir", "{root}/t4", "--train_data", "{root}/missing_data",
                  "--device", "cpu", "--no_progress"], "missing_data/utt2spk"),
        ("argument", ["--config", TINY_AUDIO, "--exp_dir", "{root}/t5", "--resume", "--overwrite"], "contradict"),
    ],
    "validate_data": [
        ("argument", ["--deep"], "the following arguments are required: dirs"),
    ],
}
FLAT = [(name, i) for name in sorted(CASES) for i in range(len(CASES[name]))]


def _fill(items, ws):
    """Replace {name} placeholders by the workspace paths."""
    return [s.format(**ws) for s in items] if isinstance(items, list) else items.format(**ws)


def _assert_one_line(name, rc, err, expect):
    lines = err.splitlines()
    assert rc == EXIT_NAMED_ERROR, (name, rc, err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    assert len(lines) == 1 and lines[0].startswith(f"{name}: "), err[-3000:]
    assert expect in lines[0], (expect, lines[0])


def test_every_entry_point_has_cases():
    assert ENTRY_POINTS and set(CASES) == set(ENTRY_POINTS), sorted(set(ENTRY_POINTS) ^ set(CASES))
    for name in ENTRY_POINTS:  # the bad inputs an entry point can be given: at least one, all of a known kind
        assert CASES[name] and {kind for kind, _, _ in CASES[name]} <= {"config", "data", "checkpoint", "input",
                                                                        "argument"}


@pytest.mark.parametrize("name,index", FLAT, ids=[f"{n}-{CASES[n][i][0]}{i}" for n, i in FLAT])
def test_bad_input_is_one_named_line(ws, name, index, capsys):
    kind, argv, expect = CASES[name][index]
    main = importlib.import_module(f"wespeaker_avkd.bin.{name}").main
    capsys.readouterr()
    rc = main(_fill(argv, ws))
    out = capsys.readouterr()
    _assert_one_line(name, rc, out.err, _fill(expect, ws))


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_debug_shows_the_traceback(ws, name, capsys):
    _, argv, expect = CASES[name][0]
    main = importlib.import_module(f"wespeaker_avkd.bin.{name}").main
    capsys.readouterr()
    rc = main(_fill(argv, ws) + ["--debug"])
    err = capsys.readouterr().err
    assert rc == EXIT_NAMED_ERROR and "Traceback (most recent call last)" in err, err[-3000:]
    assert err.rstrip().splitlines()[-1].startswith(f"{name}: ") and _fill(expect, ws) in err


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_help_documents_debug(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"wespeaker_avkd.bin.{name}").main(["--help"])
    assert exit_info.value.code == 0 and "--debug" in capsys.readouterr().out


def test_every_entry_point_as_a_process(ws):
    """python -m wespeaker_avkd.bin.<name> on its first bad input: one line, exit 2 (two processes at a time)."""
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("WESPEAKER_AVKD_DEBUG", None)

    def run(name):
        _, argv, expect = CASES[name][0]
        res = subprocess.run([sys.executable, "-m", f"wespeaker_avkd.bin.{name}", *_fill(argv, ws)],
                             capture_output=True, text=True, timeout=300, env=env, cwd=ws["root"])
        return name, res, _fill(expect, ws)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, ENTRY_POINTS))
    for name, res, expect in results:
        _assert_one_line(name, res.returncode, res.stderr, expect)


def _recipe(tmp_path, *args):
    """run.sh with its outputs under tmp_path."""
    cmd = ["bash", os.path.join(RECIPE, "run.sh"), "--exp", str(tmp_path / "exp"), "--progress", "false", *args]
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)


def test_recipe_stage_stops_with_the_entry_points_line(tmp_path):
    """Stage 1 with a data path the corpus tables cannot carry: the python line is the one stderr line, exit 2."""
    data = tmp_path / "my data"
    out = _recipe(tmp_path, "--data", str(data), "--stage", "1", "--stop_stage", "1")
    _assert_one_line("make_toy_corpus", out.returncode, out.stderr, f"'{data}' contains whitespace")
    assert "stage 1 done" not in out.stdout and not data.exists()


def test_recipe_option_and_config_errors_are_one_line(tmp_path):
    out = _recipe(tmp_path, "--stage", "4", "--stop_stage", "2")
    assert out.returncode == EXIT_NAMED_ERROR and out.stderr.splitlines() == [
        "run.sh: --stage 4 --stop_stage 2 selects no stage"], out.stderr
    overlay = tmp_path / "over.yaml"
    overlay.write_text("dataset_args:\n  feat_source: fbank\n")
    out = _recipe(tmp_path, "--config", str(overlay))
    _assert_one_line("feat_source", out.returncode, out.stderr,
                     f"{overlay}: config key 'dataset_args.feat_source': must be one of")


@pytest.mark.parametrize("max_jobs", ["1", "2"])
def test_job_runner_returns_the_jobs_exit_status(tmp_path, max_jobs):
    """A job that fails with a named error (exit 2) fails its stage with 2 (tools/run.py, run.sh's local job
    command); jobs run side by side (output only in their logs) get the error line in the runner's one line."""
    code = ("import sys; print('working'); sys.argv[1] == '2' and (print(\"prog: conf.yaml: config key 'x' is not "
            "known\", file=sys.stderr), sys.exit(2))")
    out = subprocess.run([sys.executable, os.path.join(REPO, "tools", "run.py"), "--max-jobs-run", max_jobs, "JOB=1:2",
                          f"{tmp_path}/logs/s.JOB.log", sys.executable, "-c", code, "JOB"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == EXIT_NAMED_ERROR, out.stdout + out.stderr
    line = f"run.py: job 2 failed (exit 2): see {tmp_path}/logs/s.2.log"
    if max_jobs != "1":
        line += " (prog: conf.yaml: config key 'x' is not known)"
    assert out.stderr.splitlines() == [line], out.stderr
