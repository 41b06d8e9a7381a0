"""Hostile and careless inputs (issue 17, input half): no table value runs a command, a saved model's plugins are
not imported without --trust_plugins, a yaml alias bomb fails fast, NaN/Inf or too-short audio and features and
odd mean vectors are named errors. Every check that something did not run looks for the marker file the
command or module would have written."""
import os
import pickle
import signal
import subprocess
import sys
import time

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import yaml

from wespeaker_avkd.data.features import FbankError, extract_fbank_dir, read_feats
from wespeaker_avkd.data.kaldi_dir import TableError, read_multi_table, read_scp, read_table
from wespeaker_avkd.data.validate import validate_data_dir
from wespeaker_avkd.scoring import ScoringError, load_embeddings, load_mean_vector
from wespeaker_avkd.utils.errors import NamedError


@pytest.fixture()
def table(tmp_path):
    """Three 4-d embeddings k0..k2 in e.ark/e.scp; returns (tmp_path, scp lines, marker path a command would touch)."""
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/e.ark,{tmp_path}/e.scp") as w:
        for i in range(3):
            w[f"k{i}"] = np.full(4, i + 1, np.float32)
    return tmp_path, (tmp_path / "e.scp").read_text().splitlines(), tmp_path / "MARKER"


def _hostile_values(marker):
    """Table values Kaldi/kaldiio would run or read from elsewhere, with the message each must give."""
    return [(f"touch {marker} |", "is a Kaldi pipe"), (f"| touch {marker}", "is a Kaldi pipe"),
            (f"sh -c 'touch {marker}'|", "is a Kaldi pipe"), ("-", "standard input"),
            (f"ark:{marker}.ark", "rspecifier"), (f"ark,s,cs:touch {marker} |", "is a Kaldi pipe")]


@pytest.mark.parametrize("which", range(6))
def test_embedding_table_refuses_pipes_naming_file_and_line(table, which):
    """xvector.scp, --mean_vec/--cohort tables, a teacher's embedding_dirs and kd_export all read through
    load_embeddings: a pipe line is refused with file:line before anything runs."""
    tmp_path, lines, marker = table
    value, why = _hostile_values(marker)[which]
    scp = tmp_path / "x.scp"
    scp.write_text(f"{lines[0]}\nk1 {value}\n{lines[2]}\n")
    with pytest.raises(TableError, match=rf"^{scp}:2: .*{why}") as err:
        load_embeddings(scp)
    assert isinstance(err.value, ScoringError) and isinstance(err.value, NamedError)  # scoring's handlers catch it
    with pytest.raises(TableError, match=rf"^{scp}:2: "):
        load_mean_vector(scp)
    from wespeaker_avkd.data.datasets import load_embedding_table  # the teacher and fusion datasets' reader

    with pytest.raises(TableError, match=rf"^{scp}:2: "):
        load_embedding_table(str(scp))
    assert not marker.exists()


def test_clean_tables_read_as_before(table):
    """Valid tables give the values kaldiio itself reads (the reader changes nothing on valid input)."""
    tmp_path, lines, _ = table
    keys, emb = load_embeddings(tmp_path / "e.scp")
    ref = dict(kaldiio.load_scp_sequential(str(tmp_path / "e.scp")))
    assert keys == ["k0", "k1", "k2"] and all(np.array_equal(emb[i], ref[k]) for i, k in enumerate(keys))
    keys_ark, emb_ark = load_embeddings(tmp_path / "e.ark")
    assert keys_ark == keys and np.array_equal(emb_ark, emb)


