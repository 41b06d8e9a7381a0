"""Kaldi tables: round trips, sorting, errors naming file:line, spk2id."""
import pytest

from wespeaker_avkd.data.kaldi_dir import (
    TableError,
    make_spk2id,
    read_multi_table,
    read_spk2id,
    read_table,
    utt2spk_to_spk2utt,
    write_spk2id,
    write_table,
)


def test_round_trip_sorted(tmp_path):
    p = tmp_path / "wav.scp"
    write_table(p, {"b/x/00002": "/d/b2.wav", "a/x/00001": "/d/a1.wav", "B/y/00001": "/d/B.wav"})
    lines = p.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["B/y/00001", "a/x/00001", "b/x/00002"]  # C-locale (code point) order
    assert read_table(p) == {"a/x/00001": "/d/a1.wav", "b/x/00002": "/d/b2.wav", "B/y/00001": "/d/B.wav"}


def test_multi_table_and_spk2utt(tmp_path):
    utt2spk = {"s1/v/2": "s1", "s1/v/1": "s1", "s2/v/1": "s2"}
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    assert spk2utt == {"s1": ["s1/v/1", "s1/v/2"], "s2": ["s2/v/1"]}
    p = tmp_path / "spk2utt"
    write_table(p, spk2utt)
    assert p.read_text() == "s1 s1/v/1 s1/v/2\ns2 s2/v/1\n"
    assert read_multi_table(p) == spk2utt


def test_duplicate_key_names_line(tmp_path):
    p = tmp_path / "utt2spk"
    p.write_text("u1 s1\nu2 s1\n\nu1 s2\n")
    with pytest.raises(TableError, match=r"utt2spk:4: duplicate key 'u1' \(first on line 1\)"):
        read_table(p)


def test_missing_value_names_line(tmp_path):
    p = tmp_path / "faces.scp"
    p.write_text("u1 a.png b.png\nu2\n")
    with pytest.raises(TableError, match=r"faces.scp:2: key 'u2' has no values"):
        read_multi_table(p)


def test_spk2id_sorted_and_round_trip(tmp_path):
    m = make_spk2id(["id10002", "id00005", "id10002", "id00001"])
    assert m == {"id00001": 0, "id00005": 1, "id10002": 2}
    p = tmp_path / "spk2id"
    write_spk2id(p, m)
    assert read_spk2id(p) == m
    p.write_text("a 0\nb 2\n")
    with pytest.raises(TableError, match="no gap"):
        read_spk2id(p)


def test_binary_table_names_file_and_line(tmp_path):
    path = tmp_path / "wav.scp"
    path.write_bytes(b"u1 /a.wav\nu2 /b.wav\n\x80\x81 /c.wav\n")
    with pytest.raises(TableError, match=rf"^{path}:3: not UTF-8 text"):
        read_table(path)
