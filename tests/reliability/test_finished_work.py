"""Nothing finished is destroyed or silently kept: --overwrite sets old results aside until the new run completes,
refusals come before any write, re-runs are keyed by the training data's content, num_epochs / num_avg act or
are refused, deleted outputs are recreated, and outputs are written only as fresh regular files."""
import glob
import os
import stat
import sys

import numpy as np
import pytest
import soundfile as sf

from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.config.train_config import ConfigError
from wespeaker_avkd.data.kaldi_dir import SameDirError, read_table, subset_data_dir
from wespeaker_avkd.train.trainer import run_training
from wespeaker_avkd.utils.fileio import OutputPathError, atomic_write, create_exclusive, temp_path_beside
from wespeaker_avkd.utils.fingerprint import read_stamp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: the trainer's fakes
from train.fakes import FakeLoader, fake_loaders, tiny_config  # noqa: E402


def _data_dir(path, num_spk=4, num_utts=48, prefix="utt"):
    """utt2spk plus a wav.scp listing one (dummy) file per utterance: the tables a training's stamp covers."""
    path.mkdir(parents=True, exist_ok=True)
    utts = [f"{prefix}{i}" for i in range(num_utts)]
    (path / "utt2spk").write_text("".join(f"{u} spk{i % num_spk}\n" for i, u in enumerate(utts)))
    (path / "wav.scp").write_text("".join(f"{u} {path}/{u}.wav\n" for u in utts))
    for u in utts:
        (path / f"{u}.wav").write_bytes(b"RIFF" + u.encode())
    return str(path)


def _train(data, exp, overwrite=False, **extra):
    return run_training(tiny_config(data, **extra), str(exp), device="cpu", num_threads=1, progress=False,
                        loaders=fake_loaders(), overwrite=overwrite)


def _bytes(*paths):
    return [open(p, "rb").read() for p in paths]


def _finished(tmp_path):
    """A finished 3-epoch run (num_avg 2) -> (data dir, exp dir, its run files)."""
    data, exp = _data_dir(tmp_path / "data"), tmp_path / "exp"
    _train(data, exp)
    files = [str(exp / name) for name in ("config.yaml", "spk2id", "models/avg_model.pt", "train_inputs.json")]
    return data, exp, files


# ------------------------------------------------------------------ --overwrite
def test_overwrite_with_a_mistyped_train_data_keeps_the_finished_model(tmp_path):
    data, exp, files = _finished(tmp_path)
    before = _bytes(*files)
    with pytest.raises(FileNotFoundError, match="no_such_data"):
        _train(str(tmp_path / "no_such_data"), exp, overwrite=True)
    assert _bytes(*files) == before
    assert not glob.glob(str(exp / "models.old-*"))


