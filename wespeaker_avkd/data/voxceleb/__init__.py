"""Kaldi data dirs from real VoxCeleb (official archives, VoxCeleb1's name-keyed frames, WeSpeaker's data dirs):
decoding (decode), folder layouts (layout), resumable conversions (convert), the preparation (prepare)."""
from wespeaker_avkd.data.voxceleb.prepare import (
    DEV_TRIALS,
    FaceArgs,
    dev_trials,
    prepare_voxceleb,
    read_official_trials,
    read_vox2_gender,
    select_dev_speakers,
)

__all__ = ["DEV_TRIALS", "FaceArgs", "dev_trials", "prepare_voxceleb", "read_official_trials", "read_vox2_gender",
           "select_dev_speakers"]
