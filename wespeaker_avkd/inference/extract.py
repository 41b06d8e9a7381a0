"""Embedding extraction from a trained exp dir, the training-set mean vector, and the teacher's KD export.

Outputs are complete or absent: a new ark is written under a fresh name (xvector.<tag>.ark), the scp is renamed
into place last and only then is the previous ark deleted, so an interruption (also of --force) leaves the
previous complete result. extract.json records the content fingerprint of the inputs (checkpoint bytes, data
dir tables and the files they list, embedding scps, the config values that change embeddings), so a re-run
skips only work made from the same inputs.

The exp dir's config.yaml is parsed once per extraction into a ModelConfig (config/model_config.py), which the
stamp, the model and the eval loader read; the stamp records the embedding-relevant values as the file wrote
them (ModelConfig.stamped), so the stamps of existing exp dirs stay valid.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import kaldiio
import numpy as np
import torch

from wespeaker_avkd.config.model_config import STAMPED_KEYS, ModelConfig, exp_model_config
from wespeaker_avkd.kinds import SystemKind, kind_of
from wespeaker_avkd.models.embedding_net import EmbeddingNet, trunk_autocast_dtype
from wespeaker_avkd.systems.builders import build_net
from wespeaker_avkd.utils.errors import InputKeyError, InputValueError
from wespeaker_avkd.utils.fileio import (
    atomic_write,
    check_output_path,
    create_exclusive,
    replace_into,
    temp_path_beside,
)
from wespeaker_avkd.utils.fingerprint import (
    data_dir_fingerprint,
    digest_of,
    file_fingerprint,
    listed_files_fingerprint,
    read_stamp,
    stamp_matches,
    write_stamp,
)

logger = logging.getLogger("wespeaker_avkd.extract")


# Config keys whose values change the embeddings a checkpoint gives (model_config.STAMPED_KEYS).
EMBEDDING_CONFIG_KEYS = STAMPED_KEYS
STAMP_NAME = "extract.json"
STAMP_VERSION = 2


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


def _output_fingerprints(outputs: Sequence[str]) -> dict[str, Any]:
    """{file name: content fingerprint} of the outputs written beside an scp (mean_vec.npy, ...)."""
    return {os.path.basename(path): file_fingerprint(path) for path in outputs}


def _is_current(scp_path: str, record_path: str, wanted: Mapping[str, Any], outputs: Sequence[str] = ()) -> bool:
    """True when scp_path exists and its stamp records the same inputs and this very scp (content), and every
    other output of the job (`outputs`) exists with the content the stamp recorded (a deleted mean_vec.npy
    is recreated; a stamp older than this record only needs them to exist)."""
    if not os.path.isfile(scp_path) or not all(os.path.isfile(path) for path in outputs):
        return False
    if not stamp_matches(record_path, dict(wanted, scp=file_fingerprint(scp_path))):
        return False
    recorded = (read_stamp(record_path) or {}).get("outputs")
    return recorded is None or stamp_matches(record_path, {"outputs": _output_fingerprints(outputs)})


def load_trained(exp_dir: str, checkpoint: str | None = None, device: str = "cpu",
                 cfg: ModelConfig | None = None) -> tuple[ModelConfig, EmbeddingNet, str]:
    """(config, net in eval mode, checkpoint path) from exp_dir/config.yaml (or its parse `cfg`) + avg_model.pt."""
    from wespeaker_avkd.checkpoint import load_into_net, load_model_state
    from wespeaker_avkd.data.kaldi_dir import read_spk2id

    cfg = cfg or exp_model_config(exp_dir)
    path = checkpoint or os.path.join(exp_dir, "models", "avg_model.pt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist; train {exp_dir} first (bin.train)")
    load_model_state(path)  # refuses unsafe or old-layout files before any model is built
    net = build_net(cfg, len(read_spk2id(os.path.join(exp_dir, "spk2id"))))
    load_into_net(net, path, policy="strict")
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


def _remove_other_arks(out_dir: str, keep: str) -> None:
    """Delete xvector*.ark files of out_dir other than `keep` (the previous result, or a crashed writer's)."""
    for name in os.listdir(out_dir):
        path = os.path.abspath(os.path.join(out_dir, name))
        if name.startswith("xvector") and name.endswith(".ark") and path != os.path.abspath(keep):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def write_embeddings(out_dir: str, keys: Sequence[str], table: Mapping[str, np.ndarray], tag: str,
                     before_scp: Callable[[], None] | None = None) -> str:
    """Write table[keys] (in that order) as out_dir/xvector.<tag>.ark + xvector.scp, replacing any previous
    result only at the end: the ark goes under a fresh name, the scp is renamed into place last, then the
    previous ark is deleted. An interruption leaves the previous complete result. Returns the scp path."""
    scp_path = os.path.join(out_dir, "xvector.scp")
    ark_path = os.path.abspath(os.path.join(out_dir, f"xvector.{tag}.ark"))  # scp lines work from any cwd
    check_output_path(scp_path)  # before anything is written
    create_exclusive(ark_path)  # a fresh file: never an existing one or a symlink planted under that name
    try:
        with temp_path_beside(scp_path) as tmp_scp:
            with kaldiio.WriteHelper(f"ark,scp:{ark_path},{tmp_scp}") as writer:
                for key in keys:
                    writer(key, np.asarray(table[key], dtype=np.float32))
            if before_scp is not None:
                before_scp()
            replace_into(tmp_scp, scp_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ark_path)
        raise
    _remove_other_arks(out_dir, ark_path)
    return scp_path


def _fresh_tag(wanted: Mapping[str, Any]) -> str:
    """A short name part for a new ark: the inputs' digest plus a nonce (a forced redo never reuses a name)."""
    return digest_of({"inputs": dict(wanted), "nonce": [os.getpid(), time.time_ns()]})[:12]


def extract_embeddings(exp_dir: str, data_dir: str, out_dir: str, checkpoint: str | None = None,
                       embedding_scps: Mapping[str, str] | None = None, device: str = "cpu",
                       mean_vec: bool = False, progress: bool = True, force: bool = False,
                       models: ModelCache | None = None, embedder: Embedder = embed_batch) -> str:
    """Embed every utterance of data_dir into out_dir/xvector.{scp,<tag>.ark} (+ mean_vec.npy); returns the scp.

    Skipped when out_dir/extract.json records the same inputs (extraction_inputs: content, not paths) and the
    scp it wrote is unchanged. `models` shares loaded models between jobs; `embedder` computes a batch.
    """
    os.makedirs(out_dir, exist_ok=True)
    scp_path = os.path.join(out_dir, "xvector.scp")
    record_path = os.path.join(out_dir, STAMP_NAME)
    mean_path = os.path.join(out_dir, "mean_vec.npy")
    outputs = [mean_path] if mean_vec else []
    cfg = exp_model_config(exp_dir)
    wanted = extraction_inputs(exp_dir, data_dir, checkpoint, embedding_scps, mean_vec, cfg)
    if not force and _is_current(scp_path, record_path, wanted, outputs):
        logger.info("%s is complete (same checkpoint, data and config); skipping", scp_path)
        return scp_path

    _, net, _ = (models or ModelCache()).get(exp_dir, checkpoint, device, cfg)
    kind = kind_of(cfg.modality)
    dev = torch.device(device)
    loader = kind.eval_loader(data_dir, cfg.dataset_args, cfg.eval_dataloader_args,
                              embedding_scps=dict(embedding_scps) if embedding_scps else None)
    keys = list(loader.dataset.utts)
    if not keys:
        raise InputValueError(f"{data_dir}: no utterance to embed")
    table: dict[str, np.ndarray] = {}
    bar = _bar(len(keys), f"extract {os.path.basename(exp_dir.rstrip('/'))} -> {out_dir}", progress)
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
    matrix = np.stack([table[k] for k in keys])
    bad = ~np.isfinite(matrix).all(axis=1)
    if bad.any():
        raise FloatingPointError(f"{data_dir}: the model of {exp_dir} gives a NaN/Inf embedding for utterance "
                                 f"'{keys[int(np.argmax(bad))]}' ({int(bad.sum())} of {len(keys)}); nothing written")

    def before_scp() -> None:
        # The stamp goes first (a crash from here on means "redo"), the mean vector is written beside the new ark.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(record_path)
        if mean_vec:
            with atomic_write(mean_path, "wb") as f:
                np.save(f, matrix.mean(0, dtype=np.float64).astype(np.float32))

    write_embeddings(out_dir, keys, table, _fresh_tag(wanted), before_scp)
    write_stamp(record_path, dict(wanted, scp=file_fingerprint(scp_path), num_utts=len(keys),
                                  dim=int(matrix.shape[1]), outputs=_output_fingerprints(outputs)))
    logger.info("wrote %d embeddings to %s", len(keys), scp_path)
    return scp_path


@dataclasses.dataclass(frozen=True)
class ExtractJob:
    """One line of a jobs file: embed data_dir with exp_dir's model into out_dir."""

    exp_dir: str
    data_dir: str
    out_dir: str
    mean_vec: bool = False
    embedding_scps: dict[str, str] | None = None
    where: str = ""


JOB_FIELDS = ("exp_dir", "data_dir", "out_dir", "mean_vec (0|1)", "embedding_scps ('-' or MODALITY=PATH,...)")


def parse_embedding_scps(text: str, where: str) -> dict[str, str] | None:
    """'-' -> None; 'audio=a.scp,visual=v.scp' -> {'audio': 'a.scp', 'visual': 'v.scp'} (errors name `where`)."""
    if text == "-":
        return None
    out: dict[str, str] = {}
    for item in text.split(","):
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path:
            raise InputValueError(f"{where}: embedding_scps entry {item!r} is not MODALITY=PATH")
        if name.strip() in out:
            raise InputValueError(f"{where}: embedding_scps names modality {name.strip()!r} twice")
        out[name.strip()] = path
    return out


def read_jobs(path: str) -> list:
    """Parse a jobs file: one tab-separated job per line (JOB_FIELDS); blank lines and '#' comments skipped.
    Paths may contain spaces (not tabs). A malformed line raises ValueError naming the file and line."""
    jobs = []
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputValueError(f"{path}: cannot read the jobs file ({err})") from err
    for number, line in enumerate(lines, 1):
        where = f"{path}:{number}"
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != len(JOB_FIELDS):
            raise InputValueError(f"{where}: expected {len(JOB_FIELDS)} tab-separated fields "
                                  f"({', '.join(JOB_FIELDS)}), got {len(fields)}")
        exp_dir, data_dir, out_dir, mean, scps = fields
        for name, value in (("exp_dir", exp_dir), ("data_dir", data_dir), ("out_dir", out_dir)):
            if not value:
                raise InputValueError(f"{where}: field {name} is empty")
        if mean not in ("0", "1"):
            raise InputValueError(f"{where}: field mean_vec must be 0 or 1, got {mean!r}")
        jobs.append(ExtractJob(exp_dir, data_dir, out_dir, mean == "1", parse_embedding_scps(scps, where), where))
    if not jobs:
        raise InputValueError(f"{path}: no job in the jobs file")
    return jobs


def run_jobs(jobs: Sequence[ExtractJob], device: str = "cpu", progress: bool = True, force: bool = False,
             models: ModelCache | None = None) -> list:
    """Run extraction jobs in order in this process; consecutive jobs of one exp dir share its loaded model.
    Returns the scp paths. An error names the job's file and line."""
    models = models or ModelCache()
    out = []
    for job in jobs:
        try:
            out.append(extract_embeddings(job.exp_dir, job.data_dir, job.out_dir, embedding_scps=job.embedding_scps,
                                          device=device, mean_vec=job.mean_vec, progress=progress, force=force,
                                          models=models))
        except Exception as err:
            if job.where and _reraisable(err):
                raise type(err)(f"job {job.where}: {err}") from err
            raise
    return out


def _reraisable(err: Exception) -> bool:
    """True when err's type can be rebuilt from one message (to prefix the job's location)."""
    try:
        type(err)("x")
    except Exception:
        return False
    return True


def _bar(total: int | None, desc: str, enabled: bool):
    """A tqdm bar over utterances, or None."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="utt", mininterval=1.0, leave=False, file=sys.stderr)


def export_teacher(exp_dir: str, train_scp: str, out_dir: str | None = None,
                   checkpoint: str | None = None, force: bool = False) -> str:
    """Write exp_dir/kd_export: teacher embeddings of the training utterances (xvector.ark/scp), the teacher's
    AAM weight W (projection_weight.npy, (C, D) float32) and the spk2id it was trained with. Returns out_dir.

    Skipped when its stamp records the same checkpoint, train_scp (and the ark it names) and spk2id content.
    """
    from wespeaker_avkd.checkpoint import load_model_state
    from wespeaker_avkd.data.kaldi_dir import read_spk2id, write_spk2id
    from wespeaker_avkd.scoring import load_embeddings

    out_dir = out_dir or os.path.join(exp_dir, "kd_export")
    os.makedirs(out_dir, exist_ok=True)
    ckpt_path = checkpoint or os.path.join(exp_dir, "models", "avg_model.pt")
    spk2id_path = os.path.join(exp_dir, "spk2id")
    scp_path = os.path.join(out_dir, "xvector.scp")
    record_path = os.path.join(out_dir, STAMP_NAME)
    source_ark = _current_ark(train_scp)
    wanted = {"version": STAMP_VERSION, "checkpoint": file_fingerprint(ckpt_path),
              "train_scp": file_fingerprint(train_scp),
              "train_ark": listed_files_fingerprint([source_ark] if source_ark else []),
              "spk2id": file_fingerprint(spk2id_path)}
    outputs = [os.path.join(out_dir, name) for name in ("projection_weight.npy", "spk2id")]
    if not force and _is_current(scp_path, record_path, wanted, outputs):
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

    write_embeddings(out_dir, keys, dict(zip(keys, emb)), _fresh_tag(wanted), before_scp)
    write_stamp(record_path, dict(wanted, scp=file_fingerprint(scp_path), num_utts=len(keys),
                                  outputs=_output_fingerprints(outputs)))
    logger.info("kd export: %d teacher embeddings, W %s -> %s", len(keys), weight.shape, out_dir)
    return out_dir
