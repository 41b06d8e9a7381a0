"""utils.runtime: the thread, seeding and logging set-up that training and extraction share."""
import logging
import random

import numpy as np
import pytest
import torch

from wespeaker_avkd.utils.runtime import default_num_threads, seed_everything, set_cpu_threads, setup_logging


@pytest.fixture()
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_clamped_to_the_cores_and_shared(keep_threads):
    cores = default_num_threads()
    assert set_cpu_threads(cores + 5) == cores == torch.get_num_threads()
    assert set_cpu_threads(None, share=cores) == 1  # cores // local ranks
    assert set_cpu_threads(None, share=cores + 1) == 1  # never below one
    with pytest.raises(ValueError, match="--num_threads must be >= 1, got 0"):
        set_cpu_threads(0)


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(3)
    first = draw()
    seed_everything(3)
    assert draw() == first
    seed_everything(4)
    assert draw() != first


def test_setup_logging_replaces_its_handlers_and_appends_to_train_log(tmp_path):
    root = logging.getLogger("wespeaker_avkd")
    try:
        for _ in range(2):
            setup_logging(str(tmp_path), True)
            logging.getLogger("wespeaker_avkd.test").info("hello")
        ours = [h for h in root.handlers if getattr(h, "_wespeaker_avkd", False)]
        assert len(ours) == 2  # stderr + train.log, not doubled by the second call
        for handler in ours:
            handler.flush()
        assert (tmp_path / "train.log").read_text().count("INFO hello") == 2
        setup_logging(None, False)  # a non-main rank: no handler of ours at all
        assert not [h for h in root.handlers if getattr(h, "_wespeaker_avkd", False)]
    finally:
        setup_logging(None, False)
