"""Export a trained encoder to TorchScript or ONNX, and load an exported file back for inference.

The exported model is the embedding network alone (no AAM head):
- audio:  (B, T, F) mean-normalised fbank (as data/fbank.py + apply_cmn make it) -> (B, D), T dynamic;
- visual: (B, 3, H, W) normalised face frames (as the eval loader makes them) -> (B, D) per frame; a
  segment's embedding is the mean of its frames' embeddings (models.visual_resnet.segment_embedding).

The input is named `feats` and the output `embs`, as WeSpeaker's export_onnx.py names them (so its runtime and
infer_onnx.py-style code run our file). With a mean vector (`mean_vec`, a (D,) .npy such as bin.extract's
mean_vec.npy, as WeSpeaker's export_onnx.py --mean_vec takes it) the file gives embs = model(feats) - mean, the
mean folded into the graph. A sidecar `<out>.json` records what the input must be (fbank settings, CMN, image
size, mean/std) and whether a mean is subtracted, so a user of the exported file needs nothing else from the
training run.

The model comes from a trained exp dir (export_trained) or from a WeSpeaker-layout model file and its config
(export_wespeaker: a WeSpeaker model dir's avg_model.pt + config.yaml, also as WeSpeaker's train.py saves it).

TorchScript uses torch.jit.trace (the models' shape checks and pooling are Python, which torch.jit.script
cannot compile); ONNX uses torch's default (torch.export based) exporter, which needs the optional packages
`onnx` and `onnxscript` (pip install "wespeaker_avkd[onnx]"); running an ONNX file here needs `onnxruntime`.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from wespeaker_avkd.config.model_config import ModelConfig
from wespeaker_avkd.kinds import KINDS, kind_of
from wespeaker_avkd.utils.errors import InputValueError, NamedError
from wespeaker_avkd.utils.fileio import atomic_write

logger = logging.getLogger(__name__)

FORMATS = ("torchscript", "onnx")
ONNX_EXPORT_PACKAGES = ("onnx", "onnxscript")
ONNX_RUN_PACKAGES = ("onnxruntime",)
ONNX_INSTALL_HINT = 'pip install "wespeaker_avkd[onnx]" (installs onnx, onnxscript and onnxruntime)'
# Upper bound of the dynamic frame axis declared to torch.export (1000 s at a 10 ms shift); the lower bound is
# the audio kind's EXPORT_MIN_FRAMES.
EXPORT_MAX_FRAMES = 100_000
# WeSpeaker's names (its export_onnx.py, runtime and infer_onnx.py); files of earlier versions named the output
# "embedding": load_exported reads the names from the file, so it runs both.
INPUT_NAME, OUTPUT_NAME = "feats", "embs"


class MissingOptionalDependency(NamedError, ImportError):
    """An optional package (ONNX export or runtime) is not installed; the message says how to install it."""


def require_packages(names: Sequence[str], purpose: str) -> None:
    """Raise MissingOptionalDependency naming every package of `names` that is not importable."""
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        raise MissingOptionalDependency(f"{purpose} needs the package(s) {', '.join(missing)}, which are not "
                                        f"installed: {ONNX_INSTALL_HINT}")


class ExportInputError(NamedError, ValueError):
    """A bad export input (mean vector file, model options); the message names the file or option."""


class _EmbeddingOnly(nn.Module):
    """The encoder with a single tensor output: a tuple output (WeSpeaker's (embed_a, embed_b)) gives its last;
    with `mean_vec` (D,) the output is the embedding minus it."""

    def __init__(self, encoder: nn.Module, mean_vec: torch.Tensor | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.subtract_mean = mean_vec is not None
        if mean_vec is not None:
            self.register_buffer("mean_vec", mean_vec.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ...) model input -> (B, D) embedding (minus the mean vector when one is folded in)."""
        out = self.encoder(x)
        emb = out[-1] if isinstance(out, (tuple, list)) else out
        return emb - self.mean_vec if self.subtract_mean else emb


def load_mean_vec(path: str) -> torch.Tensor:
    """A (D,) float mean vector from a .npy file (bin.extract's mean_vec.npy; WeSpeaker's, which
    export_onnx.py --mean_vec reads); read without pickle, refused naming the file unless 1-D, real and finite."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ExportInputError(f"mean vector {path}: not a readable .npy array ({err})") from None
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "fiu" or not np.isfinite(arr).all():
        raise ExportInputError(f"mean vector {path}: expected a 1-D array of finite numbers, got shape "
                               f"{arr.shape} of {arr.dtype}")
    return torch.from_numpy(arr.astype(np.float32))


def input_spec(cfg: ModelConfig, encoder: nn.Module) -> dict[str, Any]:
    """What the exported model expects, from the training config: modality, shapes and preprocessing."""
    kind = kind_of(cfg.modality)
    if not kind.exportable:
        exportable = [name for name, k in KINDS.items() if k.exportable]
        raise InputValueError(f"modality {kind.name!r} cannot be exported (only {tuple(exportable)}: the fusion "
                              f"teacher's inputs are other models' embeddings)")
    spec: dict[str, Any] = {"modality": kind.name, "model": cfg.model.name, "input_name": INPUT_NAME,
                            "output_name": OUTPUT_NAME}
    spec.update(kind.export_spec(cfg.model.args, cfg.dataset_args, encoder))
    return spec


def example_input(spec: Mapping[str, Any], batch: int = 2) -> torch.Tensor:
    """A random input of the exported shape (batch 2: torch.export specialises a batch of 1 to a constant)."""
    return kind_of(spec["modality"]).example_input(spec, batch, torch.Generator().manual_seed(0))


def export_module(encoder: nn.Module, spec: Mapping[str, Any], fmt: str, out: str,
                  mean_vec: torch.Tensor | None = None) -> str:
    """Write `encoder` (eval mode, CPU) to `out` as TorchScript or ONNX with a dynamic batch (and frame) axis;
    `mean_vec` (D,): the file outputs the embedding minus it."""
    if fmt not in FORMATS:
        raise InputValueError(f"--format must be one of {FORMATS}, got {fmt!r}")
    if fmt == "onnx":
        require_packages(ONNX_EXPORT_PACKAGES, "ONNX export")
    module = _EmbeddingOnly(encoder).cpu().eval()
    example = example_input(spec)
    if mean_vec is not None:
        with torch.no_grad():
            dim = module(example).shape[-1]
        if tuple(mean_vec.shape) != (dim,):
            raise ExportInputError(f"mean vector of shape {tuple(mean_vec.shape)} for a model of {dim}-d "
                                   f"embeddings")
        module = _EmbeddingOnly(encoder, mean_vec).cpu().eval()
    with torch.no_grad(), warnings.catch_warnings():
        # The models' shape checks are Python ifs: tracing warns that they become constants, which is intended.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        if fmt == "torchscript":
            traced = torch.jit.trace(module, (example,), check_trace=False)
            with atomic_write(out, "wb") as f:
                torch.jit.save(traced, f)
        else:
            batch = torch.export.Dim("batch", min=1, max=1 << 16)
            dims = {0: batch}
            if "min_frames" in spec:  # a variable-length input (audio frames)
                dims[1] = torch.export.Dim("frames", min=spec["min_frames"], max=EXPORT_MAX_FRAMES)
            # torch.onnx logs a warning per unannotated torchvision op schema it scans, none about this model.
            onnx_logger = logging.getLogger("torch.onnx")
            level = onnx_logger.level
            onnx_logger.setLevel(logging.ERROR)
            try:
                program = torch.onnx.export(module, (example,), None, input_names=[INPUT_NAME],
                                            output_names=[OUTPUT_NAME], dynamic_shapes=(dims,), dynamo=True,
                                            external_data=False, verbose=False)
            finally:
                onnx_logger.setLevel(level)
            with atomic_write(out, "wb") as f:
                f.write(program.model_proto.SerializeToString())
    return out


def _export(cfg: ModelConfig, encoder: nn.Module, out: str, fmt: str, mean_vec: str | None,
            source: Mapping[str, str]) -> dict[str, Any]:
    """Export `encoder`, write the sidecar (input spec, format, mean vector, `source` paths); returns the record."""
    spec = input_spec(cfg, encoder)
    export_module(encoder, spec, fmt, out, load_mean_vec(mean_vec) if mean_vec else None)
    record = dict(spec, format=fmt, mean_subtracted=bool(mean_vec),
                  mean_vec=os.path.abspath(mean_vec) if mean_vec else None,
                  **{k: os.path.abspath(v) for k, v in source.items()})
    with atomic_write(sidecar_path(out)) as f:
        json.dump(record, f, indent=1)
    logger.info("exported %s encoder of %s (%s) to %s", spec["modality"], source.get("exp_dir") or
                source["checkpoint"], fmt, out)
    return record


def export_trained(exp_dir: str, out: str, fmt: str, checkpoint: str | None = None,
                   mean_vec: str | None = None) -> dict[str, Any]:
    """Export the encoder of a trained exp dir (default checkpoint models/avg_model.pt) to `out` + `out`.json,
    minus the mean vector in the .npy file `mean_vec` if given; returns the sidecar record."""
    from wespeaker_avkd.inference.extract import load_trained

    cfg, net, path = load_trained(exp_dir, checkpoint, device="cpu")
    return _export(cfg, net.encoder, out, fmt, mean_vec, {"checkpoint": path, "exp_dir": exp_dir})


def export_wespeaker(config: str, checkpoint: str, out: str, fmt: str,
                     mean_vec: str | None = None) -> dict[str, Any]:
    """Export a WeSpeaker-layout model file with its yaml config (a WeSpeaker model dir's avg_model.pt and
    config.yaml, also as WeSpeaker's train.py saves it; audio unless the config says otherwise), as
    export_trained does."""
    from wespeaker_avkd.inference.embed import load_model

    cfg, net = load_model(wespeaker_checkpoint=checkpoint, config=config, device="cpu")
    return _export(cfg, net.encoder, out, fmt, mean_vec, {"checkpoint": checkpoint, "config": config})


def sidecar_path(out: str) -> str:
    """<out>.json: the exported model's input description."""
    return out + ".json"


def detect_format(path: str) -> str:
    """'onnx' for *.onnx, else 'torchscript'."""
    return "onnx" if path.lower().endswith(".onnx") else "torchscript"


def load_exported(path: str, fmt: str | None = None,
                  num_threads: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A function float32 input (B, ...) -> (B, D) embeddings running an exported file (CPU)."""
    fmt = fmt or detect_format(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"exported model {path} does not exist")
    if fmt == "torchscript":
        module = torch.jit.load(path, map_location="cpu").eval()

        def run_ts(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return module(torch.as_tensor(np.asarray(x, dtype=np.float32))).numpy()

        return run_ts
    if fmt != "onnx":
        raise InputValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    require_packages(ONNX_RUN_PACKAGES, "running an ONNX model")
    import onnxruntime as ort

    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = int(num_threads)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run_onnx(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: np.asarray(x, dtype=np.float32)})[0]

    return run_onnx
