"""The report end to end on fake systems: tables, corrected trials, agreement, figures."""
import json
import os

import kaldiio
import numpy as np

from wespeaker_avkd.analysis.report import build_report, student_name
from wespeaker_avkd.scoring import TrialScores, compute_metrics, write_score_file

TRIALS = ("O", "E")


def _fake_system(exp, name, rng, noise, teacher=None):
    """Scores with label-dependent means (less noise = better), embeddings correlated with `teacher`."""
    n = 200
    labels = np.repeat([1, 0], n // 2).astype(np.int8)
    enroll = [f"u{i % 17}" for i in range(n)]
    test = [f"v{i}" for i in range(n)]
    for t in TRIALS:
        scores = (labels + rng.normal(scale=noise, size=n)).astype(np.float32)
        os.makedirs(os.path.join(exp, name, "scores"), exist_ok=True)
        write_score_file(os.path.join(exp, name, "scores", f"{t}.score"), TrialScores(enroll, test, scores, labels))
    keys = [f"id{i:05d}/v/00001" for i in range(30)]
    emb = rng.normal(size=(30, 8)).astype(np.float32)
    if teacher is not None:
        emb = (0.5 * teacher + emb).astype(np.float32)
    for subset in ("train", "eval"):
        out = os.path.join(exp, name, "embeddings", subset)
        os.makedirs(out, exist_ok=True)
        kaldiio.save_ark(os.path.join(out, "xvector.ark"), dict(zip(keys, emb)), scp=os.path.join(out, "xvector.scp"))
    return emb


def test_build_report(tmp_path):
    rng = np.random.default_rng(0)
    exp = str(tmp_path / "exp")
    teacher = _fake_system(exp, "teacher", rng, 0.2)
    _fake_system(exp, "audio_baseline", rng, 0.6, teacher)
    _fake_system(exp, "visual_baseline", rng, 0.5, teacher)
    for mod in ("visual", "audio"):
        for combo in ("KL", "COS+MMD"):
            _fake_system(exp, student_name(mod, combo), rng, 0.45, teacher)
    out = str(tmp_path / "report")
    text = build_report(exp, out, TRIALS, ("visual", "audio"), ("KL", "COS+MMD", "MMD"))
    assert "Table 1" in text and "Table 2" in text and "Table 3" in text
    md = open(os.path.join(out, "results.md")).read()
    for f in ("det.png", "venn_visual.png", "venn_audio.png", "results.json"):
        assert os.path.getsize(os.path.join(out, f)) > 0, f
    # the table cell equals the scorer's EER of that score file
    from wespeaker_avkd.scoring import read_score_file

    ts = read_score_file(os.path.join(exp, "teacher", "scores", "E.score"))
    assert f"{100 * compute_metrics(ts.scores, ts.labels).eer:.3f}" in md
    # a combo never trained shows dashes
    assert "| L_AAM + L_MMD | - | - |" in md
    record = json.load(open(os.path.join(out, "results.json")))
    counts = record["corrected_trials"]["visual"]["KL"]["E"]
    assert sum(counts["venn"].values()) == counts["num_trials"] == 200
    assert set(record["agreement"]) >= {"audio_baseline", "visual_kd_kl"}
    assert 0.0 < record["agreement"]["visual_baseline"]["eval"]["pcc_flattened"] < 1.0
