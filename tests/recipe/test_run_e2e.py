"""The whole recipe (stages 1-8 of egs/voxceleb/run.sh) on a tiny corpus with tiny configs."""
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(ROOT, "egs", "voxceleb", "run.sh")
TINY = os.path.join(ROOT, "egs", "voxceleb", "v_kd", "conf", "tiny")
SYSTEMS = ["audio_baseline", "visual_baseline", "teacher"] + [
    f"{m}_kd_{c}" for m in ("visual", "audio") for c in ("cos", "kl", "mmd", "cos_kl", "cos_mmd", "kl_mmd")]


def _run(tmp_path, *args):
    cmd = ["bash", RUN, "--data", str(tmp_path / "data"), "--fbank", str(tmp_path / "fbank"),
           "--exp", str(tmp_path / "exp"), "--corpus_config", os.path.join(TINY, "corpus.yaml"),
           "--conf_dir", TINY, "--progress", "false", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_all_stages_then_slices(tmp_path):
    stdout = _run(tmp_path)
    exp = tmp_path / "exp"
    for name in SYSTEMS:
        for t in ("O", "E", "H"):
            record = json.load(open(exp / name / "scores" / f"{t}.json"))
            assert 0.0 <= record["eer"] <= 1.0 and record["num_trials"] > 0, (name, t)
    for f in ("results.md", "results.json", "det.png", "venn_visual.png", "venn_audio.png"):
        assert (exp / "report" / f).stat().st_size > 0, f
    assert "Table 1" in stdout and "Table 3" in stdout  # the tables are printed at the end
    for f in ("xvector.scp", "projection_weight.npy", "spk2id"):
        assert (exp / "teacher" / "kd_export" / f).exists(), f
    # a second pass over the KD stages reuses the finished students (no new checkpoint, no re-extraction)
    ckpt = exp / "visual_kd_kl" / "models" / "model_2.pt"
    emb = exp / "visual_kd_kl" / "embeddings" / "eval" / "xvector.ark"
    before = (ckpt.stat().st_mtime, emb.stat().st_mtime)
    _run(tmp_path, "--stage", "6", "--stop-stage", "7")
    assert (ckpt.stat().st_mtime, emb.stat().st_mtime) == before
