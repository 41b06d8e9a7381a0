"""Embedding extraction from a trained exp dir (xvector.ark/scp of a data dir, the training-set mean vector).

The job-file runner is inference/jobs.py, the teacher's KD export inference/kd_export.py; the files and their
stamps are written by inference/outputs.py: complete or absent (a new ark under a fresh name, the scp renamed
into place last, the previous ark deleted only then). extract.json records the content fingerprint of the
inputs (checkpoint bytes, data dir tables and the files they list, embedding scps, the config values that
change embeddings), so a re-run skips only work made from the same inputs.

The exp dir's config.yaml is parsed once per extraction into a ModelConfig (config/model_config.py), which the
stamp, the model and the eval loader read; the stamp records the embedding-relevant values as the file wrote
them (ModelConfig.stamped), so the stamps of existing exp dirs stay valid. The model file goes through the one
loader (checkpoint.load_model_state / put_model_state, policy 'strict').
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from wespeaker_avkd.checkpoint import load_model_state, put_model_state
from wespeaker_avkd.config.model_config import STAMPED_KEYS, ModelConfig, exp_model_config
from wespeaker_avkd.inference.outputs import (
    SCP_NAME,
    STAMP_NAME,
    STAMP_VERSION,
    fresh_tag,
    is_current,
    output_fingerprints,
    write_xvectors,
)
from wespeaker_avkd.kinds import SystemKind, kind_of
from wespeaker_avkd.models.embedding_net import EmbeddingNet, trunk_autocast_dtype
from wespeaker_avkd.systems.builders import build_net
from wespeaker_avkd.utils.errors import InputValueError
from wespeaker_avkd.utils.fileio import atomic_write
from wespeaker_avkd.utils.fingerprint import (
    data_dir_fingerprint,
    file_fingerprint,
    listed_files_fingerprint,
    write_stamp,
)

logger = logging.getLogger("wespeaker_avkd.extract")


# Config keys whose values change the embeddings a checkpoint gives (model_config.STAMPED_KEYS).
EMBEDDING_CONFIG_KEYS = STAMPED_KEYS
__all__ = ["EMBEDDING_CONFIG_KEYS", "STAMP_NAME", "STAMP_VERSION", "Embedder", "ModelCache", "embed_batch",
           "embed_data_dir", "embed_loader_batch", "extract_embeddings", "extraction_inputs", "load_trained"]


class ModelCache:
    """The last loaded (exp_dir, checkpoint) model, so that consecutive jobs of one exp dir load it once."""

    def __init__(self) -> None:
        self.key: tuple[str, str, str] | None = None
        self.value: tuple[ModelConfig, EmbeddingNet, str] | None = None
        self.loads = 0

    def get(self, exp_dir: str, checkpoint: str | None, device: str,
            cfg: ModelConfig | None = None) -> tuple[ModelConfig, EmbeddingNet, str]:
        """load_trained(exp_dir, checkpoint, device, cfg), reusing the previous result for the same arguments."""
        key = (os.path.abspath(exp_dir), os.path.abspath(checkpoint) if checkpoint else "", device)
        if key != self.key or self.value is None:
            self.key, self.value = None, None  # free the previous model first
            self.value = load_trained(exp_dir, checkpoint, device, cfg)
            self.key = key
            self.loads += 1
        return self.value


def load_trained(exp_dir: str, checkpoint: str | None = None, device: str = "cpu",
                 cfg: ModelConfig | None = None) -> tuple[ModelConfig, EmbeddingNet, str]:
    """(config, net in eval mode, checkpoint path) from exp_dir/config.yaml (or its parse `cfg`) + avg_model.pt."""
    from wespeaker_avkd.data.kaldi_dir import read_spk2id

    cfg = cfg or exp_model_config(exp_dir)
    path = checkpoint or os.path.join(exp_dir, "models", "avg_model.pt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist; train {exp_dir} first (bin.train)")
    state = load_model_state(path)  # refuses unsafe or old-layout files before any model is built
    net = build_net(cfg, len(read_spk2id(os.path.join(exp_dir, "spk2id"))))
    put_model_state(net, state, path, policy="strict")
    net.trunk_autocast = trunk_autocast_dtype(cfg.amp, torch.device(device).type)  # as trained
    net.to(torch.device(device)).eval()
    return cfg, net, path


Embedder = Callable[[EmbeddingNet, SystemKind, Any, torch.device], torch.Tensor]


@torch.inference_mode()
def embed_batch(net: EmbeddingNet, kind: SystemKind, inputs: Any, device: torch.device) -> torch.Tensor:
    """Eval-loader inputs -> (B, D) as the system kind embeds them (audio whole utterances, visual mean over K
    frames, fusion two embeddings), without autograd."""
    return kind.embed(net, inputs, device)


def embed_loader_batch(net: EmbeddingNet, kind: SystemKind, batch: Mapping[str, Any], device: torch.device,
                       where: str, embedder: Embedder | None = None) -> np.ndarray:
    """(B, D) float32 embeddings of an eval-loader batch ({'keys', 'inputs'}); an input the model refuses (too
    short, wrong feature dim) is an InputValueError naming `where` (the data dir) and the batch's utterance."""
    try:
        return (embedder or embed_batch)(net, kind, batch["inputs"], device).float().cpu().numpy()
    except InputValueError as err:
        keys = list(batch["keys"])
        others = f" (or another of the {len(keys)} in its batch)" if len(keys) > 1 else ""
        raise InputValueError(f"{where}: utterance '{keys[0]}'{others}: {err}") from err


