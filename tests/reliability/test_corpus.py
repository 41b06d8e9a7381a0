"""make_toy_corpus reuses a corpus only when it is the same content: same knobs, same code, tables intact."""
import os
import re
import subprocess
import sys

import pytest
import yaml

from wespeaker_avkd.data.kaldi_dir import read_table
from wespeaker_avkd.data.toy_corpus import ensure_corpus, generate_corpus, load_config, stale_reason
from wespeaker_avkd.data.toy_corpus.stamp import STAMP_NAME

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_YAML = os.path.join(REPO, "egs", "voxceleb", "v_kd", "conf", "tiny", "corpus.yaml")
# The recipe's tiny corpus, made smaller still: two identities per part, one short segment per video.
SMALLER = {"layout": {"train_speakers": 2, "eval_speakers": 2, "dev_speakers": 2, "segments_per_video": [1, 1]},
           "audio": {"duration": [0.3, 0.4]}, "face": {"image_size": 24}}


def _cfg(**extra):
    cfg = load_config(TINY_YAML, SMALLER)
    cfg.update(extra)
    return cfg


def _make(out, cfg, logs=None, **kw):
    return ensure_corpus(str(out), cfg, generate_corpus, log=(logs.append if logs is not None else lambda m: None),
                         num_workers=1, progress=False, **kw)


def _snapshot(out):
    """{relative path: (mtime_ns, bytes)} of every file under out: tells a kept corpus from a remade one."""
    snap = {}
    for d, _, names in os.walk(out):
        for n in names:
            p = os.path.join(d, n)
            snap[os.path.relpath(p, out)] = (os.stat(p).st_mtime_ns, open(p, "rb").read())
    return snap


@pytest.fixture
def corpus(tmp_path):
    out = tmp_path / "data"
    assert _make(out, _cfg()) is not None
    return out


def test_same_config_skips_and_touches_nothing(corpus, tmp_path):
    before = _snapshot(corpus)
    logs = []
    assert _make(corpus, _cfg(num_workers=2), logs) is None  # worker count changes no byte: same corpus
    assert any("skipping" in m for m in logs)
    assert _snapshot(corpus) == before
    assert stale_reason(str(corpus), _cfg()) is None
    assert not [n for n in os.listdir(corpus) if n.startswith(".toy_corpus.")]  # no temp dirs left


@pytest.mark.parametrize("change", ["seed", "knob"])
def test_changed_config_regenerates_and_keeps_foreign_files(corpus, change):
    (corpus / "train_mean").mkdir()
    (corpus / "train_mean" / "utt2spk").write_text("x y\n")  # a file the recipe keeps beside the corpus
    old_eval = (corpus / "eval" / "wav.scp").read_text()
    cfg = _cfg()
    if change == "seed":
        cfg["seed"] += 1
    else:
        cfg["audio"] = {**cfg["audio"], "duration": [0.5, 0.6]}
    assert "another config" in stale_reason(str(corpus), cfg)
    logs = []
    summary = _make(corpus, cfg, logs)
    assert summary is not None and any("generating" in m for m in logs)
    new_eval = (corpus / "eval" / "wav.scp").read_text()
    if change == "seed":
        assert new_eval != old_eval  # other video ids
    wavs = read_table(corpus / "eval" / "wav.scp")
    assert all(p.startswith(str(corpus) + os.sep) and os.path.isfile(p) for p in wavs.values())
    assert stale_reason(str(corpus), cfg) is None and stale_reason(str(corpus), _cfg()) is not None
    assert (corpus / "train_mean" / "utt2spk").read_text() == "x y\n"
    assert sorted(n for n in os.listdir(corpus) if n.startswith(".")) == [STAMP_NAME]
    # nothing of the old corpus stays behind: every media file is one the new tables name
    media = {os.path.join(d, n) for sub in ("wav",) for d, _, ns in os.walk(corpus / sub) for n in ns}
    named = set()
    for part in ("train", "eval", "dev"):
        named |= set(read_table(corpus / part / "wav.scp").values())
    assert media == named


