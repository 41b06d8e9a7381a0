"""The teacher's KD export (exp/teacher/kd_export): its embeddings of the training set, its AAM weight W and spk2id.

The students' KD objective reads it through systems/builders.load_teacher_export. The export is complete or
absent and skipped when its stamp records the same inputs, as an extraction (inference/outputs.py).
"""
from __future__ import annotations

import contextlib
import logging
import os

import numpy as np

from wespeaker_avkd.checkpoint import load_model_state
from wespeaker_avkd.data.kaldi_dir import read_spk2id, write_spk2id
from wespeaker_avkd.inference import outputs as out
from wespeaker_avkd.utils.embedding_table import load_embeddings
from wespeaker_avkd.utils.errors import InputKeyError, InputValueError
from wespeaker_avkd.utils.fileio import atomic_write
from wespeaker_avkd.utils.fingerprint import file_fingerprint, listed_files_fingerprint, write_stamp

logger = logging.getLogger("wespeaker_avkd.extract")


def _current_ark(scp_path: str) -> str | None:
    """The ark file the first line of an existing scp points to (None when there is no scp)."""
    try:
        with open(scp_path, "r", encoding="utf-8") as f:
            line = f.readline()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    spec = line.rstrip("\n").split(" ", 1)[-1]
    path, sep, offset = spec.rpartition(":")
    return path if sep and offset.isdigit() else None



def export_teacher(exp_dir: str, train_scp: str, out_dir: str | None = None,
                   checkpoint: str | None = None, force: bool = False) -> str:
    """Write exp_dir/kd_export: teacher embeddings of the training utterances (xvector.ark/scp), the teacher's
    AAM weight W (projection_weight.npy, (C, D) float32) and the spk2id it was trained with. Returns out_dir.

    Skipped when its stamp records the same checkpoint, train_scp (and the ark it names) and spk2id content.
    """
    out_dir = out_dir or os.path.join(exp_dir, "kd_export")
    os.makedirs(out_dir, exist_ok=True)
    ckpt_path = checkpoint or os.path.join(exp_dir, "models", "avg_model.pt")
    spk2id_path = os.path.join(exp_dir, "spk2id")
    scp_path = os.path.join(out_dir, out.SCP_NAME)
    record_path = os.path.join(out_dir, out.STAMP_NAME)
    source_ark = _current_ark(train_scp)
    wanted = {"version": out.STAMP_VERSION, "checkpoint": file_fingerprint(ckpt_path),
              "train_scp": file_fingerprint(train_scp),
              "train_ark": listed_files_fingerprint([source_ark] if source_ark else []),
              "spk2id": file_fingerprint(spk2id_path)}
    outputs = [os.path.join(out_dir, name) for name in ("projection_weight.npy", "spk2id")]
    if not force and out.is_current(scp_path, record_path, wanted, outputs):
        logger.info("%s is complete (same teacher checkpoint and embeddings); skipping", out_dir)
        return out_dir
    state = load_model_state(ckpt_path)
    if "projection.weight" not in state:
        raise InputKeyError(f"{ckpt_path}: no 'projection.weight' (the AAM head) among its {len(state)} tensors")
    weight = state["projection.weight"].float().numpy()
    spk2id = read_spk2id(spk2id_path)
    if weight.shape[0] != len(spk2id):
        raise InputValueError(f"{ckpt_path}: projection has {weight.shape[0]} rows but {spk2id_path} lists "
                              f"{len(spk2id)} speakers")
    keys, emb = load_embeddings(train_scp)  # refuses NaN/Inf, duplicate keys, mixed dims, naming file and key
    if emb.shape[1] != weight.shape[1]:
        raise InputValueError(f"{train_scp}: embeddings have dim {emb.shape[1]}, the teacher's W ({ckpt_path}) has "
                              f"dim {weight.shape[1]}")

    def before_scp() -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(record_path)
        with atomic_write(outputs[0], "wb") as f:
            np.save(f, weight.astype(np.float32))
        write_spk2id(outputs[1], spk2id)

    out.write_xvectors(out_dir, keys, dict(zip(keys, emb)), out.fresh_tag(wanted), before_scp)
    write_stamp(record_path, dict(wanted, scp=file_fingerprint(scp_path), num_utts=len(keys),
                                  outputs=out.output_fingerprints(outputs)))
    logger.info("kd export: %d teacher embeddings, W %s -> %s", len(keys), weight.shape, out_dir)
    return out_dir
