"""Embedding extraction from a trained exp dir, the training-set mean vector, and the teacher's KD export.

Outputs are complete or absent: the ark is written first, the scp is renamed into place last, and a small
extract.json records which checkpoint and data produced them, so a re-run skips finished work and redoes
work made by an older checkpoint.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from typing import Any, Dict, Mapping, Optional, Tuple

import kaldiio
import numpy as np
import torch

from wespeaker_avkd.train.builders import EmbeddingNet, build_encoder, build_projection, embed_dim_of
from wespeaker_avkd.train.config import load_yaml
from wespeaker_avkd.utils.fileio import atomic_write

logger = logging.getLogger("wespeaker_avkd.extract")


def _file_id(path: str) -> Dict[str, Any]:
    """What identifies a file's version cheaply: absolute path, size, mtime."""
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime": st.st_mtime}


def load_trained(exp_dir: str, checkpoint: Optional[str] = None,
                 device: str = "cpu") -> Tuple[Dict[str, Any], EmbeddingNet, str]:
    """(config, net in eval mode, checkpoint path) from exp_dir/config.yaml + models/avg_model.pt (default)."""
    from wespeaker_avkd.data.kaldi_dir import read_spk2id
    from wespeaker_avkd.train.checkpoint import load_checkpoint

    cfg = load_yaml(os.path.join(exp_dir, "config.yaml"))
    path = checkpoint or os.path.join(exp_dir, "models", "avg_model.pt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist; train {exp_dir} first (bin.train)")
    state = load_checkpoint(path)
    encoder = build_encoder(cfg)
    num_class = len(read_spk2id(os.path.join(exp_dir, "spk2id")))
    net = EmbeddingNet(encoder, build_projection(cfg, embed_dim_of(cfg, encoder), num_class))
    net.encoder.load_state_dict(state["model"])
    net.projection.load_state_dict(state["projection"])
    net.to(torch.device(device)).eval()
    return cfg, net, path


@torch.inference_mode()
def embed_batch(net: EmbeddingNet, modality: str, inputs: Any, device: torch.device) -> torch.Tensor:
    """Eval-loader inputs -> (B, D): audio whole utterances, visual mean over K frames, fusion two embeddings."""
    if modality == "fusion":
        return net.embed(tuple(x.to(device) for x in inputs))
    inputs = inputs.to(device)
    if modality == "visual":
        from wespeaker_avkd.models.visual_resnet import segment_embedding

        return segment_embedding(net.encoder, inputs)
    return net.embed(inputs)


