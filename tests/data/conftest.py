"""Corpora shared by the data tests, generated once per session."""
import pytest

from wespeaker_avkd.data.toy_corpus import generate_corpus, load_config

# SMALL's eval identities are the default corpus' first 44 (identities are seeded by their own index, so voices
# and faces are equal; twin pairings differ), with fewer training and dev identities so the fast suite stays fast.
SMALL = {"layout": {"train_speakers": 40, "eval_speakers": 44, "dev_speakers": 10}}
TINY = {"layout": {"train_speakers": 3, "eval_speakers": 4, "dev_speakers": 3, "videos_per_speaker": [2, 2],
                   "segments_per_video": [1, 2]},
        "audio": {"duration": [0.4, 0.6]}, "face": {"image_size": 32, "frames_per_segment": 2},
        "trials": {"O_max_targets": 10, "E_max_targets": 20, "H_max_targets": 20, "H_neighbours": 1},
        "dev_trials": {"O_max_targets": 10, "E_max_targets": 20, "H_max_targets": 20, "H_neighbours": 1}}


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """Default knobs, 40 training identities: (root path, summary)."""
    root = tmp_path_factory.mktemp("small_corpus")
    summary = generate_corpus(str(root), load_config(None, SMALL), num_workers=2, progress=False)
    return root, summary


@pytest.fixture(scope="session")
def tiny_config():
    """A corpus config small enough to generate twice in a test."""
    return load_config(None, TINY)
