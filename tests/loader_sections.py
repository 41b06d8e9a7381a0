"""A system kind's loaders from plain dicts, as a yaml's sections: parsed by the real schema, then built by the
kind (tests write their loader options as dicts; the package's loaders take typed sections only)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wespeaker_avkd.data.dataset_args import DataLoaderArgs
from wespeaker_avkd.kinds import SystemKind, kind_of


def sections(modality: str, dataset_args: Mapping[str, Any],
             dataloader_args: Mapping[str, Any] | None = None) -> tuple[SystemKind, Any, DataLoaderArgs]:
    """(kind, typed dataset_args, typed dataloader_args) of plain mappings."""
    kind = kind_of(modality)
    return (kind, *kind.sections(dataset_args, dataloader_args))


def build_train_loader(modality: str, data_dir: str, spk2id: Mapping[str, int], dataset_args: Mapping[str, Any],
                       dataloader_args: Mapping[str, Any], seed: int, **kw: Any) -> Any:
    """kind.train_loader with dict options."""
    kind, ds, dl = sections(modality, dataset_args, dataloader_args)
    return kind.train_loader(data_dir, spk2id, ds, dl, seed, **kw)


def build_eval_loader(modality: str, data_dir: str, dataset_args: Mapping[str, Any],
                      dataloader_args: Mapping[str, Any], **kw: Any) -> Any:
    """kind.eval_loader with dict options."""
    kind, ds, dl = sections(modality, dataset_args, dataloader_args)
    return kind.eval_loader(data_dir, ds, dl, **kw)


def eval_input_files(modality: str, data_dir: str, dataset_args: Mapping[str, Any],
                     embedding_scps: Mapping[str, str] | None = None) -> list[str]:
    """kind.input_files with dict options."""
    kind, ds, _ = sections(modality, dataset_args)
    return kind.input_files(data_dir, ds, embedding_scps)