def extraction_inputs(exp_dir: str, data_dir: str, checkpoint: str | None = None,
                      embedding_scps: Mapping[str, str] | None = None, mean_vec: bool = False,
                      cfg: ModelConfig | None = None) -> dict[str, Any]:
    """The content fingerprint of everything an extraction's result depends on: the checkpoint's bytes, the
    data dir's tables and the files they list (stat), the embedding scps (fusion), the config values that
    change embeddings (as written), and whether a mean vector is asked for. `cfg`: exp_dir's parsed config."""
    cfg = cfg or exp_model_config(exp_dir)
    ckpt_path = checkpoint or os.path.join(exp_dir, "models", "avg_model.pt")
    if not os.path.isfile(ckpt_path):
        raise FileNotFoundError(f"checkpoint {ckpt_path} does not exist; train {exp_dir} first (bin.train)")
    scps = dict(sorted((embedding_scps or {}).items()))
    listed = kind_of(cfg.modality).input_files(data_dir, cfg.dataset_args, scps)
    return {
        "version": STAMP_VERSION,
        "checkpoint": file_fingerprint(ckpt_path),
        "data_dir": data_dir_fingerprint(data_dir),
        "listed_files": listed_files_fingerprint(listed),
        "embedding_scps": {name: file_fingerprint(path) for name, path in scps.items()},
        "config": dict(cfg.stamped),
        "mean_vec": bool(mean_vec),
    }


def embed_data_dir(net: EmbeddingNet, cfg: ModelConfig, data_dir: str, device: str,
                   embedding_scps: Mapping[str, str] | None = None, embedder: Embedder = embed_batch,
                   progress_desc: str | None = None) -> tuple[list[str], dict[str, np.ndarray]]:
    """(keys in the eval loader's order, {key: (D,) float32 embedding}) of every utterance of data_dir, through
    the config's eval loader; refuses an empty data dir and an utterance the loader gave no embedding for."""
    kind = kind_of(cfg.modality)
    dev = torch.device(device)
    loader = kind.eval_loader(data_dir, cfg.dataset_args, cfg.eval_dataloader_args,
                              embedding_scps=dict(embedding_scps) if embedding_scps else None)
    keys = list(loader.dataset.utts)
    if not keys:
        raise InputValueError(f"{data_dir}: no utterance to embed")
    table: dict[str, np.ndarray] = {}
    bar = _bar(len(keys), progress_desc or "extract", progress_desc is not None)
    for batch in loader:
        emb = embed_loader_batch(net, kind, batch, dev, data_dir, embedder)
        for key, vec in zip(batch["keys"], emb):
            table[key] = vec
        if bar is not None:
            bar.update(len(emb))
    if bar is not None:
        bar.close()
    missing = [k for k in keys if k not in table]
    if missing:
        raise RuntimeError(f"{data_dir}: the eval loader gave no embedding for '{missing[0]}' ({len(missing)} missing)")
    return keys, table