def _done_record(path: str) -> Optional[Dict[str, Any]]:
    """The extract.json of a finished extraction, or None."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def extract_embeddings(exp_dir: str, data_dir: str, out_dir: str, checkpoint: Optional[str] = None,
                       embedding_scps: Optional[Mapping[str, str]] = None, device: str = "cpu",
                       mean_vec: bool = False, progress: bool = True, force: bool = False) -> str:
    """Embed every utterance of data_dir into out_dir/xvector.{ark,scp} (+ mean_vec.npy); returns the scp path."""
    from wespeaker_avkd.data.loaders import build_eval_loader

    os.makedirs(out_dir, exist_ok=True)
    scp_path = os.path.join(out_dir, "xvector.scp")
    ark_path = os.path.abspath(os.path.join(out_dir, "xvector.ark"))  # scp lines then work from any cwd
    record_path = os.path.join(out_dir, "extract.json")
    ckpt_path = checkpoint or os.path.join(exp_dir, "models", "avg_model.pt")
    inputs_id = {k: _file_id(v) for k, v in sorted((embedding_scps or {}).items())}
    wanted = {"checkpoint": _file_id(ckpt_path) if os.path.isfile(ckpt_path) else ckpt_path,
              "data_dir": os.path.abspath(data_dir), "embedding_scps": inputs_id, "mean_vec": bool(mean_vec)}
    done = _done_record(record_path)
    if not force and done is not None and os.path.isfile(scp_path) and {k: done.get(k) for k in wanted} == wanted:
        logger.info("%s is complete (same checkpoint and data); skipping", scp_path)
        return scp_path

    cfg, net, _ = load_trained(exp_dir, checkpoint, device)
    modality = cfg["modality"]
    dev = torch.device(device)
    loader = build_eval_loader(modality, data_dir, dict(cfg.get("dataset_args") or {}),
                               dict(cfg.get("eval_dataloader_args") or cfg.get("dataloader_args") or {}),
                               embedding_scps=dict(embedding_scps) if embedding_scps else None)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record_path)
    tmp_scp = scp_path + ".tmp"
    total, count, total_sum = _loader_size(loader), 0, None
    bar = _bar(total, f"extract {os.path.basename(exp_dir.rstrip('/'))} -> {out_dir}", progress)
    with kaldiio.WriteHelper(f"ark,scp:{ark_path},{tmp_scp}") as writer:
        for batch in loader:
            emb = embed_batch(net, modality, batch["inputs"], dev).float().cpu().numpy()
            for key, vec in zip(batch["keys"], emb):
                writer(key, vec)
            total_sum = emb.sum(0, dtype=np.float64) if total_sum is None else total_sum + emb.sum(0, dtype=np.float64)
            count += len(emb)
            if bar is not None:
                bar.update(len(emb))
    if bar is not None:
        bar.close()
    if count == 0:
        raise RuntimeError(f"{data_dir}: no utterance to embed")
    os.replace(tmp_scp, scp_path)
    if mean_vec:
        with atomic_write(os.path.join(out_dir, "mean_vec.npy"), "wb") as f:
            np.save(f, (total_sum / count).astype(np.float32))
    with atomic_write(record_path) as f:
        json.dump(dict(wanted, num_utts=count, dim=int(emb.shape[1])), f, indent=1)
    logger.info("wrote %d embeddings to %s", count, scp_path)
    return scp_path


def _loader_size(loader: Any) -> Optional[int]:
    """Number of utterances the eval loader yields, when its dataset has a length."""
    try:
        return len(loader.dataset)
    except TypeError:
        return None


def _bar(total: Optional[int], desc: str, enabled: bool):
    """A tqdm bar over utterances, or None."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="utt", mininterval=1.0, leave=False, file=sys.stderr)


def export_teacher(exp_dir: str, train_scp: str, out_dir: Optional[str] = None,
                   checkpoint: Optional[str] = None) -> str:
    """Write exp_dir/kd_export: teacher embeddings of the training utterances (xvector.ark/scp), the teacher's
    AAM weight W (projection_weight.npy, (C, D) float32) and the spk2id it was trained with. Returns out_dir."""
    from wespeaker_avkd.data.kaldi_dir import read_spk2id, write_spk2id
    from wespeaker_avkd.train.checkpoint import load_checkpoint

    out_dir = out_dir or os.path.join(exp_dir, "kd_export")
    os.makedirs(out_dir, exist_ok=True)
    ckpt_path = checkpoint or os.path.join(exp_dir, "models", "avg_model.pt")
    state = load_checkpoint(ckpt_path)
    if "weight" not in state["projection"]:
        raise KeyError(f"{ckpt_path}: the projection state has no 'weight' (keys {list(state['projection'])})")
    weight = state["projection"]["weight"].float().numpy()
    spk2id = read_spk2id(os.path.join(exp_dir, "spk2id"))
    if weight.shape[0] != len(spk2id):
        raise ValueError(f"{ckpt_path}: projection has {weight.shape[0]} rows but {exp_dir}/spk2id lists "
                         f"{len(spk2id)} speakers")
    embeddings = kaldiio.load_scp(train_scp)
    scp_path = os.path.join(out_dir, "xvector.scp")
    tmp_scp = scp_path + ".tmp"
    ark_path = os.path.abspath(os.path.join(out_dir, "xvector.ark"))
    with kaldiio.WriteHelper(f"ark,scp:{ark_path},{tmp_scp}") as writer:
        for key in embeddings:
            vec = np.asarray(embeddings[key], dtype=np.float32)
            if vec.shape != (weight.shape[1],):
                raise ValueError(f"{train_scp}: embedding {key} has shape {vec.shape}, the teacher's W has "
                                 f"dim {weight.shape[1]}")
            writer(key, vec)
    with atomic_write(os.path.join(out_dir, "projection_weight.npy"), "wb") as f:
        np.save(f, weight.astype(np.float32))
    write_spk2id(os.path.join(out_dir, "spk2id"), spk2id)
    os.replace(tmp_scp, scp_path)  # last: its presence marks a complete export
    logger.info("kd export: %d teacher embeddings, W %s -> %s", len(embeddings), weight.shape, out_dir)
    return out_dir
