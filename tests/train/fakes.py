"""Test-only stand-ins: a tiny registered model and an in-memory loader the trainer receives as a collaborator."""
from __future__ import annotations

import torch
import torch.nn as nn

from wespeaker_avkd.registry import MODELS
from wespeaker_avkd.train.trainer import TrainLoaders

TEST_MODEL = "TinyTestNet"


if TEST_MODEL not in MODELS._classes:  # registered once per process
    @MODELS.register(TEST_MODEL)
    class TinyTestNet(nn.Module):
        """(B, T, F) -> (B, embed_dim): mean over time, a linear layer with dropout (exercises the RNG)."""

        def __init__(self, feat_dim: int = 6, embed_dim: int = 8) -> None:
            super().__init__()
            self.embed_dim = embed_dim
            self.drop = nn.Dropout(0.2)
            self.fc = nn.Linear(feat_dim, embed_dim)
            self.bn = nn.BatchNorm1d(embed_dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn(self.fc(self.drop(x.mean(1))))


class FakeLoader:
    """Batches of random (B, T, F) features, shuffled by (seed, epoch), optional teacher embeddings."""

    def __init__(self, spk2id, seed, batch_size=8, num_utts=48, feat_dim=6, teacher_dim=None, rank=0, world=1):
        gen = torch.Generator().manual_seed(1234)
        self.labels = torch.arange(num_utts) % len(spk2id)
        centres = torch.randn(len(spk2id), feat_dim, generator=gen)
        self.feats = centres[self.labels].unsqueeze(1) + 0.5 * torch.randn(num_utts, 5, feat_dim, generator=gen)
        self.teacher = torch.randn(num_utts, teacher_dim, generator=gen) if teacher_dim else None
        self.keys = [f"utt{i}" for i in range(num_utts)]
        self.seed, self.epoch, self.batch_size, self.rank, self.world = seed, 0, batch_size, rank, world

    def __len__(self):
        return len(self.keys) // self.world // self.batch_size

    def __iter__(self):
        order = torch.randperm(len(self.keys), generator=torch.Generator().manual_seed(self.seed * 1000 + self.epoch))
        order = order[self.rank::self.world]
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            batch = {"keys": [self.keys[i] for i in idx], "inputs": self.feats[idx], "labels": self.labels[idx]}
            if self.teacher is not None:
                batch["teacher_emb"] = self.teacher[idx]
            yield batch


def fake_loaders(teacher_dim=None):
    """The trainer's loader collaborator over FakeLoader (teacher embeddings of teacher_dim when the trainer asks
    for a teacher): pass it as run_training(..., loaders=fake_loaders())."""
    def build_train_loader(kind, data_dir, spk2id, dataset_args, dataloader_args, seed, rank=0, world_size=1,
                           teacher_scp=None, embedding_scps=None):
        return FakeLoader(spk2id, seed, dataloader_args.batch_size,
                          teacher_dim=teacher_dim if teacher_scp else None, rank=rank, world=world_size)

    def set_loader_epoch(loader, epoch):
        loader.epoch = epoch

    return TrainLoaders(build=build_train_loader, set_epoch=set_loader_epoch)


def crash_in_epoch(monkeypatch, epoch, batch):
    """Make every FakeLoader raise KeyboardInterrupt at batch `batch` of epoch `epoch` (a simulated crash, undone
    at the test's end); returns a function that undoes it at once."""
    original_iter = FakeLoader.__iter__

    def dies(self):
        for i, item in enumerate(original_iter(self)):
            if self.epoch == epoch and i == batch:
                raise KeyboardInterrupt(f"simulated crash in epoch {epoch}")
            yield item

    monkeypatch.setattr(FakeLoader, "__iter__", dies)
    return lambda: monkeypatch.setattr(FakeLoader, "__iter__", original_iter)


def write_data_dir(path, num_spk=4, num_utts=48):
    """A data dir with just utt2spk (what the trainer reads itself)."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "utt2spk", "w") as f:
        for i in range(num_utts):
            f.write(f"utt{i} spk{i % num_spk}\n")
    return str(path)


def tiny_config(data_dir, **extra):
    """A complete trainer config around TinyTestNet."""
    cfg = {
        "modality": "audio", "seed": 7, "num_epochs": 3, "num_avg": 2, "log_batch_interval": 2,
        "train_data": data_dir, "tensorboard": True,
        "dataloader_args": {"batch_size": 8}, "dataset_args": {},
        "model": TEST_MODEL, "model_args": {"feat_dim": 6, "embed_dim": 8},
        "projection_args": {"project_type": "arc_margin", "scale": 16.0, "easy_margin": False},
        "margin_update": {"initial_margin": 0.0, "final_margin": 0.2, "increase_start_epoch": 1,
                          "fix_start_epoch": 3, "increase_type": "exp"},
        "optimizer": "SGD", "optimizer_args": {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
        "scheduler": "ExponentialDecrease",
        "scheduler_args": {"initial_lr": 0.1, "final_lr": 0.01, "warm_up_epoch": 1, "warm_from_zero": True},
    }
    cfg.update(extra)
    return cfg
