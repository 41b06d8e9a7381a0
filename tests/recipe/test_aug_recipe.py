"""run.sh --aug true: conf/aug.yaml merged over every audio system's config (not the visual ones), stage 1 writes
the noise/RIR sets (generated, or listed from --musan/--rirs), training stages need them; bad values refused."""
import os
import subprocess

import pytest

from wespeaker_avkd.bin import make_noise_sets
from wespeaker_avkd.config.train_config import load_config, load_saved_config, parse_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(ROOT, "egs", "voxceleb", "v_kd")


def _settings(tmp_path, *args):
    """(returncode, {name: value}, stderr) of run.sh's settings for args: the audio input, and the flags between
    each baseline's config and its --exp_dir in the planner's stage-3 jobs."""
    text = open(os.path.join(RECIPE, "run.sh")).read()
    head = text[:text.index('. local/settings.sh "$@"')] + '. local/settings.sh "$@"\n'
    body = head + ('mkdir -p "$data/musan" "$data/rirs"; touch "$data/musan/wav.scp" "$data/rirs/wav.scp"\n'
                   'printf "%s\\n" "feat_source=$feat_source"\nplan train 3\n')
    out = subprocess.run(["bash", "-c", body, os.path.join(RECIPE, "run.sh"), "--exp", str(tmp_path / "exp"),
                          "--data", str(tmp_path / "data"), *args], capture_output=True, text=True, timeout=60)
    if out.returncode:
        return out.returncode, {}, out.stderr
    lines = out.stdout.splitlines()
    settings = dict([lines[0].split("=", 1)])
    for job in lines[1:]:
        words = job.split("\t")
        config = words.index("--config")
        mod = os.path.basename(words[config + 1]).removesuffix(".yaml")
        settings[mod] = " ".join(words[config + 2:words.index("--exp_dir")])
    return out.returncode, settings, out.stderr


def test_aug_option_flags_audio_systems_only(tmp_path):
    rc, off, _ = _settings(tmp_path)
    assert rc == 0 and off == {"feat_source": "feats", "audio": "", "visual": ""}
    rc, on, err = _settings(tmp_path, "--aug", "true")
    assert rc == 0, err
    data = tmp_path / "data"
    assert on == {"feat_source": "wav", "visual": "",
                  "audio": f"--config conf/aug.yaml --noise_data {data}/musan/wav.scp "
                           f"--reverb_data {data}/rirs/wav.scp"}


@pytest.mark.parametrize("args,message", [
    (["--aug", "yes"], "option --aug expects true or false"),
    (["--musan", "/m", "--rirs", "/r"], "add --aug true"),
    (["--aug", "true", "--musan", "/m"], "--musan and --rirs go together"),
    (["--aug", "true", "--musan", "/nowhere/m", "--rirs", "/nowhere/r"], "--musan /nowhere/m: no such directory"),
    (["--aug", "true", "--data_type", "shard"], "--aug true needs --data_type raw"),
])
def test_bad_aug_options_refused(tmp_path, args, message):
    rc, _, err = _settings(tmp_path, *args)
    assert rc != 0 and message in err, err