def test_pickled_ark_entry_is_never_unpickled(tmp_path):
    """kaldiio unpickles an ark entry that starts with 'PKL'; the table reader refuses it as not a Kaldi matrix."""
    marker = tmp_path / "MARKER"

    class Hostile:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "p.ark").write_bytes(b"k0 PKL" + pickle.dumps(Hostile()))
    (tmp_path / "p.scp").write_text(f"k0 {tmp_path}/p.ark:3\n")
    with pytest.raises(ScoringError, match=r"p.scp: cannot read embeddings: entry 'k0' \(line 1\) .*not a Kaldi "
                                           r"matrix or vector \(starts with b'PKL"):
        load_embeddings(tmp_path / "p.scp")
    with pytest.raises(ScoringError, match=r"p.ark: cannot read embeddings: the first entry .*not a Kaldi matrix"):
        load_embeddings(tmp_path / "p.ark")
    with pytest.raises(FbankError, match=r"utterance 'k0' .*not a Kaldi matrix"):
        read_feats(f"{tmp_path}/p.ark:3", "k0", "feats.scp")
    assert not marker.exists()


def test_named_pipe_as_ark_is_refused_without_blocking(table):
    tmp_path, lines, _ = table
    os.mkfifo(tmp_path / "fifo.ark")
    (tmp_path / "f.scp").write_text(f"k0 {tmp_path}/fifo.ark:0\n")
    signal.alarm(20)  # a reader that opened the FIFO would wait for a writer for ever
    try:
        with pytest.raises(TableError, match=r"f.scp:1: .*fifo.ark is not a regular file"):
            load_embeddings(tmp_path / "f.scp")
        with pytest.raises(TableError, match=r"fifo.ark is not a regular file"):
            read_feats(f"{tmp_path}/fifo.ark:0", "k0", "feats.scp")
    finally:
        signal.alarm(0)


def test_feats_scp_pipe_refused_by_readers_loader_and_validator(tmp_path):
    utts = ["u0", "u1", "u2"]
    d = _wav_dir(tmp_path, {u: np.zeros(1600, np.float32) for u in utts})
    kaldiio.save_ark(str(d / "feats.ark"), {u: np.ones((20, 6), np.float32) for u in utts}, scp=str(d / "feats.scp"))
    assert validate_data_dir(str(d), deep=True) == []
    marker = tmp_path / "MARKER"
    scp = d / "feats.scp"
    lines = scp.read_text().splitlines()
    lines[1] = f"u1 touch {marker} |"
    scp.write_text("\n".join(lines) + "\n")
    with pytest.raises(TableError, match=rf"^{scp}:2: 'touch .* \|' is a Kaldi pipe"):
        read_table(scp)
    with pytest.raises(TableError, match=r"is a Kaldi pipe"):
        read_feats(f"touch {marker} |", "u1", str(scp))
    from loader_sections import build_train_loader

    with pytest.raises(TableError, match=rf"^{scp}:2: "):
        build_train_loader("audio", str(d), {"s0": 0}, {"feat_source": "feats"}, {"batch_size": 2}, 0)
    for deep in (False, True):  # the validator reports it as a problem of that line
        assert [str(p) for p in validate_data_dir(str(d), deep=deep)] == [
            f"{scp}:2: utterance 'u1': 'touch {marker} |' is a Kaldi pipe (it would run a command); only file paths "
            "are read"]
    assert not marker.exists()


def test_paths_with_spaces_are_still_plain_files(tmp_path):
    """The package allows spaces in paths (a table value is the rest of its line): not mistaken for a command."""
    d = _wav_dir(tmp_path, {"u0": np.zeros(1600, np.float32)})
    ark_dir = tmp_path / "feat dir"
    ark_dir.mkdir()
    kaldiio.save_ark(str(ark_dir / "feats.ark"), {"u0": np.ones((20, 6), np.float32)}, scp=str(d / "feats.scp"))
    assert validate_data_dir(str(d), deep=True) == []
    value = read_table(d / "feats.scp")["u0"]
    assert " " in value and read_feats(value, "u0", "feats.scp").shape == (20, 6)


@pytest.mark.parametrize("name", ["wav.scp", "faces.scp"])
def test_wav_and_faces_tables_refuse_pipes(tmp_path, name):
    path = tmp_path / name
    path.write_text("u0 a.wav\nu1 sox x.wav -t wav - |\n")
    reader = read_multi_table if name == "faces.scp" else read_table
    with pytest.raises(TableError, match=rf"^{path}:2: 'sox x.wav -t wav - \|' is a Kaldi pipe"):
        reader(path)
    listing = tmp_path / "my_list.txt"  # bin.embed --wav_scp / --faces_scp take any name
    listing.write_text("u0 ark:x.ark\n")
    with pytest.raises(TableError, match=rf"^{listing}:1: 'ark:x.ark' is an rspecifier"):
        read_scp(listing, multi=True)


