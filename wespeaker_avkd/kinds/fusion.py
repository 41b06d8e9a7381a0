"""The fusion teacher: a fusion network (GATE by default) on the frozen audio and visual embeddings."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wespeaker_avkd.data.dataset_args import FusionDatasetArgs
from wespeaker_avkd.kinds.base import SystemKind, embedding_tables, register_kind, utterances_of
from wespeaker_avkd.registry import FUSIONS

if TYPE_CHECKING:  # data and torch are imported on use: the kinds' facts import light
    import torch

    from wespeaker_avkd.data.datasets import KeyedDataset


# The systems whose embeddings the teacher reads, in the order the fusion network takes them.
INPUT_KINDS = ("audio", "visual")


class FusionTeacher(SystemKind):
    """The audio-visual teacher: trained on the baselines' embeddings, distilled into the students."""

    name = "fusion"
    encoder_registry = FUSIONS
    role = "teacher"
    dataset_section = FusionDatasetArgs
    exportable = False
    reads_embeddings = True
    eval_dataset_keys = ()

    def embedding_scps(self, audio_dir: str, visual_dir: str, subset: str) -> dict[str, str]:
        """{input kind: <its embedding dir>/<subset>/xvector.scp}."""
        return {m: os.path.join(d, subset, "xvector.scp") for m, d in zip(INPUT_KINDS, (audio_dir, visual_dir))}

    def input_source(self, data_dir: str, args: Any) -> tuple[str, str]:
        """('embeddings', ''): the inputs are embedding tables given to the loader, not files of data_dir."""
        return "embeddings", ""

    def reads_shards(self, args: Any) -> bool:
        """Never: embeddings are read from their tables."""
        return False

    def dataset(self, data_dir: str, utts: list[str], args: Any, train: bool,
                embedding_scps: Mapping[str, str] | None, num_speakers: int = 0, **kw: Any) -> KeyedDataset:
        """FusionDataset of the (audio, visual) embedding rows of utts."""
        from wespeaker_avkd.data.datasets import FusionDataset

        emb = embedding_tables(data_dir, embedding_scps, utts, INPUT_KINDS)
        return FusionDataset(utts, emb["audio"], emb["visual"], **kw)

    def eval_utts(self, data_dir: str, args: Any) -> list[str]:
        """Keys of utt2spk."""
        from wespeaker_avkd.data import loaders

        return utterances_of(loaders.require_file(data_dir, "utt2spk"))

    def input_files(self, data_dir: str, args: Any, embedding_scps: Mapping[str, str] | None) -> list[str]:
        """The arks behind the embedding scps."""
        from wespeaker_avkd.data import loaders

        return loaders.embedding_files(embedding_scps)

    def embed(self, net: torch.nn.Module, inputs: Any, device: torch.device) -> torch.Tensor:
        """((B, Da), (B, Dv)) -> (B, D) fused embeddings."""
        return net.embed(tuple(x.to(device) for x in inputs))


FUSION = register_kind(FusionTeacher())