def test_training_stage_needs_the_sets(tmp_path):
    train = tmp_path / "data" / "train"
    train.mkdir(parents=True)
    (train / "wav.scp").write_text("")
    out = subprocess.run(["bash", os.path.join(ROOT, "egs", "voxceleb", "run.sh"), "--data", str(tmp_path / "data"),
                          "--exp", str(tmp_path / "exp"), "--aug", "true", "--stage", "3", "--stop_stage", "3"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode != 0 and "data/musan/wav.scp missing: run stage 1 first" in out.stderr, out.stderr


def test_aug_yaml_over_each_audio_conf_is_a_valid_config():
    for conf in ("toy", "paper", "tiny"):
        cfg = load_config([os.path.join(RECIPE, "conf", conf, "audio.yaml"), os.path.join(RECIPE, "conf", "aug.yaml")])
        dataset_args = parse_config(cfg).dataset_args
        assert dataset_args.feat_source == "wav" and dataset_args.speed_perturb is True


def test_make_noise_sets_entry_point(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "v.wav", np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1, 16000)
    (tmp_path / "speech.scp").write_text(f"u1 {tmp_path / 'v.wav'}\n")
    out = tmp_path / "data"
    assert make_noise_sets.main(["--out", str(out), "--speech_scp", str(tmp_path / "speech.scp"),
                                 "--per_kind", "1", "--num_rirs", "2"]) == 0
    assert len((out / "musan" / "wav.scp").read_text().splitlines()) == 5
    assert len((out / "rirs" / "wav.scp").read_text().splitlines()) == 2
    # real folders: listed, keyed as WeSpeaker (last three path components)
    for rel in ("musan/speech/us-gov/s.wav", "RIRS_NOISES/simulated_rirs/smallroom/Room001/r.wav",
                "RIRS_NOISES/real_rirs_isotropic_noises/x.wav"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert make_noise_sets.main(["--out", str(tmp_path / "real"), "--musan", str(tmp_path / "musan"),
                                 "--rirs", str(tmp_path / "RIRS_NOISES")]) == 0
    assert (tmp_path / "real" / "rirs" / "wav.scp").read_text().split()[0] == "smallroom/Room001/r.wav"
    assert (tmp_path / "real" / "musan" / "wav.scp").read_text().split()[0] == "speech/us-gov/s.wav"
    capsys.readouterr()
    assert make_noise_sets.main(["--out", str(out), "--musan", "m"]) == 2  # one named line, exit 2
    assert "make_noise_sets: --musan and --rirs go together" in capsys.readouterr().err


@pytest.mark.slow
def test_recipe_trains_the_audio_baseline_with_augmentation(tmp_path):
    """Stages 1-4 on the tiny corpus with --aug true: generated sets, the audio baseline trained on wav with
    every WeSpeaker step (3 classes per speaker), extracted and scored; the visual baseline as without."""
    import json

    import torch

    tiny = os.path.join(RECIPE, "conf", "tiny")
    (tmp_path / "epochs.yaml").write_text("num_epochs: 1\n")
    cmd = ["bash", os.path.join(ROOT, "egs", "voxceleb", "run.sh"), "--data", str(tmp_path / "data"),
           "--fbank", str(tmp_path / "fbank"), "--exp", str(tmp_path / "exp"), "--corpus_config",
           os.path.join(tiny, "corpus.yaml"), "--conf_dir", tiny, "--config", str(tmp_path / "epochs.yaml"),
           "--progress", "false", "--aug", "true", "--stop_stage", "4"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "no fbank archives" in out.stdout  # conf/aug.yaml: the audio systems read wav
    for name in ("musan", "rirs"):
        assert (tmp_path / "data" / name / "wav.scp").stat().st_size > 0
    audio = tmp_path / "exp" / "seed1" / "audio_baseline"
    # config.yaml is the typed config: WeSpeaker's top-level noise_data sits in the audio dataset_args
    ds = load_saved_config(str(audio / "config.yaml")).dataset_args
    assert ds.noise_data == str(tmp_path / "data" / "musan" / "wav.scp") and ds.speed_perturb
    speakers = len((audio / "spk2id").read_text().splitlines())
    state = torch.load(audio / "models" / "avg_model.pt", weights_only=True)
    assert state["projection.weight"].shape[0] == 3 * speakers
    visual = load_saved_config(str(tmp_path / "exp" / "seed1" / "visual_baseline" / "config.yaml"))
    assert not hasattr(visual.dataset_args, "noise_data") and not hasattr(visual.dataset_args, "speed_perturb")
    for d in (audio, tmp_path / "exp" / "seed1" / "visual_baseline"):
        record = json.load(open(d / "scores" / "eval" / "O.json"))
        assert 0.0 <= record["eer"] <= 1.0 and record["num_trials"] > 0