def test_overwrite_sets_the_old_models_aside_until_the_new_run_completes(tmp_path, monkeypatch):
    data, exp, files = _finished(tmp_path)
    old_avg = _bytes(str(exp / "models" / "avg_model.pt"))[0]
    original_iter = FakeLoader.__iter__

    def dies_in_epoch_2(self):
        for i, batch in enumerate(original_iter(self)):
            if self.epoch == 2 and i == 1:
                raise KeyboardInterrupt("simulated crash")
            yield batch

    monkeypatch.setattr(FakeLoader, "__iter__", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        _train(data, exp, overwrite=True, seed=8)
    aside = glob.glob(str(exp / "models.old-*"))
    assert len(aside) == 1 and _bytes(os.path.join(aside[0], "avg_model.pt"))[0] == old_avg  # still there
    monkeypatch.setattr(FakeLoader, "__iter__", original_iter)
    for path in aside:  # a finished overwrite deletes exactly what it set aside
        os.rename(path, str(exp / "kept_by_the_user"))
    _train(data, exp, overwrite=True, seed=8)
    assert not glob.glob(str(exp / "models.old-*"))
    assert _bytes(str(exp / "models" / "avg_model.pt"))[0] != old_avg  # retrained with seed 8
    assert os.path.isdir(exp / "kept_by_the_user")


# ------------------------------------------------------------------ re-runs keyed by content
def test_changed_speaker_set_is_refused_before_spk2id_is_rewritten(tmp_path):
    data, exp, files = _finished(tmp_path)
    before = _bytes(*files)
    _data_dir(tmp_path / "data", num_spk=5)  # the same path, another speaker list
    with pytest.raises(ConfigError, match=r"spk2id: .*trained on 4 speakers.*now has 5"):
        _train(data, exp)
    assert _bytes(*files) == before


@pytest.mark.parametrize("regenerate, named", [
    (lambda d: (d / "utt7.wav").write_bytes(b"RIFF another seed"), "the files its tables list"),
    (lambda d: _data_dir(d, prefix="u"), "utt2spk, wav.scp"),  # same speakers, other utterances
])
def test_corpus_regenerated_at_the_same_path_is_refused(tmp_path, regenerate, named):
    data, exp, files = _finished(tmp_path)
    _train(data, exp)  # unchanged data: the finished run is kept (the control)
    before, stamp = _bytes(*files), read_stamp(exp / "train_inputs.json")
    regenerate(tmp_path / "data")
    with pytest.raises(ConfigError, match=f"trained on other data .*changed: {named}"):
        _train(data, exp)
    assert _bytes(*files) == before
    _train(data, exp, overwrite=True)  # retraining on the new data is one flag away
    assert read_stamp(exp / "train_inputs.json") != stamp


def test_fewer_num_epochs_on_a_finished_run_is_refused(tmp_path):
    data, exp, files = _finished(tmp_path)
    before = _bytes(*files)
    with pytest.raises(ConfigError, match=r"num_epochs 2 is below the 3 epochs already trained"):
        _train(data, exp, num_epochs=2)
    assert _bytes(*files) == before


def test_more_num_epochs_continues_training(tmp_path):
    data, exp, _ = _finished(tmp_path)
    _train(data, exp, num_epochs=4)
    models = str(exp / "models")
    assert sorted(ckpt.list_checkpoints(models)) == [3, 4]
    assert read_stamp(ckpt.average_stamp_path(os.path.join(models, "avg_model.pt")))["epochs"] == [3, 4]


def test_num_avg_on_a_finished_run_acts_or_is_refused(tmp_path):
    data, exp, files = _finished(tmp_path)
    before = _bytes(*files)
    with pytest.raises(ConfigError, match=r"num_avg 3 averages epochs 1\.\.3, but .* no longer holds epochs \[1\]"):
        _train(data, exp, num_avg=3)
    assert _bytes(*files) == before
    _train(data, exp, num_avg=1)  # fewer: re-averaged from the kept epochs
    models = str(exp / "models")
    assert read_stamp(ckpt.average_stamp_path(os.path.join(models, "avg_model.pt")))["epochs"] == [3]
    avg, last = ckpt.load_model_state(os.path.join(models, "avg_model.pt")), ckpt.load_model_state(
        os.path.join(models, "model_3.pt"))
    assert all(np.array_equal(avg[k].numpy(), last[k].numpy()) for k in last)


def test_batch_size_changed_on_a_finished_run_is_refused(tmp_path):
    data, exp, files = _finished(tmp_path)
    before = _bytes(*files)
    with pytest.raises(ConfigError, match=r"finished \(3 epochs\); \['dataloader_args.batch_size'\]"):
        _train(data, exp, dataloader_args={"batch_size": 4})
    assert _bytes(*files) == before


# ------------------------------------------------------------------ subset into itself
def test_subset_into_its_own_source_is_refused(tmp_path):
    src = tmp_path / "train"
    _data_dir(src)
    before = _bytes(str(src / "utt2spk"), str(src / "wav.scp"))
    os.symlink(src, tmp_path / "alias")
    for dst in (src, tmp_path / "alias", str(src) + "/"):
        with pytest.raises(SameDirError, match="is the source data dir"):
            subset_data_dir(str(src), str(dst), 5)
    assert _bytes(str(src / "utt2spk"), str(src / "wav.scp")) == before
    assert len(subset_data_dir(str(src), str(tmp_path / "sub"), 5)) == 5  # another dir still works


# ------------------------------------------------------------------ outputs are fresh regular files
def _non_regular_outputs(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "to_null"
    os.symlink("/dev/null", link)
    (tmp_path / "a_dir").mkdir()
    return {"named pipe": fifo, "character device": link, "directory": tmp_path / "a_dir"}


def test_non_regular_outputs_are_refused(tmp_path):
    for kind, path in _non_regular_outputs(tmp_path).items():
        with pytest.raises(OutputPathError, match=f"{path} exists and is a {kind}"):
            with atomic_write(path) as f:
                f.write("x")
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode) and os.readlink(tmp_path / "to_null") == "/dev/null"
    assert not glob.glob(str(tmp_path / ".*.tmp"))


def test_extraction_output_that_is_a_pipe_is_refused(tmp_path):
    from wespeaker_avkd.inference.outputs import write_xvectors

    os.mkfifo(tmp_path / "xvector.scp")
    with pytest.raises(OutputPathError, match="named pipe"):
        write_xvectors(str(tmp_path), ["a"], {"a": np.ones(3)}, "tag")
    assert sorted(os.listdir(tmp_path)) == ["xvector.scp"]


def test_temporary_files_never_follow_a_planted_symlink(tmp_path):
    from wespeaker_avkd.data.features import _extract_block

    victim = tmp_path / "victim"
    victim.write_text("precious")
    base = str(tmp_path / "raw_fbank.1.1")
    for name in (base + ".ark.tmp", base + ".scp.tmp"):  # the fixed names the writer used before
        os.symlink(victim, name)
    sf.write(str(tmp_path / "a.wav"), np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype(np.float32), 16000)
    assert _extract_block((base, ["a"], [str(tmp_path / "a.wav")], {"num_mel_bins": 8}, 16000, None, "s")) == 1
    assert victim.read_text() == "precious"
    assert list(read_table(base + ".scp")) == ["a"]
    with pytest.raises(FileExistsError):
        create_exclusive(base + ".ark.tmp")  # O_EXCL | O_NOFOLLOW: a planted link is never opened
    with temp_path_beside(tmp_path / "out") as tmp:
        assert not os.path.islink(tmp) and os.path.getsize(tmp) == 0


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_output_modes_follow_the_umask(tmp_path, umask):
    from wespeaker_avkd.inference.outputs import write_xvectors

    old = os.umask(umask)
    try:
        scp = write_xvectors(str(tmp_path), ["a", "b"], {"a": np.ones(3), "b": np.zeros(3)}, "tag")
        with atomic_write(tmp_path / "table") as f:
            f.write("a 1\n")
    finally:
        os.umask(old)
    ark = glob.glob(str(tmp_path / "xvector.*.ark"))[0]
    for path in (scp, ark, str(tmp_path / "table")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask, path


# ------------------------------------------------------------------ deleted outputs are recreated
def test_deleted_mean_vector_is_recreated(tmp_path, tiny_dirs):
    from wespeaker_avkd.inference.extract import extract_embeddings

    utt2spk = tiny_dirs.speakers(6, 2)
    data, _ = tiny_dirs.feats_dir(tmp_path / "data", utt2spk, [20] * 6)
    cfg = {"modality": "audio", "model": "TinyTestNet", "model_args": {"feat_dim": 6, "embed_dim": 8},
           "dataset_args": {"feat_source": "feats"}, "eval_dataloader_args": {"batch_size": 2}}
    exp, _ = tiny_dirs.untrained_exp(tmp_path / "exp", cfg, utt2spk.values())
    out = tmp_path / "emb"

    def extract():  # -> the inode of the scp it leaves (a redo renames a new one into place)
        extract_embeddings(exp, data, str(out), mean_vec=True, progress=False)
        return os.stat(out / "xvector.scp").st_ino

    first = extract()
    mean = (out / "mean_vec.npy").read_bytes()
    assert extract() == first  # complete: skipped (the control)
    os.unlink(out / "mean_vec.npy")
    second = extract()
    assert second != first and (out / "mean_vec.npy").read_bytes() == mean  # redone, the same vector
    assert extract() == second
