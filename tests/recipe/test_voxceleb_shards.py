"""run.sh --data_type shard on the fixture tree in the official VoxCeleb layouts: stage 1 prepares it once (m4a
and mp4 decoded, VoxCeleb2's frames as jpgs under faces_vox2, VoxCeleb1's name-keyed jpgs), then the baselines
train and embed from raw files and from tar shards, unshuffled, and give the same embeddings both ways."""
import tarfile

import pytest
import yaml

from wespeaker_avkd.data.kaldi_dir import read_multi_table
from wespeaker_avkd.data.shards import face_postfix, member_name, read_shard_list

from .recipe_runs import FIXTURE_OPTIONS, assert_same_embeddings, make_fixture, run_recipe


def _face_members(shard_list: str) -> dict[str, bytes]:
    """{member name: bytes} of every face frame member in the shards of shard_list (read with tarfile)."""
    out = {}
    for path in read_shard_list(shard_list):
        with tarfile.open(path) as tar:
            out.update({m.name: tar.extractfile(m).read() for m in tar.getmembers() if ".face" in m.name})
    return out


@pytest.mark.slow
def test_fixture_shard_run_embeds_like_the_raw_run(tmp_path):
    _, vox = make_fixture(tmp_path)
    (tmp_path / "unshuffled.yaml").write_text(yaml.safe_dump({"num_epochs": 1, "dataset_args": {"shuffle": False}}))
    common = ["--data_root", vox, *FIXTURE_OPTIONS, "--config", str(tmp_path / "unshuffled.yaml"), "--stop_stage", "4"]
    run_recipe(tmp_path, *common, "--exp", str(tmp_path / "raw"))
    run_recipe(tmp_path, *common, "--exp", str(tmp_path / "shard"), "--stage", "2", "--data_type", "shard",
               "--shard_dir", str(tmp_path / "shards"))
    data = tmp_path / "data"
    for part, folder in (("train", "/faces_vox2/"), ("dev", "/faces_vox2/"), ("eval", "/unzippedIntervalFaces/")):
        faces = read_multi_table(data / part / "faces.scp")
        members = _face_members(str(data / part / "shard.list"))
        assert all(folder in paths[0] for paths in faces.values()), part
        # every frame of faces.scp, jpg bytes as on disk, is in the shards under its utterance and frame number
        assert members == {member_name(utt, face_postfix(i)): open(p, "rb").read()
                           for utt, paths in faces.items() for i, p in enumerate(paths)}, part
    for system in ("audio_baseline", "visual_baseline"):
        cfg = yaml.safe_load(open(tmp_path / "shard" / "seed1" / system / "config.yaml"))
        assert cfg["dataset_args"]["data_type"] == "shard"
    assert_same_embeddings(tmp_path / "raw", tmp_path / "shard")
