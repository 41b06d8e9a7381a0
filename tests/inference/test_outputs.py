"""The one embedding writer (inference/outputs.write_embeddings) and its two front ends: extraction's
xvector.<tag>.ark + xvector.scp (write_xvectors) and bin.embed's Kaldi wspecifier (write_wspecifier)."""
import os

import kaldiio
import numpy as np
import pytest

from wespeaker_avkd.inference.embed import InputError, parse_wspecifier, write_wspecifier
from wespeaker_avkd.inference.outputs import write_embeddings, write_xvectors


def _pairs(n=5, dim=7, seed=0):
    rng = np.random.default_rng(seed)
    return [(f"utt{i}", rng.normal(size=dim).astype(np.float64)) for i in range(n)]


def test_ark_and_scp_round_trip_through_kaldiio(tmp_path, monkeypatch):
    """float32 values, key order kept, scp lines naming the ark by absolute path (readable from any cwd)."""
    pairs = _pairs()
    monkeypatch.chdir(tmp_path)
    assert write_embeddings(iter(pairs), "sub/x.ark", "sub/x.scp") == len(pairs)
    monkeypatch.chdir("/")
    table = kaldiio.load_scp(str(tmp_path / "sub" / "x.scp"))
    assert list(table) == [k for k, _ in pairs]
    for key, vec in pairs:
        np.testing.assert_array_equal(table[key], vec.astype(np.float32))
    assert all(line.split(" ", 1)[1].startswith(str(tmp_path)) for line in open(tmp_path / "sub" / "x.scp"))
    ark_only = dict(kaldiio.load_ark(str(tmp_path / "sub" / "x.ark")))
    assert list(ark_only) == [k for k, _ in pairs]


def test_text_ark_and_ark_only(tmp_path):
    pairs = _pairs(3, 4)
    assert write_wspecifier(pairs, f"ark,t:{tmp_path}/t.ark") == 3
    assert (tmp_path / "t.ark").read_text().startswith("utt0  [")
    table = dict(kaldiio.load_ark(str(tmp_path / "t.ark")))
    np.testing.assert_allclose(table["utt2"], pairs[2][1].astype(np.float32), rtol=1e-6)
    assert not list(tmp_path.glob("*.scp"))


def test_scp_appears_last_and_a_failed_fresh_ark_is_removed(tmp_path):
    """before_scp runs while the ark is complete and no scp exists; a failure leaves no fresh ark behind."""
    seen = []
    write_embeddings(_pairs(), str(tmp_path / "a.ark"), str(tmp_path / "a.scp"), fresh_ark=True,
                     before_scp=lambda: seen.append((os.path.exists(tmp_path / "a.scp"),
                                                     len(dict(kaldiio.load_ark(str(tmp_path / "a.ark")))))))
    assert seen == [(False, 5)]
    with pytest.raises(FileExistsError):  # a fresh ark is never an existing file
        write_embeddings(_pairs(), str(tmp_path / "a.ark"), str(tmp_path / "b.scp"), fresh_ark=True)

    def broken():
        yield "ok", np.zeros(3)
        raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        write_embeddings(broken(), str(tmp_path / "c.ark"), str(tmp_path / "c.scp"), fresh_ark=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ark", "a.scp"]


def test_xvectors_replace_the_previous_result(tmp_path):
    first = write_xvectors(str(tmp_path), ["b", "a"], {"a": np.ones(2), "b": np.zeros(2)}, "one")
    second = write_xvectors(str(tmp_path), ["a"], {"a": np.full(2, 3.0)}, "two")
    assert first == second and sorted(p.name for p in tmp_path.iterdir()) == ["xvector.scp", "xvector.two.ark"]
    np.testing.assert_array_equal(kaldiio.load_scp(second)["a"], np.full(2, 3.0, dtype=np.float32))


@pytest.mark.parametrize("spec,expect", [("ark,scp:a.ark,b.scp", ("a.ark", "b.scp", [])),
                                         ("ark:a.ark", ("a.ark", None, [])),
                                         ("ark,t:a.ark", ("a.ark", None, ["t"]))])
def test_wspecifier_parsing(spec, expect):
    assert parse_wspecifier(spec) == expect


@pytest.mark.parametrize("spec", ["scp:a.scp", "a.ark", "ark,scp:a.ark", "ark:"])
def test_bad_wspecifier_names_the_option(spec):
    with pytest.raises(InputError, match="--out"):
        parse_wspecifier(spec)