@pytest.mark.parametrize("damage", ["delete dev/trials/E", "edit eval/utt2spk", "delete a wav", "delete stamp"])
def test_damaged_corpus_regenerates(corpus, damage):
    good = _snapshot(corpus)
    if damage == "delete dev/trials/E":
        os.remove(corpus / "dev" / "trials" / "E")
    elif damage == "edit eval/utt2spk":
        with open(corpus / "eval" / "utt2spk", "a") as f:
            f.write("id19999/zzzzzzzzzzz/00001 id19999\n")
    elif damage == "delete a wav":
        os.remove(sorted(read_table(corpus / "dev" / "wav.scp").values())[0])
    else:
        os.remove(corpus / STAMP_NAME)
    assert stale_reason(str(corpus), _cfg()) is not None
    assert _make(corpus, _cfg()) is not None
    now = _snapshot(corpus)
    # the same knobs give the same bytes back (only the stamp's own json may be rewritten identically)
    assert {k: v[1] for k, v in now.items()} == {k: v[1] for k, v in good.items()}
    assert stale_reason(str(corpus), _cfg()) is None


def test_failed_generation_keeps_the_old_corpus(corpus):
    good = _snapshot(corpus)

    def broken(tmp, cfg, **kw):
        generate_corpus(tmp, cfg, **kw)  # a complete corpus in the temp dir, then the process "dies"
        raise KeyboardInterrupt

    cfg = _cfg(seed=_cfg()["seed"] + 1)
    with pytest.raises(KeyboardInterrupt):
        ensure_corpus(str(corpus), cfg, broken, log=lambda m: None, num_workers=1, progress=False)
    assert _snapshot(corpus) == good
    assert stale_reason(str(corpus), _cfg()) is None
    assert not [n for n in os.listdir(corpus) if n.startswith(".toy_corpus.")]


def test_cli_skips_second_call_and_force_regenerates(tmp_path):
    import yaml

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(yaml.safe_dump(SMALLER))
    out = tmp_path / "d"
    cmd = [sys.executable, "-m", "wespeaker_avkd.bin.make_toy_corpus", "--out", str(out), "--config", str(cfg_file),
           "--no_progress", "--num_workers", "1"]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "/dev/trials/O" in first.stdout
    stamp = (out / STAMP_NAME).read_text()
    second = subprocess.run(cmd, capture_output=True, text=True)
    assert second.returncode == 0 and "skipping" in second.stdout and "/dev/trials" not in second.stdout
    forced = subprocess.run(cmd + ["--force"], capture_output=True, text=True)
    assert forced.returncode == 0 and "/dev/trials/O" in forced.stdout
    assert (out / STAMP_NAME).read_text() == stamp  # same content, same stamp
    bad = subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.make_toy_corpus", "--out", str(out),
                          "--config", str(tmp_path / "missing.yaml")], capture_output=True, text=True)
    assert bad.returncode != 0 and "missing.yaml" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("override,match", [
    ({"layout": {"train_speakers": 2.5}}, "'layout.train_speakers' must be an integer"),
    ({"layout": {"train_speakers": "abc"}}, "'layout.train_speakers' must be an integer"),
    ({"audio": {"vtl_spread": float("nan")}}, "'audio.vtl_spread' must be a finite number"),
    ({"audio": {"snr_db": [20.0, float("inf")]}}, "'audio.snr_db' must be a list of finite numbers"),
    ({"layout": {"videos_per_speaker": [2, 2.5]}}, "'layout.videos_per_speaker' must be a list of integers"),
    ({"audio": {"mbrola": {"fetch": "yes"}}}, "'audio.mbrola.fetch' must be true or false"),
    ({"face": 3}, "'face' must be a mapping"),
    ({"layout": {"train_speakerz": 2}}, "unknown key 'layout.train_speakerz'"),
])
def test_corpus_knob_of_the_wrong_kind_is_named(tmp_path, override, match):
    from wespeaker_avkd.data.toy_corpus.config import CorpusConfigError

    path = tmp_path / "corpus.yaml"
    path.write_text(yaml.safe_dump(override))
    with pytest.raises(CorpusConfigError, match=f"toy corpus config {path}: .*{re.escape(match)}"):
        load_config(str(path))
    assert load_config(TINY_YAML, SMALLER)["layout"]["train_speakers"] == 2  # the shipped knobs pass