def _finite_matrix(keys: Sequence[str], table: Mapping[str, np.ndarray], data_dir: str, exp_dir: str) -> np.ndarray:
    """(N, D) table[keys]; a NaN/Inf embedding is refused naming the utterance (nothing is written then)."""
    matrix = np.stack([table[k] for k in keys])
    bad = ~np.isfinite(matrix).all(axis=1)
    if bad.any():
        raise FloatingPointError(f"{data_dir}: the model of {exp_dir} gives a NaN/Inf embedding for utterance "
                                 f"'{keys[int(np.argmax(bad))]}' ({int(bad.sum())} of {len(keys)}); nothing written")
    return matrix


def extract_embeddings(exp_dir: str, data_dir: str, out_dir: str, checkpoint: str | None = None,
                       embedding_scps: Mapping[str, str] | None = None, device: str = "cpu",
                       mean_vec: bool = False, progress: bool = True, force: bool = False,
                       models: ModelCache | None = None, embedder: Embedder = embed_batch) -> str:
    """Embed every utterance of data_dir into out_dir/xvector.{scp,<tag>.ark} (+ mean_vec.npy); returns the scp.

    Skipped when out_dir/extract.json records the same inputs (extraction_inputs: content, not paths) and the
    scp it wrote is unchanged. `models` shares loaded models between jobs; `embedder` computes a batch.
    """
    os.makedirs(out_dir, exist_ok=True)
    scp_path = os.path.join(out_dir, SCP_NAME)
    record_path = os.path.join(out_dir, STAMP_NAME)
    mean_path = os.path.join(out_dir, "mean_vec.npy")
    outputs = [mean_path] if mean_vec else []
    cfg = exp_model_config(exp_dir)
    wanted = extraction_inputs(exp_dir, data_dir, checkpoint, embedding_scps, mean_vec, cfg)
    if not force and is_current(scp_path, record_path, wanted, outputs):
        logger.info("%s is complete (same checkpoint, data and config); skipping", scp_path)
        return scp_path

    _, net, _ = (models or ModelCache()).get(exp_dir, checkpoint, device, cfg)
    desc = f"extract {os.path.basename(exp_dir.rstrip('/'))} -> {out_dir}" if progress else None
    keys, table = embed_data_dir(net, cfg, data_dir, device, embedding_scps, embedder, desc)
    matrix = _finite_matrix(keys, table, data_dir, exp_dir)

    def before_scp() -> None:
        # The stamp goes first (a crash from here on means "redo"), the mean vector is written beside the new ark.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(record_path)
        if mean_vec:
            with atomic_write(mean_path, "wb") as f:
                np.save(f, matrix.mean(0, dtype=np.float64).astype(np.float32))

    write_xvectors(out_dir, keys, table, fresh_tag(wanted), before_scp)
    write_stamp(record_path, dict(wanted, scp=file_fingerprint(scp_path), num_utts=len(keys),
                                  dim=int(matrix.shape[1]), outputs=output_fingerprints(outputs)))
    logger.info("wrote %d embeddings to %s", len(keys), scp_path)
    return scp_path


def _bar(total: int | None, desc: str, enabled: bool):
    """A tqdm bar over utterances, or None."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="utt", mininterval=1.0, leave=False, file=sys.stderr)
