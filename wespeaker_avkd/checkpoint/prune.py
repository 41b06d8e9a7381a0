"""Storage: which epoch files a run keeps.

`save_epoch_interval` I saves epochs N % I == 0 plus the last num_avg epochs (averaging needs them;
paths.should_save); after each save only the newest training state and the newest `keep_checkpoints` model
files (default: num_avg) are kept, so a 150-epoch run ends with num_avg model files, avg_model.pt and one
training state.
"""
from __future__ import annotations

import contextlib
import os

from wespeaker_avkd.checkpoint.paths import list_checkpoints, list_train_states, resume_point
from wespeaker_avkd.utils.fileio import PathLike


def prune_checkpoints(model_dir: PathLike, keep_models: int) -> list[str]:
    """Delete all but the newest training state of a complete epoch and all but the newest keep_models model
    files (never the model of that newest state). Returns the removed paths."""
    newest = resume_point(model_dir)
    if newest is None:
        return []
    models = list_checkpoints(model_dir)
    keep = set(sorted(models)[-max(1, int(keep_models)):]) | {newest}
    removed = [path for epoch, path in list_train_states(model_dir).items() if epoch < newest]
    removed += [path for epoch, path in models.items() if epoch not in keep]
    for path in removed:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return removed
