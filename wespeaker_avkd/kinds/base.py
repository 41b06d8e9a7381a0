"""SystemKind: what one kind of system reads, how its data is loaded, which registry builds it, how it embeds.

A config's `modality` names a kind (`kind_of`); every place that behaves differently for the audio student, the
visual student and the fusion teacher asks the kind object instead of testing the name. A new kind is one
subclass registered in `KINDS`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from wespeaker_avkd.data.dataset_args import DataLoaderArgs
from wespeaker_avkd.registry import Registry
from wespeaker_avkd.utils.schema import ConfigError, Section, Where

if TYPE_CHECKING:  # the kinds' facts import light (the recipe's planner reads them); data and torch on use
    import torch
    from torch.utils.data import DataLoader

    from wespeaker_avkd.data.datasets import KeyedDataset
    from wespeaker_avkd.data.shards import ShardItems


class SystemKind:
    """One kind of system (audio student, visual student, fusion teacher); subclasses fill in the hooks."""

    name: ClassVar[str]                     # the config's `modality` value
    role: ClassVar[str]                     # "student" (trained alone or distilled) or "teacher"
    dataset_section: ClassVar[type[Section]]  # the typed `dataset_args` section
    exportable: ClassVar[bool] = True       # bin.export can write it as a stand-alone model
    takes_fbank: ClassVar[bool] = False     # its inputs are fbank frames (WeSpeaker's speaker models)
    raw_source: ClassVar[str | None] = None  # the data-dir table of its raw inputs (wav, faces), if it has one
    eval_dataset_keys: ClassVar[tuple[str, ...]]  # the dataset_args an evaluation pass reads
    encoder_registry: ClassVar[Registry]    # where its `model:` name is looked up (MODELS or FUSIONS)
    reads_embeddings: ClassVar[bool] = False  # its inputs are other systems' embeddings (`embedding_dirs`)

    @property
    def distils(self) -> bool:
        """Whether it can be a KD student (take `kd:` terms)."""
        return self.role == "student"

    def sections(self, dataset_args: Mapping[str, Any],
                 dataloader_args: Mapping[str, Any] | None = None) -> tuple[Section, DataLoaderArgs]:
        """(typed dataset_args, typed dataloader_args) of plain mappings, checked by the schema (for tools that
        build loaders outside a training config)."""
        return (self.dataset_section.from_dict(dict(dataset_args), Where("dataset_args")),
                DataLoaderArgs.from_dict(dict(dataloader_args or {}), Where("dataloader_args")))

    # -------------------------------------------------------------------- inputs
    def input_source(self, data_dir: str, args: Any) -> tuple[str, str]:
        """(source kind, path) of its input in data_dir: ('feats'|'wav'|'faces'|'shard'|'embeddings', path)."""
        raise NotImplementedError

    def reads_shards(self, args: Any) -> bool:
        """Whether `args` (its dataset section) reads tar shards (<data dir>/shard.list)."""
        return getattr(args, "data_type", None) == "shard"

    def dataset(self, data_dir: str, utts: list[str], args: Any, train: bool,
                embedding_scps: Mapping[str, str] | None, num_speakers: int = 0, **kw: Any) -> KeyedDataset:
        """The map-style dataset over `utts` of data_dir (labels/teacher rows in kw)."""
        raise NotImplementedError

    def shard_items(self, index: Any, args: Any, train: bool, **kw: Any) -> ShardItems:
        """A shard index with this kind's member codec."""
        raise ConfigError(f"dataset_args.data_type: shard is for audio and visual systems, not {self.name!r}")

    def eval_utts(self, data_dir: str, args: Any) -> list[str]:
        """Sorted utterance keys an evaluation pass over data_dir embeds."""
        raise NotImplementedError

    def train_chunk(self, args: Any) -> list[int] | None:
        """[min, max] training chunk in frames, or None when items are not cropped."""
        return None

    def check_shard_training(self, args: Any, data_dir: str) -> None:
        """Refuse dataset options that the shard reader does not apply (audio: WeSpeaker's pipeline)."""

    def filtered(self, dataset: KeyedDataset, args: Any, utt2spk_path: str) -> KeyedDataset:
        """The training dataset after any length filter of its options."""
        return dataset

    def eval_batch_sampler(self, dataset: KeyedDataset, batch_size: int) -> Any:
        """Batches of an evaluation pass (in dataset order unless a kind needs otherwise)."""
        from wespeaker_avkd.data.samplers import SequentialBatchSampler

        return SequentialBatchSampler(len(dataset), batch_size)

    def input_files(self, data_dir: str, args: Any, embedding_scps: Mapping[str, str] | None) -> list[str]:
        """Files an evaluation loader reads besides its tables (content fingerprints of extraction inputs)."""
        from wespeaker_avkd.data import loaders

        kind, path = self.input_source(data_dir, args)
        if kind == "shard":
            return loaders.shard_files(path)
        return loaders.table_files(kind, path)

    # -------------------------------------------------------------------- loaders
    def train_loader(self, data_dir: str, spk2id: Mapping[str, int], args: Any, dataloader_args: Any, seed: int,
                     rank: int = 0, world_size: int = 1, teacher_scp: str | None = None,
                     embedding_scps: Mapping[str, str] | None = None) -> DataLoader:
        """Training loader over every utterance of data_dir/utt2spk: batches {"keys", "inputs", "labels",
        "teacher_emb" (only with teacher_scp)}; call data.loaders.set_loader_epoch before each epoch."""
        from wespeaker_avkd.data import loaders
        from wespeaker_avkd.data.datasets import load_embedding_table, stack_embeddings
        from wespeaker_avkd.data.samplers import SeededBatchSampler
        from wespeaker_avkd.data.shards import SHARD_LIST, ShardTrainDataset, load_shard_index

        utt2spk_path, utt2spk, utts = loaders.training_utterances(data_dir, spk2id)
        index = None
        if self.reads_shards(args):
            index = load_shard_index(loaders.require_file(data_dir, SHARD_LIST))
            loaders.check_index_keys(index, utt2spk, utt2spk_path)
            utts = list(index.keys)  # index order: labels and teacher rows follow it
        labels = [spk2id[utt2spk[u]] for u in utts]
        teacher = None
        if teacher_scp is not None:
            teacher = stack_embeddings(load_embedding_table(teacher_scp), utts, "teacher", teacher_scp)
        batch_size, drop_last, shuffle = dataloader_args.batch_size, dataloader_args.drop_last, args.shuffle
        if index is not None:
            self.check_shard_training(args, data_dir)
            items = self.shard_items(index, args, True, labels=labels, teacher=teacher)
            dataset = ShardTrainDataset(items, batch_size, seed, rank, world_size, drop_last, shuffle,
                                        loaders.shuffle_size(args), self.train_chunk(args))
            return loaders.make_loader(dataset, None, dataloader_args)
        dataset = self.dataset(data_dir, utts, args, True, embedding_scps, len(spk2id), labels=labels,
                               teacher=teacher)
        dataset = self.filtered(dataset, args, utt2spk_path)
        sampler = SeededBatchSampler(
            len(dataset), batch_size, seed, rank, world_size, drop_last=drop_last, shuffle=shuffle,
            num_frms=self.train_chunk(args), num_samples=loaders.epoch_samples(len(dataset), args))
        return loaders.make_loader(dataset, sampler, dataloader_args)

    def eval_loader(self, data_dir: str, args: Any, dataloader_args: Any,
                    embedding_scps: Mapping[str, str] | None = None) -> DataLoader:
        """Evaluation loader over data_dir's utterances: batches {"keys", "inputs"} (see eval_batch_sampler)."""
        from wespeaker_avkd.data import loaders
        from wespeaker_avkd.data.shards import ShardEvalDataset, load_shard_index

        kind, path = self.input_source(data_dir, args)
        if kind == "shard":
            dataset: KeyedDataset = ShardEvalDataset(self.shard_items(load_shard_index(path), args, False))
        else:
            dataset = self.dataset(data_dir, self.eval_utts(data_dir, args), args, False, embedding_scps)
        return loaders.make_loader(dataset, self.eval_batch_sampler(dataset, dataloader_args.batch_size),
                                   dataloader_args)

    # -------------------------------------------------------------------- models
    def embed(self, net: torch.nn.Module, inputs: Any, device: torch.device) -> torch.Tensor:
        """Eval-loader inputs -> (B, D) float embeddings; a list (items of different shapes) one at a time."""
        import torch

        if isinstance(inputs, list):
            return torch.cat([self.embed(net, x.unsqueeze(0), device) for x in inputs])
        inputs = inputs.to(device)
        with net.trunk_precision(device.type):
            return self.embed_tensor(net, inputs).float()

    def embed_tensor(self, net: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """One batch tensor on its device -> (B, D), under the trunk's precision (see embed)."""
        return net.embed(inputs)

    def export_spec(self, model_args: Mapping[str, Any], args: Any, encoder: torch.nn.Module) -> dict[str, Any]:
        """Input shape and preprocessing of a stand-alone exported model (bin.export's sidecar)."""
        raise ConfigError(f"modality {self.name!r} cannot be exported: its inputs are other models' embeddings")

    def example_input(self, spec: Mapping[str, Any], batch: int, generator: torch.Generator) -> torch.Tensor:
        """A random input of the exported shape."""
        import torch

        return torch.randn(batch, *spec["input_shape"][1:], generator=generator)

    def __repr__(self) -> str:
        return f"<system kind {self.name}>"


KINDS: dict[str, SystemKind] = {}


def register_kind(kind: SystemKind) -> SystemKind:
    """Add a kind to KINDS under its name (a duplicate name is an error)."""
    if kind.name in KINDS:
        raise ValueError(f"system kind {kind.name!r} registered twice")
    KINDS[kind.name] = kind
    return kind


def kind_of(modality: str) -> SystemKind:
    """The SystemKind a config's `modality` names; an unknown name is a ConfigError listing the known ones."""
    try:
        return KINDS[modality]
    except (KeyError, TypeError):
        raise ConfigError(f"modality must be one of {', '.join(sorted(KINDS))}, got {modality!r}") from None


def embedding_tables(data_dir: str, embedding_scps: Mapping[str, str] | None, utts: list[str],
                     names: tuple[str, ...]) -> dict[str, Any]:
    """{name: (N, D) rows of embedding_scps[name] for utts}: the inputs of a system that reads embeddings."""
    from wespeaker_avkd.data.datasets import load_embedding_table, stack_embeddings

    if not embedding_scps or not set(names) <= set(embedding_scps):
        raise ConfigError(f"a loader of {data_dir} needs embedding_scps for {', '.join(names)}")
    return {m: stack_embeddings(load_embedding_table(embedding_scps[m]), utts, m, embedding_scps[m]) for m in names}


def utterances_of(path: str) -> list[str]:
    """Sorted keys of a one-value table (utt2spk, wav.scp, feats.scp)."""
    from wespeaker_avkd.data.kaldi_dir import read_table

    return sorted(read_table(path))