# ---- plugins of a saved model config ----

def _plugin(tmp_path, name, marker):
    (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")


def _exp_with_plugin(tmp_path, name):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump({"modality": "audio", "model": "ResNet34",
                                                     "model_args": {"feat_dim": 40, "embed_dim": 8},
                                                     "plugins": [name]}))
    return exp


def test_saved_config_plugins_need_trust(tmp_path, monkeypatch):
    from wespeaker_avkd.config.model_config import exp_model_config
    from wespeaker_avkd.registry import PluginError, trust_saved_plugins

    marker = tmp_path / "MARKER"
    _plugin(tmp_path, "hostile_plugin_a1", marker)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("WESPEAKER_AVKD_TRUST_PLUGINS", raising=False)
    exp = _exp_with_plugin(tmp_path, "hostile_plugin_a1")
    with pytest.raises(PluginError, match=rf"^{exp}/config.yaml: the saved config names plugin module\(s\) "
                                          r"'hostile_plugin_a1' under 'plugins:'.*--trust_plugins"):
        exp_model_config(str(exp))
    assert not marker.exists() and "hostile_plugin_a1" not in sys.modules
    trust_saved_plugins(True)
    try:
        assert exp_model_config(str(exp)).plugins == ["hostile_plugin_a1"]
    finally:
        trust_saved_plugins(False)
    assert marker.read_text() == "imported"


def test_already_imported_plugin_needs_no_trust(tmp_path):
    """A module this process has imported already runs nothing when named again (training, then extraction)."""
    from wespeaker_avkd.config.model_config import exp_model_config

    exp = _exp_with_plugin(tmp_path, "json")
    assert exp_model_config(str(exp)).plugins == ["json"]


def test_training_config_still_imports_its_plugins(tmp_path, monkeypatch):
    """A config the user trains with is the user's own: its plugins are imported without any flag."""
    from wespeaker_avkd.config.train_config import parse_model_and_head
    from wespeaker_avkd.utils.schema import Where

    marker = tmp_path / "MARKER"
    _plugin(tmp_path, "hostile_plugin_train_b2", marker)
    monkeypatch.syspath_prepend(str(tmp_path))
    parse_model_and_head({"model": "ResNet34", "model_args": {"feat_dim": 40}}, Where(""), "audio",
                         ["hostile_plugin_train_b2"])
    assert marker.read_text() == "imported"


@pytest.mark.parametrize("tool", ["embed", "extract", "export"])
def test_entry_points_refuse_untrusted_plugins_in_one_line(tmp_path, tool):
    marker = tmp_path / "MARKER"
    _plugin(tmp_path, "hostile_plugin_c3", marker)
    exp = _exp_with_plugin(tmp_path, "hostile_plugin_c3")
    args = {"embed": ["--inputs", "a.wav"], "extract": ["--data", str(tmp_path)],
            "export": ["--format", "torchscript", "--out", str(tmp_path / "m.pt")]}[tool]
    env = {k: v for k, v in os.environ.items() if k != "WESPEAKER_AVKD_TRUST_PLUGINS"}
    r = subprocess.run([sys.executable, "-m", f"wespeaker_avkd.bin.{tool}", "--exp_dir", str(exp), *args],
                       capture_output=True, text=True, cwd=tmp_path, env=env)  # the plugin is importable from cwd
    assert r.returncode != 0 and not marker.exists()
    if tool == "embed":  # the others become one line when their mains run through run_main (helper "oneline")
        assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "'hostile_plugin_c3' under 'plugins:'" in r.stderr and "--trust_plugins" in r.stderr


# ---- bounded yaml ----

