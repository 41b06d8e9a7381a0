"""kaldi_dir.subset_data_dir: evenly spaced utterances, every utterance table filtered, spk2utt rebuilt."""
from wespeaker_avkd.data.kaldi_dir import read_multi_table, read_table, subset_data_dir


def test_subset(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    utts = [f"id{i % 3:05d}/v{i:02d}/00001" for i in range(10)]
    (src / "utt2spk").write_text("".join(f"{u} {u.split('/')[0]}\n" for u in utts))
    (src / "wav.scp").write_text("".join(f"{u} /w/{i}.wav\n" for i, u in enumerate(utts)))
    (src / "faces.scp").write_text("".join(f"{u} /f/{i}/1.png /f/{i}/2.png\n" for i, u in enumerate(utts)))
    chosen = subset_data_dir(str(src), str(tmp_path / "dst"), 4)
    ordered = sorted(utts)
    assert chosen == [ordered[i] for i in (0, 3, 6, 9)]
    assert sorted(read_table(tmp_path / "dst" / "wav.scp")) == chosen
    assert read_multi_table(tmp_path / "dst" / "faces.scp")[chosen[1]][1].endswith("2.png")
    spk2utt = read_multi_table(tmp_path / "dst" / "spk2utt")
    assert sorted(u for us in spk2utt.values() for u in us) == chosen
    assert not (tmp_path / "dst" / "feats.scp").exists()
    assert subset_data_dir(str(src), str(tmp_path / "all"), 50) == ordered
