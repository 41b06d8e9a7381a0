"""Embed wav files or face images with a trained model (exp dir) or a WeSpeaker checkpoint + config.

Inputs go through the recipe's own evaluation path: they are written as a wav.scp or faces.scp of a
temporary data dir and read by the system kind's eval loader (kinds/), then embedded by inference/extract.embed_batch.
So an embedding equals the one `bin.extract` writes for the same file: fbank with the config's fbank_args
(no dither) and per-utterance CMN for audio; for faces the eval transform (resize, mean/std) and the mean
over num_eval_frames evenly spaced frames of a segment. The model's config is parsed once, in load_model, into
a ModelConfig (config/model_config.py) that embed_table reads.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from wespeaker_avkd.config.model_config import ModelConfig
from wespeaker_avkd.utils.errors import NamedError

logger = logging.getLogger(__name__)

SOURCES = ("wav", "faces")


class InputError(NamedError, ValueError):
    """Bad embedding inputs (file list, scp, modality mismatch); the message names the file or key."""


def table_from_paths(paths: Sequence[str]) -> dict[str, list[str]]:
    """{key: [path]} with each path as its own key (the path as given); whitespace or duplicates refused."""
    table: dict[str, list[str]] = {}
    for path in paths:
        if not path or any(c.isspace() for c in path):
            raise InputError(f"input path {path!r} is empty or contains whitespace (use --list with 'key path')")
        if path in table:
            raise InputError(f"input {path} is given twice")
        table[path] = [path]
    return table


def read_list(path: str) -> dict[str, list[str]]:
    """A list file: one input per line, 'path' (its own key) or 'key path [path ...]' (face frames)."""
    table: dict[str, list[str]] = {}
    with open(path, "r", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            tokens = line.split()
            if not tokens:
                continue
            key, values = (tokens[0], tokens[:1]) if len(tokens) == 1 else (tokens[0], tokens[1:])
            if key in table:
                raise InputError(f"{path}:{line_no}: duplicate key '{key}'")
            table[key] = values
    if not table:
        raise InputError(f"{path}: no input listed")
    return table


def read_inputs(inputs: Sequence[str] | None = None, list_file: str | None = None,
                wav_scp: str | None = None,
                faces_scp: str | None = None) -> tuple[str | None, dict[str, list[str]]]:
    """(source 'wav'/'faces', or None when the model decides, {key: [paths]}) from exactly one input option."""
    from wespeaker_avkd.data.kaldi_dir import read_scp

    given = [name for name, value in (("--inputs", inputs), ("--list", list_file), ("--wav_scp", wav_scp),
                                      ("--faces_scp", faces_scp)) if value]
    if len(given) != 1:
        raise InputError(f"give exactly one of --inputs, --list, --wav_scp, --faces_scp (got {given or 'none'})")
    if inputs:
        return None, table_from_paths(inputs)
    if list_file:
        return None, read_list(list_file)
    # Tables of file values whatever their names: a pipe, stdin or specifier value is refused (file:line)
    if wav_scp:
        return "wav", read_scp(wav_scp, multi=True)
    return "faces", read_scp(faces_scp, multi=True)


def load_model(exp_dir: str | None = None, checkpoint: str | None = None,
               wespeaker_checkpoint: str | None = None, config: str | None = None,
               device: str = "cpu") -> tuple[ModelConfig, nn.Module]:
    """(config, net with .encoder and .embed, eval mode on `device`) from an exp dir, or from a WeSpeaker
    checkpoint + its yaml config (modality defaults to audio; the AAM head in the checkpoint is set aside)."""
    if exp_dir:
        if wespeaker_checkpoint or config:
            raise InputError("give --exp_dir, or --wespeaker_checkpoint with --config, not both")
        from wespeaker_avkd.inference.extract import load_trained

        cfg, net, _ = load_trained(exp_dir, checkpoint, device)
        return cfg, net
    if not (wespeaker_checkpoint and config):
        raise InputError("give --exp_dir, or --wespeaker_checkpoint FILE with --config CONF")
    from wespeaker_avkd.checkpoint import load_into_net
    from wespeaker_avkd.config.model_config import load_model_config
    from wespeaker_avkd.models.embedding_net import EmbeddingNet
    from wespeaker_avkd.systems.builders import make_encoder

    # WeSpeaker configs are speaker (audio) models and have no modality key
    cfg = load_model_config(config, default_modality="audio")
    encoder = make_encoder(cfg.modality, cfg.model, cfg.plugins)
    load_into_net(encoder, wespeaker_checkpoint, policy="wespeaker")  # the AAM head is set aside
    net = EmbeddingNet(encoder, nn.Identity())
    net.to(torch.device(device)).eval()
    return cfg, net


def _check_source(modality: str, source: str | None, table: Mapping[str, list[str]]) -> str:
    """The data-dir table the inputs go into (wav.scp for audio, faces.scp for visual), checked."""
    from wespeaker_avkd.kinds import kind_of

    wanted = kind_of(modality).raw_source
    if wanted is None:
        raise InputError(f"embedding files needs an audio or visual model, this one is {modality!r} (the fusion "
                         f"teacher embeds pre-extracted embeddings: use bin.extract --embedding_scps)")
    if source is not None and source != wanted:
        raise InputError(f"the model is a {modality} model; it embeds a {wanted}.scp, not a {source}.scp")
    if wanted == "wav":
        several = [k for k, v in table.items() if len(v) != 1]
        if several:
            raise InputError(f"audio input '{several[0]}' lists {len(table[several[0]])} files; one wav per key")
    return wanted


def embed_table(cfg: ModelConfig, net: nn.Module, table: Mapping[str, list[str]],
                source: str | None = None, device: str = "cpu",
                num_workers: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (key, (D,) float32 embedding) for every entry of {key: [paths]}, in sorted key order (as bin.extract
    writes them; streamed, so a long wav.scp needs no memory per utterance); the config's eval batch size,
    `num_workers` loader processes (not the training config's: a few files need none)."""
    from wespeaker_avkd.data.kaldi_dir import write_table
    from wespeaker_avkd.inference.extract import embed_loader_batch
    from wespeaker_avkd.kinds import kind_of

    system = kind_of(cfg.modality)
    kind = _check_source(cfg.modality, source, table)
    dataset_args = cfg.dataset_args
    if kind == "wav":  # the model's own fbank settings, computed from the wav
        dataset_args = dataclasses.replace(dataset_args, feat_source="wav")
    dataloader_args = dataclasses.replace(cfg.eval_dataloader_args, num_workers=int(num_workers))
    dev = torch.device(device)
    with tempfile.TemporaryDirectory(prefix="wespeaker_avkd_embed.") as data_dir:
        write_table(os.path.join(data_dir, f"{kind}.scp"), dict(table))
        loader = system.eval_loader(data_dir, dataset_args, dataloader_args)
        for batch in loader:
            emb = embed_loader_batch(net, system, batch, dev, f"{kind} inputs")
            yield from zip(batch["keys"], emb)