def _alias_bomb(path, levels=20, width=10):
    """About a kilobyte of nested aliases that expands to width**levels nodes."""
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_yaml_alias_bomb_fails_fast_naming_the_file(tmp_path):
    from wespeaker_avkd.config.train_config import ConfigError, load_config
    from wespeaker_avkd.data.toy_corpus.config import load_config as load_corpus_config
    from wespeaker_avkd.utils.yaml_io import YamlError, load_yaml

    bomb = _alias_bomb(tmp_path / "bomb.yaml")
    assert bomb.stat().st_size < 1500
    start = time.monotonic()
    with pytest.raises(YamlError, match=rf"^{bomb}: its aliases expand to more than \d+ nodes"):
        load_yaml(bomb)
    with pytest.raises(ConfigError, match=rf"{bomb}: its aliases expand"):
        load_config(str(bomb))
    with pytest.raises(YamlError, match=rf"^{bomb}: its aliases expand"):
        load_corpus_config(str(bomb))
    assert time.monotonic() - start < 2.0


def test_yaml_bounds_keep_ordinary_files(tmp_path):
    from wespeaker_avkd.utils.yaml_io import YamlError, load_yaml

    ok = tmp_path / "ok.yaml"
    ok.write_text("base: &b {lr: 0.1, steps: [1, 2]}\ncopy: *b\n")
    assert load_yaml(ok) == yaml.safe_load(ok.read_text())
    big = tmp_path / "big.yaml"
    big.write_text("x: " + "a" * 2048 + "\n")
    with pytest.raises(YamlError, match=rf"^{big}: \d+ bytes, more than the 1024"):
        load_yaml(big, max_bytes=1024)
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(YamlError, match=rf"^{deep}: nested more than"):
        load_yaml(deep)
    obj = tmp_path / "obj.yaml"
    obj.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(YamlError, match=rf"^{obj}: not valid yaml: could not determine a constructor"):
        load_yaml(obj)


# ---- NaN/Inf and too-short audio, NaN features ----

def _wav_dir(tmp_path, waves):
    """A data dir over {utt: float32 samples} written as FLOAT wavs, with utt2spk/spk2utt (one speaker)."""
    d = tmp_path / "data"
    d.mkdir()
    for utt, samples in waves.items():
        sf.write(tmp_path / f"{utt}.wav", samples, 16000, subtype="FLOAT")
    (d / "wav.scp").write_text("".join(f"{u} {tmp_path}/{u}.wav\n" for u in waves))
    (d / "utt2spk").write_text("".join(f"{u} s0\n" for u in waves))
    (d / "spk2utt").write_text("s0 " + " ".join(waves) + "\n")
    return d


def test_nan_wav_refused_by_deep_validation_and_fbank(tmp_path):
    rng = np.random.default_rng(0)
    bad = (0.1 * rng.standard_normal(8000)).astype(np.float32)
    bad[100:110] = np.nan
    d = _wav_dir(tmp_path, {"u0": (0.1 * rng.standard_normal(8000)).astype(np.float32), "u1": bad})
    wav = tmp_path / "u1.wav"
    assert validate_data_dir(str(d)) == []  # the default mode reads headers only
    assert [str(p) for p in validate_data_dir(str(d), deep=True)] == [
        f"{d}/wav.scp:2: utterance 'u1': 10 NaN or Inf samples (the first at sample 100); audio must be finite: {wav}"]
    with pytest.raises(FbankError, match=rf"^utterance 'u1' \({wav}\): {wav}: 10 NaN or Inf samples"):
        extract_fbank_dir(str(d), str(tmp_path / "fbank"), nj=1, progress=False)
    from wespeaker_avkd.data.datasets import AudioDataset
    from wespeaker_avkd.data.fbank import AudioError

    with pytest.raises(AudioError, match=rf"^{wav}: 10 NaN or Inf samples"):
        AudioDataset(["u1"], {"u1": str(wav)}, "wav").make_input(0, 200, np.random.default_rng(0))


