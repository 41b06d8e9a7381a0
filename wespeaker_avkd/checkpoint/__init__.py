"""Checkpoints: the file format (files.py), where epoch files live and the resume point (paths.py), which of
them a run keeps (prune.py), averaging (average.py) and the one model-file loader with named policies
(model_file.py). Callers use this package's names: `from wespeaker_avkd import checkpoint as ckpt`.

Model files of this toolkit's old nested layout are converted once by tools/convert_checkpoint.py (outside
the package: no run of the current code writes that layout).
"""
from __future__ import annotations

from wespeaker_avkd.checkpoint.average import (
    average_checkpoints,
    average_last,
    average_stamp_path,
    average_state_dicts,
)
from wespeaker_avkd.checkpoint.files import (
    CONVERTER_HINT,
    CheckpointLayoutError,
    UnreadableCheckpointError,
    UnsafeCheckpointError,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
    torch_load_safe,
)
from wespeaker_avkd.checkpoint.model_file import (
    LOAD_POLICIES,
    POLICIES,
    PROJECTION_PREFIX,
    LoadPolicy,
    flat_model_state,
    load_into_net,
    load_model_state,
    model_tensors,
    put_model_state,
)
from wespeaker_avkd.checkpoint.paths import (
    STATE_DIR_NAME,
    checkpoint_path,
    last_checkpoint,
    legacy_train_states,
    list_checkpoints,
    list_train_states,
    migrate_train_states,
    resume_point,
    save_epoch,
    should_save,
    train_state_dir,
    train_state_path,
)
from wespeaker_avkd.checkpoint.prune import prune_checkpoints

__all__ = [
    "CONVERTER_HINT", "LOAD_POLICIES", "POLICIES", "PROJECTION_PREFIX", "STATE_DIR_NAME", "CheckpointLayoutError",
    "LoadPolicy", "UnreadableCheckpointError", "UnsafeCheckpointError", "average_checkpoints", "average_last",
    "average_stamp_path", "average_state_dicts", "capture_rng_state", "checkpoint_path", "flat_model_state",
    "last_checkpoint", "legacy_train_states", "list_checkpoints", "list_train_states", "load_checkpoint",
    "load_into_net", "load_model_state", "migrate_train_states", "model_tensors", "prune_checkpoints",
    "put_model_state", "restore_rng_state", "resume_point", "save_checkpoint", "save_epoch", "should_save",
    "torch_load_safe", "train_state_dir", "train_state_path",
]
