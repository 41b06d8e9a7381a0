"""A dry run of the recipe: run.sh with `python3` (and `python`, `torchrun`) on PATH replaced by a recorder of
the package's entry points.

Every `python3 -m wespeaker_avkd.bin.<name>` call except the planner is written to a log (one shell-quoted line,
a `--jobs FILE` argument replaced by the file's lines) and replaced by a stub that creates the files the next
stages look for; every other python call (the planner, local/*.py, `-c`) runs for real. The commands a run
issues can so be compared without training anything.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "egs" / "voxceleb" / "run.sh"

FAKE = r'''#!{python}
import os, shlex, sys
REAL = {python!r}
argv = sys.argv[1:]
prog = []
if os.path.basename(sys.argv[0]) == "torchrun":
    prog, argv = ["torchrun"] + argv[:argv.index("-m")], argv[argv.index("-m"):]
if not (len(argv) >= 2 and argv[0] == "-m" and argv[1].startswith("wespeaker_avkd.bin.")
        and argv[1] != "wespeaker_avkd.bin.plan"):
    os.execv(REAL, [REAL] + argv)


def opt(name, many=False):
    i = argv.index(name)
    if not many:
        return argv[i + 1]
    out = []
    for a in argv[i + 1:]:
        if a.startswith("--"):
            break
        out.append(a)
    return out


def touch(path, text=""):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


shown = list(argv)
lines = []
if "--jobs" in argv:
    i = argv.index("--jobs")
    lines = [ln.split("\t") for ln in open(argv[i + 1]).read().splitlines() if ln]
    shown[i + 1] = "<" + " | ".join("\t".join(ln) for ln in lines) + ">"
with open(os.environ["DRY_RUN_LOG"], "a") as f:
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
    f.write(shlex.join((["CUDA_VISIBLE_DEVICES=" + gpus] if gpus is not None else []) + prog + shown) + "\n")
name = argv[1].rsplit(".", 1)[1]
if name in ("make_toy_corpus", "prepare_voxceleb"):
    for part in ("train", "dev", "eval"):
        for t in ("wav.scp", "utt2spk"):
            touch(os.path.join(opt("--out"), part, t))
        for t in ("O", "E", "H"):
            touch(os.path.join(opt("--out"), part, "trials", t))
elif name == "make_noise_sets":
    for s in ("musan", "rirs"):
        touch(os.path.join(opt("--out"), s, "wav.scp"))
elif name == "compute_fbank":
    touch(os.path.join(opt("--data"), "feats.scp"))
elif name == "subset_data_dir":
    touch(os.path.join(opt("--dst"), "utt2spk"))
elif name == "make_shards":
    touch(os.path.join(opt("--data"), "shard.list"))
elif name == "train":
    touch(os.path.join(opt("--exp_dir"), "models", "avg_model.pt"))
elif name == "extract" and "--kd_export" in argv:
    touch(os.path.join(opt("--exp_dir"), "kd_export", "xvector.scp"))
elif name == "extract":
    for ln in lines:
        touch(os.path.join(ln[2], "xvector.scp"))
elif name == "score":   # dev EERs of a tuning run (_w<weight>): lowest at 10**2.3, so the grid grows to 1000
    import json, math, re
    for ln in lines:
        weight = re.search(r"_w([0-9.]+)/scores/", ln[1] + "/")
        eer = 0.1 + 0.01 * abs(math.log10(float(weight.group(1))) - 2.3) if weight else 0.2
        for t in opt("--trials", many=True):
            touch(os.path.join(ln[1], os.path.basename(t) + ".score"))
            touch(os.path.join(ln[1], os.path.basename(t) + ".json"), json.dumps({{"eer": eer}}))
elif name == "select_kd_weights":
    touch(opt("--out"), open("conf/kd_weights.yaml").read())
'''


def make_fake_python(bin_dir: Path) -> None:
    """Write the recording `python3` into bin_dir."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    fake = bin_dir / "python3"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    for alias in ("torchrun", "python"):   # local/prepare_voxceleb.sh calls `python`
        (bin_dir / alias).write_text(fake.read_text())
        (bin_dir / alias).chmod(0o755)


def dry_run(tmp: Path, *args: str, run_sh: Path = RUN, taskset: list[int] | None = None) -> list[str]:
    """The entry-point calls of `bash run_sh --data tmp/data --fbank tmp/fbank --exp tmp/exp ARGS`, in call order,
    with tmp written as TMP and the checkout as ROOT (on the CPUs `taskset` when given); asserts the run succeeds."""
    make_fake_python(tmp / "bin")
    log = tmp / "calls.log"
    log.write_text("")
    env = dict(os.environ, PATH=f"{tmp / 'bin'}{os.pathsep}{os.environ['PATH']}", DRY_RUN_LOG=str(log))
    pin = ["taskset", "-c", ",".join(map(str, taskset))] if taskset else []
    cmd = [*pin, "bash", str(run_sh), "--data", str(tmp / "data"), "--fbank", str(tmp / "fbank"), "--exp",
           str(tmp / "exp"), "--shard_dir", str(tmp / "shards"), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return [line.replace(str(tmp), "TMP").replace(str(ROOT), "ROOT") for line in log.read_text().splitlines()]


# Option sets whose command sequences the recipe tests compare (tests/recipe/test_recipe_commands.py).
VARIANTS = {
    "default": [],
    "nj1": ["--nj", "1"],
    "shard": ["--seeds", "1 2", "--tune", "true", "--data_type", "shard", "--nj", "1"],
    "aug": ["--seeds", "1 2", "--tune", "true", "--aug", "true"],
    "asnorm": ["--score_norm", "asnorm", "--kd_combos", "KL COS+KL", "--modalities", "visual", "--mean_utts", "0",
               "--overwrite", "true", "--progress", "false", "--trials", "E O"],
    "gpu1": ["--gpus", "0", "--seeds", "1 2", "--tune", "true", "--tune_grid", "1 10"],
    "gpu2": ["--gpus", "0,1", "--nnodes", "2", "--node_rank", "1", "--master_addr", "host1", "--master_port", "1234"],
    "voxceleb": ["--data_root", "/nowhere/vox", "--wespeaker_data", "/nowhere/ws", "--dev_speakers", "7", "--face_fps",
                 "2", "--face_max_frames", "3", "--face_size", "64", "--dev_max_targets", "50", "--dev_seed", "4"],
}

if __name__ == "__main__":
    import tempfile
    out_dir = Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, args in VARIANTS.items():
        with tempfile.TemporaryDirectory() as d:
            (out_dir / f"{name}.log").write_text("\n".join(dry_run(Path(d), *args, run_sh=Path(sys.argv[1]))) + "\n")