@pytest.mark.parametrize("samples,why", [(0, "no audio samples"), (100, "audio of 100 samples is shorter than one "
                                                                        r"fbank frame \(400 samples: 25 ms")])
def test_empty_or_short_wav_names_its_file(tmp_path, samples, why):
    rng = np.random.default_rng(1)
    d = _wav_dir(tmp_path, {"u0": (0.1 * rng.standard_normal(4000)).astype(np.float32),
                            "u1": np.zeros(samples, np.float32)})
    wav = tmp_path / "u1.wav"
    with pytest.raises(FbankError, match=rf"^utterance 'u1' \({wav}\): .*{why}"):
        extract_fbank_dir(str(d), str(tmp_path / "fbank"), nj=1, progress=False)
    from wespeaker_avkd.data.datasets import AudioDataset
    from wespeaker_avkd.data.fbank import AudioError

    with pytest.raises(AudioError, match=rf"^{wav}: .*{why}"):
        AudioDataset(["u1"], {"u1": str(wav)}, "wav").make_input(0, 0, None)  # evaluation: the whole utterance
    assert [str(p) for p in validate_data_dir(str(d))] == [
        f"{d}/wav.scp:2: utterance 'u1': {samples} samples, shorter than one fbank frame (400 samples = 25 ms): {wav}"]


def test_nan_features_named_by_reader_dataset_and_deep_validation(tmp_path):
    feats = {"u0": np.ones((30, 6), np.float32), "u1": np.full((30, 6), np.nan, np.float32)}
    d = _wav_dir(tmp_path, {u: np.zeros(1600, np.float32) for u in feats})
    kaldiio.save_ark(str(d / "feats.ark"), feats, scp=str(d / "feats.scp"))
    rx = dict(line.split() for line in (d / "feats.scp").read_text().splitlines())
    with pytest.raises(FbankError, match=rf"^feats.scp: the features of utterance 'u1' at {rx['u1']} hold 180 NaN"):
        read_feats(rx["u1"], "u1", "feats.scp")
    from wespeaker_avkd.data.datasets import AudioDataset

    ds = AudioDataset(["u0", "u1"], rx, "feats")
    assert ds.make_input(0, 20, np.random.default_rng(0)).shape == (20, 6)
    with pytest.raises(FbankError, match=r"utterance 'u1' .* hold 180 NaN or Inf values"):
        ds.make_input(1, 20, np.random.default_rng(0))
    assert validate_data_dir(str(d)) == []
    assert [str(p) for p in validate_data_dir(str(d), deep=True)] == [
        f"{d}/feats.scp:2: utterance 'u1': 180 NaN or Inf feature values at {rx['u1']}"]


# ---- mean vectors ----

@pytest.mark.parametrize("array,why", [
    (np.array([{"a": 1}, None], dtype=object), r"cannot read the mean vector \(ValueError: Object arrays cannot"),
    (np.array(["0.1", "0.2"]), "the mean vector holds <U3 values; expected real numbers"),
    (np.array([1 + 2j, 3j]), "the mean vector holds complex128 values; expected real numbers")])
def test_mean_vec_of_objects_strings_or_complex_is_named(tmp_path, table, array, why):
    path = tmp_path / "mean.npy"
    np.save(path, array, allow_pickle=True)
    with pytest.raises(ScoringError, match=rf"^{path}: {why}") as err:
        load_mean_vector(path)
    assert isinstance(err.value, NamedError)
    (tmp_path / "T").write_text("k0 k1 target\n")
    r = subprocess.run([sys.executable, "-m", "wespeaker_avkd.bin.score", "--embeddings", str(tmp_path / "e.scp"),
                        "--trials", str(tmp_path / "T"), "--output_dir", str(tmp_path / "s"), "--mean_vec",
                        str(path)], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr and f"{path}: " in r.stderr


def test_real_mean_vector_still_loads(tmp_path):
    path = tmp_path / "mean.npy"
    np.save(path, np.arange(4, dtype=np.float64))
    np.testing.assert_array_equal(load_mean_vector(path), np.arange(4, dtype=np.float32))
