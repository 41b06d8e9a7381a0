"""The report end to end on a fake exp tree (seeds, parts, score files, embeddings, a GATE teacher): tables with
intervals and verdicts, missing systems, corrected trials with base rates, agreement, gate values, figures."""
import json
import os

import kaldiio
import numpy as np
import pytest
import torch

from wespeaker_avkd.analysis import bootstrap
from wespeaker_avkd.analysis.collect import ReportSettings
from wespeaker_avkd.analysis.gate import teacher_gate
from wespeaker_avkd.analysis.report import make_report
from wespeaker_avkd.bin.report import main as report_main
from wespeaker_avkd.scoring import TrialScores, compute_metrics, read_score_file, write_score_file
from wespeaker_avkd.utils.naming import student_name

TRIALS = ("O", "E")
NUM_IDS, UTTS_PER_ID, DIM = 20, 4, 8


def _utts():
    return [f"id{10001 + i:05d}/v{j}/00001" for i in range(NUM_IDS) for j in range(UTTS_PER_ID)]


def _write_corpus(root):
    """data/eval/utt2spk and the trial structure: every target pair within an identity, 2 nontargets per utt."""
    utts = _utts()
    os.makedirs(os.path.join(root, "data", "eval"), exist_ok=True)
    with open(os.path.join(root, "data", "eval", "utt2spk"), "w") as f:
        f.writelines(f"{u} {u.split('/')[0]}\n" for u in utts)
    rng = np.random.default_rng(5)
    enroll, test, labels = [], [], []
    for i, u in enumerate(utts):
        spk = i // UTTS_PER_ID
        for j in range(i + 1, (spk + 1) * UTTS_PER_ID):
            enroll.append(u), test.append(utts[j]), labels.append(1)
        for other in rng.choice([k for k in range(len(utts)) if k // UTTS_PER_ID != spk], 2, replace=False):
            enroll.append(u), test.append(utts[other]), labels.append(0)
    return enroll, test, np.array(labels, dtype=np.int8)


def _fake_system(exp, seed, name, trial_list, rng, gap, teacher_emb=None, part="eval"):
    """Scores with a label gap (larger = better) on every list of `part`; eval and train embeddings."""
    enroll, test, labels = trial_list
    for t in TRIALS:
        scores = (gap * labels + rng.normal(size=len(labels))).astype(np.float32)
        path = os.path.join(exp, f"seed{seed}", name, "scores", part, f"{t}.score")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_score_file(path, TrialScores(enroll, test, scores, labels))
    keys = _utts()
    emb = rng.normal(size=(len(keys), DIM)).astype(np.float32)
    if teacher_emb is not None:
        emb = (0.5 * teacher_emb + emb).astype(np.float32)
    for subset in ("train", "eval"):
        out = os.path.join(exp, f"seed{seed}", name, "embeddings", subset)
        os.makedirs(out, exist_ok=True)
        kaldiio.save_ark(os.path.join(out, "xvector.ark"), dict(zip(keys, emb)), scp=os.path.join(out, "xvector.scp"))
    return emb


def _gate_teacher(exp_dir):
    """A GATE teacher (toy config, 8-d) saved as bin.train would; returns its fusion module."""
    from wespeaker_avkd.checkpoint import flat_model_state, save_checkpoint
    from wespeaker_avkd.config.model_config import parse_model_config
    from wespeaker_avkd.config.train_config import load_yaml, save_config
    from wespeaker_avkd.data.kaldi_dir import make_spk2id, write_spk2id
    from wespeaker_avkd.systems.builders import build_net

    here = os.path.dirname(os.path.abspath(__file__))
    cfg = load_yaml(os.path.join(here, "..", "..", "egs", "voxceleb", "v_kd", "conf", "toy", "teacher.yaml"))
    cfg["model_args"] = {"audio_dim": DIM, "visual_dim": DIM, "embed_dim": DIM}
    save_config(cfg, os.path.join(exp_dir, "config.yaml"))
    spk2id = make_spk2id([f"id{i:05d}" for i in range(1, 4)])
    write_spk2id(os.path.join(exp_dir, "spk2id"), spk2id)
    torch.manual_seed(0)
    net = build_net(parse_model_config(cfg), len(spk2id))
    with torch.no_grad():  # a gate away from 0.5, so that visual/audio are told apart
        net.encoder.gate_net[-1].bias.fill_(1.0)
    save_checkpoint(os.path.join(exp_dir, "models", "avg_model.pt"),
                    flat_model_state(net.encoder.state_dict(), net.projection.state_dict()))
    return net.encoder.eval()


def build_report(exp, out, **settings):
    """The report of `exp` into `out` with ReportSettings' defaults but for `settings`; the tables' text."""
    return make_report(ReportSettings(exp=exp, **settings), out)


@pytest.fixture(scope="module")
def fake_exp(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("study"))
    exp = os.path.join(root, "exp")
    trial_list = _write_corpus(root)
    rng = np.random.default_rng(0)
    fusion = None
    for seed in (1, 2):
        teacher = _fake_system(exp, seed, "teacher", trial_list, rng, 3.0)
        _fake_system(exp, seed, "audio_baseline", trial_list, rng, 1.5, teacher)
        _fake_system(exp, seed, "visual_baseline", trial_list, rng, 1.0, teacher)
        for mod in ("visual", "audio"):
            _fake_system(exp, seed, student_name(mod, "KL"), trial_list, rng, 2.5, teacher)  # clearly better
            if seed == 1:  # COS+MMD trained for seed 1 only
                _fake_system(exp, seed, student_name(mod, "COS+MMD"), trial_list, rng, 1.2, teacher)
        if seed == 1:
            fusion = _gate_teacher(os.path.join(exp, "seed1", "teacher"))
    return root, exp, fusion


def test_build_report(fake_exp):
    root, exp, fusion = fake_exp
    out = os.path.join(root, "report")
    text = build_report(exp, out, seeds=(1, 2, 3), part="eval", trials=TRIALS,
                        utt2spk=os.path.join(root, "data", "eval", "utt2spk"), modalities=("visual", "audio"),
                        combos=("KL", "COS+MMD", "MMD"), num_boot=200, boot_seed=0)
    assert "Table 1" in text and "Table 2" in text and "Table 3" in text
    md = open(os.path.join(out, "results.md")).read()
    for f in ("det.png", "venn_visual.png", "venn_audio.png", "results.json"):
        assert os.path.getsize(os.path.join(out, f)) > 0, f
    record = json.load(open(os.path.join(out, "results.json")))
    assert record["settings"]["seeds_found"] == [1, 2]
    num_trials = record["lists"]["E"]["num_trials"]
    assert record["lists"]["E"]["num_identities"] == NUM_IDS
    # the EER cell is the mean over seeds of the scorer's EER of each seed's score file
    eers = [compute_metrics(ts.scores, ts.labels).eer for ts in
            (read_score_file(os.path.join(exp, f"seed{s}", "teacher", "scores", "eval", "E.score")) for s in (1, 2))]
    summary = record["summary"]["E"]["teacher"]["eer"]
    assert summary["per_seed"] == pytest.approx(eers)
    assert summary["mean"] == pytest.approx(np.mean(eers)) and summary["std"] == pytest.approx(np.std(eers, ddof=1))
    assert f"{100 * np.mean(eers):.2f} ± {100 * np.std(eers, ddof=1):.2f} [" in md
    assert summary["ci_low"] < summary["mean"] < summary["ci_high"] and summary["num_draws"] == 200
    # the clearly better KL students are "better", paired on both seeds; verdicts shown with Holm
    kl = record["paired"]["visual/KL/E"]
    assert kl["verdict"] == "better" and kl["seeds"] == [1, 2] and len(kl["per_seed_diff"]) == 2
    assert kl["holm_verdict"] in ("better", "no significant difference")
    # about the method: the standard error adds the seed variance of the per-seed differences (2 seeds)
    assert kl["method"] == "seeds and identities (t)"
    assert kl["se"] ** 2 == pytest.approx(kl["v_id"] + np.var(kl["per_seed_diff"], ddof=1) / 2)
    assert 0 < kl["mde"] < kl["mde_holm"] and "MDE" in md
    assert record["multiple_comparisons"]["num_comparisons"] == 8  # 2 modalities x 2 trained combos x 2 lists
    assert "would exclude 0 by chance" in md
    # a combo trained for one seed is compared on that seed only and flagged; one never trained is missing
    assert record["paired"]["audio/COS+MMD/O"]["seeds"] == [1]
    assert record["paired"]["audio/COS+MMD/O"]["method"].startswith("identities only, one seed")
    assert "not a statement about the method" in md
    assert "(1/2 seeds)" in md
    assert "| L_AAM + L_MMD | missing | - | - |" in md
    assert {"system": "visual_kd_mmd", "seed": 1, "list": "O", "reason": "no score file"} in record["missing"]
    assert "seed 3" not in md.split("### Missing")[0]
    # corrected trials (first seed) with base rates
    counts = record["corrected_trials"]["visual"]["KL"]["E"]
    assert sum(counts["venn"].values()) == counts["num_trials"] == num_trials
    assert 0.0 < counts["other_right_rate"] < 1.0 and "other right, all %" in md
    assert set(record["agreement"]) >= {"audio_baseline", "visual_kd_kl"}
    # gate: seed 1 has a real GATE teacher, seed 2 a teacher dir without a model (reported, not a crash)
    g = record["gate"]["per_seed"]["1"]
    assert g["visual"] + g["audio"] == pytest.approx(1.0) and g["num_utts"] == NUM_IDS * UTTS_PER_ID
    assert "2" in record["gate"]["unavailable"]
    # lists and provenance: O and E hold the same target trials here; no dev scores -> pairs not tested
    assert record["shared_targets"]["shared"]["O/E"] == record["shared_targets"]["targets"]["O"] > 0
    assert "not independent" in md and "O and E share" in md
    assert record["settings"]["identity_weighting"] == "per-identity"
    assert len(record["provenance"]["commit"]) == 40 and "Code: commit" in md
    pair = record["dev_chosen"]["pair_vs_single"]
    assert [(c["a"], c["why"]) for c in pair] == [("visual_kd_cos_mmd", "no dev scores, not tested"),
                                                  ("audio_kd_cos_mmd", "no dev scores, not tested")]
    assert "Not available: no dev scores" in md


def test_gate_value_is_the_visual_weight(fake_exp):
    """teacher_gate's visual share equals the GATE module's z on the baselines' embeddings, and z weights the
    visual projection: with h_visual = h_audio + 1 the fused output moves by exactly z."""
    _, exp, fusion = fake_exp
    audio = kaldiio.load_scp(os.path.join(exp, "seed1", "audio_baseline", "embeddings", "eval", "xvector.scp"))
    visual = kaldiio.load_scp(os.path.join(exp, "seed1", "visual_baseline", "embeddings", "eval", "xvector.scp"))
    keys = sorted(audio)
    a = torch.from_numpy(np.stack([audio[k] for k in keys]))
    v = torch.from_numpy(np.stack([visual[k] for k in keys]))
    z = fusion.gate_values(a, v)
    assert teacher_gate(exp, 1, "eval")["visual"] == pytest.approx(float(z.double().mean()), abs=1e-6)
    with torch.no_grad():
        fused, gate = fusion(a, v, return_gate=True)
        fusion.visual_proj.bias += 1.0
        shifted = fusion(a, v)
        fusion.visual_proj.bias -= 1.0
    np.testing.assert_allclose((shifted - fused).numpy(), gate.numpy(), atol=1e-5)


def test_cli_and_clear_errors(fake_exp, tmp_path, capsys):
    root, exp, _ = fake_exp
    utt2spk = os.path.join(root, "data", "eval", "utt2spk")
    rc = report_main(["--exp", exp, "--seeds", "1", "--trials", "E", "--utt2spk", utt2spk, "--kd_combos", "KL",
                      "--out", str(tmp_path / "r"), "--num_boot", "50", "--no_gate", "--boot_scheme", "one-way"])
    assert rc == 0 and "Table 2" in capsys.readouterr().out
    assert json.load(open(tmp_path / "r" / "results.json"))["settings"]["boot_scheme"] == "one-way"
    assert "one-way identity bootstrap" in open(tmp_path / "r" / "results.md").read()
    # no scores at all
    assert report_main(["--exp", str(tmp_path / "none"), "--utt2spk", utt2spk, "--out", str(tmp_path / "x")]) == 2
    assert "no scored system" in capsys.readouterr().err
    # an utterance without identity
    short = tmp_path / "utt2spk"
    short.write_text("".join(open(utt2spk).readlines()[1:]))
    assert report_main(["--exp", exp, "--trials", "E", "--utt2spk", str(short), "--out", str(tmp_path / "y"),
                        "--no_gate"]) == 2
    assert "has no identity in utt2spk" in capsys.readouterr().err


def test_report_bootstrap_is_shared_and_reproducible(fake_exp, tmp_path):
    """Same boot_seed -> same intervals; the list's draws depend on its name, not on the systems present."""
    root, exp, _ = fake_exp
    utt2spk = os.path.join(root, "data", "eval", "utt2spk")
    runs = []
    for combos in (("KL",), ("KL", "COS+MMD")):
        out = str(tmp_path / "-".join(combos))
        build_report(exp, out, seeds=(1, 2), trials=("E",), utt2spk=utt2spk, combos=combos, num_boot=100,
                     with_gate=False)
        runs.append(json.load(open(os.path.join(out, "results.json"))))
    assert runs[0]["summary"]["E"]["teacher"] == runs[1]["summary"]["E"]["teacher"]
    counts = bootstrap.draw_identity_counts(NUM_IDS, 3, bootstrap.list_rng(0, "E"))
    assert counts.shape == (3, NUM_IDS)


def test_runs_with_other_trials_are_reported_missing(fake_exp, tmp_path):
    """A score file whose trials differ from the list's reference run is left out and named, not bootstrapped
    on the wrong identities."""
    import shutil

    root, exp, _ = fake_exp
    copy = str(tmp_path / "exp")
    shutil.copytree(exp, copy)
    path = os.path.join(copy, "seed2", "visual_kd_kl", "scores", "eval", "E.score")
    ts = read_score_file(path)
    write_score_file(path, TrialScores(ts.enroll[:-1], ts.test[:-1], ts.scores[:-1], ts.labels[:-1]))
    out = str(tmp_path / "r")
    build_report(copy, out, seeds=(1, 2), trials=("E",), utt2spk=os.path.join(root, "data", "eval", "utt2spk"),
                 combos=("KL",), num_boot=50, with_gate=False)
    record = json.load(open(os.path.join(out, "results.json")))
    reasons = [m["reason"] for m in record["missing"] if m["system"] == "visual_kd_kl" and m["seed"] == 2]
    assert len(reasons) == 1 and "trials differ" in reasons[0]
    assert record["summary"]["E"]["visual_kd_kl"]["eer"]["seeds"] == [1]
    assert record["paired"]["visual/KL/E"]["seeds"] == [1]


def test_dev_chosen_comparisons(tmp_path):
    """The better single and the best student are chosen on dev even when eval would choose otherwise; the pair
    and the teacher are compared with them on eval; the dev section sizes the seed count; --command is kept."""
    root = str(tmp_path)
    exp = os.path.join(root, "exp")
    trial_list = _write_corpus(root)
    os.makedirs(os.path.join(root, "data", "dev"))
    with open(os.path.join(root, "data", "dev", "utt2spk"), "w") as f:
        f.writelines(f"{u} {u.split('/')[0]}\n" for u in _utts())
    rng = np.random.default_rng(1)
    # name: (eval gap, dev gap); on eval KL beats MMD, on dev MMD beats KL
    gaps = {"teacher": (3.0, 3.0), "audio_baseline": (1.5, 1.5), "visual_baseline": (1.0, 1.0),
            student_name("audio", "KL"): (2.5, 1.6), student_name("audio", "MMD"): (1.6, 2.5),
            student_name("audio", "KL+MMD"): (2.0, 2.0)}
    for seed in (1, 2, 3):
        for name, (eval_gap, dev_gap) in gaps.items():
            _fake_system(exp, seed, name, trial_list, rng, eval_gap)
            _fake_system(exp, seed, name, trial_list, rng, dev_gap, part="dev")
    out = str(tmp_path / "r")
    command = "bash egs/voxceleb/run.sh --seeds '1 2 3'"
    rc = report_main(["--exp", exp, "--seeds", "1", "2", "3", "--trials", *TRIALS, "--utt2spk",
                      os.path.join(root, "data", "eval", "utt2spk"), "--dev_utt2spk",
                      os.path.join(root, "data", "dev", "utt2spk"), "--modalities", "audio", "--kd_combos", "KL",
                      "MMD", "KL+MMD", "--out", out, "--num_boot", "100", "--no_gate", "--command", command])
    assert rc == 0
    record = json.load(open(os.path.join(out, "results.json")))
    md = open(os.path.join(out, "results.md")).read()
    assert record["provenance"]["command"] == command and f"Command: `{command}`" in md
    (pair,) = record["dev_chosen"]["pair_vs_single"]
    assert (pair["a"], pair["b"]) == ("audio_kd_kl_mmd", "audio_kd_mmd") and "better single on dev" in pair["why"]
    c = pair["per_list"]["E"]
    eer = {n: [record["metrics"][n][str(s)]["E"]["eer"] for s in (1, 2, 3)]
           for n in ("audio_kd_kl_mmd", "audio_kd_mmd")}
    assert c["per_seed_diff"] == pytest.approx(np.subtract(eer["audio_kd_kl_mmd"], eer["audio_kd_mmd"]))
    assert c["method"] == "seeds and identities (t)" and c["holm_verdict"]
    (teacher,) = record["dev_chosen"]["teacher_vs_best"]
    assert teacher["b"] == "audio_kd_mmd" and teacher["per_list"]["O"]["mean_diff"] < 0
    power = record["dev_chosen"]["power"]["audio"]["O"]
    assert power["num_students"] == 3 and power["seeds"] == 3 and power["seed_var"] >= 0 and power["v_id"] > 0
    assert power["seeds_needed"] is None or power["seeds_needed"] >= 2
    assert "Pair student against its better single-loss student" in md and "seeds needed" in md
