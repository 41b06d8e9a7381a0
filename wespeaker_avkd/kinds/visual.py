"""The visual student: a ResNet on face frames, from faces.scp (several frames per utterance) or tar shards."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wespeaker_avkd.data.dataset_args import VisualDatasetArgs
from wespeaker_avkd.kinds.base import SystemKind, register_kind
from wespeaker_avkd.registry import MODELS

if TYPE_CHECKING:  # data and torch are imported on use: the kinds' facts import light
    import torch

    from wespeaker_avkd.data.datasets import KeyedDataset
    from wespeaker_avkd.data.shards import ShardItems



class VisualStudent(SystemKind):
    """Face embeddings: the visual baseline and the visual KD students."""

    name = "visual"
    encoder_registry = MODELS
    role = "student"
    raw_source = "faces"
    dataset_section = VisualDatasetArgs
    # the dataset_args an evaluation pass reads (the others are training's)
    eval_dataset_keys = ("data_type", "image_size", "num_eval_frames", "mean", "std")

    def input_source(self, data_dir: str, args: Any) -> tuple[str, str]:
        """('shard', shard.list) with data_type shard, else ('faces', faces.scp)."""
        from wespeaker_avkd.data import loaders
        from wespeaker_avkd.data.shards import SHARD_LIST

        if args.data_type == "shard":
            return "shard", loaders.require_file(data_dir, SHARD_LIST)
        return "faces", loaders.require_file(data_dir, "faces.scp")

    def dataset(self, data_dir: str, utts: list[str], args: Any, train: bool,
                embedding_scps: Mapping[str, str] | None, num_speakers: int = 0, **kw: Any) -> KeyedDataset:
        """VisualDataset over utts (training: one random frame per item; evaluation: num_eval_frames)."""
        from wespeaker_avkd.data import loaders
        from wespeaker_avkd.data.datasets import VisualDataset
        from wespeaker_avkd.data.kaldi_dir import read_multi_table

        path = self.input_source(data_dir, args)[1]
        return VisualDataset(utts, loaders.select(read_multi_table(path), utts, path), args.image_size, args.mean,
                             args.std, train=train, num_eval_frames=args.num_eval_frames, **kw)

    def shard_items(self, index: Any, args: Any, train: bool, **kw: Any) -> ShardItems:
        """Shard items decoding the face frames."""
        from wespeaker_avkd.data.datasets import FaceTransform
        from wespeaker_avkd.data.shards import ShardItems, VisualCodec

        codec = VisualCodec(FaceTransform(args.image_size, args.mean, args.std), train, args.num_eval_frames)
        return ShardItems(index, codec, **kw)

    def eval_utts(self, data_dir: str, args: Any) -> list[str]:
        """Keys of faces.scp."""
        from wespeaker_avkd.data.kaldi_dir import read_multi_table

        return sorted(read_multi_table(self.input_source(data_dir, args)[1]))

    def embed_tensor(self, net: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """(B, K, 3, H, W) frames -> (B, D): the mean of the frames' embeddings (models/visual_resnet.py)."""
        from wespeaker_avkd.models.visual_resnet import segment_embedding

        return segment_embedding(net.encoder, inputs)

    def export_spec(self, model_args: Mapping[str, Any], args: Any, encoder: torch.nn.Module) -> dict[str, Any]:
        """(batch, 3, H, W) normalised RGB frames; a segment's embedding is the mean over its frames."""
        size = args.image_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        return {"input_shape": ["batch", 3, int(h), int(w)], "mean": list(args.mean), "std": list(args.std),
                "num_eval_frames": args.num_eval_frames,
                "preprocessing": "RGB image resized (bilinear) to HxW, scaled to [0, 1], then (x - mean) / std per "
                                 "channel; a segment's embedding is the mean over its frames"}


VISUAL = register_kind(VisualStudent())