def format_vector(key: str, vec: np.ndarray) -> str:
    """'key v1 v2 ...' with 9 significant digits (a float32 round-trips)."""
    return key + " " + " ".join(f"{v:.9g}" for v in vec)


def parse_wspecifier(wspecifier: str) -> tuple[str, str | None, list[str]]:
    """'ark,scp:x.ark,x.scp' -> ('x.ark', 'x.scp', []); 'ark[,t]:x.ark' -> ('x.ark', None, ['t']): the ark, the
    scp (or None) and the further Kaldi options; anything else is an InputError naming --out."""
    kind, sep, files = wspecifier.partition(":")
    flags = kind.split(",")
    if not sep or "ark" not in flags or not files:
        raise InputError(f"--out {wspecifier!r}: expected ark,scp:FILE.ark,FILE.scp or ark:FILE.ark")
    others = [flag for flag in flags if flag not in ("ark", "scp")]
    if "scp" not in flags:
        return files, None, others
    names = files.split(",")
    if len(names) != 2:
        raise InputError(f"--out {wspecifier!r}: ark,scp needs two files, FILE.ark,FILE.scp")
    return names[0], names[1], others


def write_wspecifier(pairs: Iterable[tuple[str, np.ndarray]], wspecifier: str) -> int:
    """Write (key, vector) pairs to a Kaldi wspecifier ('ark,scp:x.ark,x.scp' or 'ark:x.ark') through the one
    embedding writer (inference/outputs.write_embeddings: the scp renamed into place last); returns the count."""
    from wespeaker_avkd.inference.outputs import write_embeddings

    ark, scp, flags = parse_wspecifier(wspecifier)
    return write_embeddings(pairs, ark, scp, flags=flags)
