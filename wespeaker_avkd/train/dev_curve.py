"""The learning curve on dev: after an epoch, the dev EER of the epoch's model beside the epoch's training means.

A training config's `dev_eval` section (config/sections.py:DevEval) names a dev data dir and its trial lists.
After every `every`-th epoch and the last, rank 0 embeds the dev part with the model as it is (eval mode, the
kind's eval loader, as extraction does), subtracts the mean of the dev embeddings, cosine-scores each list and
appends one row to exp_dir/learning_curve.tsv: the epoch, the training means the trainer logged (loss, aam, acc,
KD terms, lr, margin) and `dev_eer_<list>` in %. Rows of epochs not evaluated carry "-" there. The file is
rewritten atomically; a resumed run keeps the rows of the epochs already trained. Evaluation draws no random
number (the generators are saved and restored around it), so a training with and without dev_eval is the same.
The report reads the file (analysis/learning_curves.py): a curve is "flat" when its last epochs stay within the
dev list's noise.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from wespeaker_avkd.checkpoint.files import capture_rng_state, restore_rng_state
from wespeaker_avkd.config.sections import DevEval
from wespeaker_avkd.config.train_config import TrainConfig
from wespeaker_avkd.inference.extract import embed_loader_batch
from wespeaker_avkd.kinds import SystemKind
from wespeaker_avkd.scoring.metrics import compute_metrics
from wespeaker_avkd.scoring.trials import score_trials
from wespeaker_avkd.utils.curve_file import curve_path, eer_column, read_curve, write_curve


class DevCurve:
    """Dev EERs of a model during training, and the curve file (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, kind: SystemKind, exp_dir: str,
                 embedding_scps: Mapping[str, str] | None = None) -> None:
        assert cfg.dev_eval is not None
        self.spec: DevEval = cfg.dev_eval
        self.num_epochs = cfg.num_epochs
        self.kind = kind
        self.path = curve_path(exp_dir)
        self.trial_paths = [os.path.join(self.spec.data, "trials", name) for name in self.spec.trials]
        missing = [p for p in self.trial_paths if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(f"dev_eval: no trial list {missing[0]} (dev_eval.trials names lists under "
                                    f"{self.spec.data}/trials/)")
        loader_args = cfg.eval_dataloader_args or cfg.dataloader_args  # extraction's rule (config/model_config.py)
        self.loader = kind.eval_loader(self.spec.data, cfg.dataset_args, loader_args,
                                       embedding_scps=dict(embedding_scps) if embedding_scps else None)

    def due(self, epoch: int) -> bool:
        """Whether the dev EER is measured after this epoch (every `every`-th and the last)."""
        return epoch % self.spec.every == 0 or epoch == self.num_epochs

    @torch.inference_mode()
    def _embeddings(self, net: torch.nn.Module, device: torch.device) -> tuple[list[str], np.ndarray]:
        """(keys, (N, D) float32) of the dev part under the model as it is."""
        keys: list[str] = []
        rows: list[np.ndarray] = []
        for batch in self.loader:
            rows.append(embed_loader_batch(net, self.kind, batch, device, self.spec.data))
            keys += list(batch["keys"])
        return keys, np.ascontiguousarray(np.concatenate(rows), dtype=np.float32)

    def dev_eers(self, net: torch.nn.Module, device: torch.device) -> dict[str, float]:
        """{dev_eer_<list>: EER in %} of the model now; the model's train/eval mode and every random generator
        are as they were afterwards."""
        was_training = net.training
        rng = capture_rng_state()
        net.eval()
        try:
            keys, emb = self._embeddings(net, device)
        finally:
            net.train(was_training)
            restore_rng_state(rng)
        mean = emb.mean(axis=0)
        out = {}
        for name, path in zip(self.spec.trials, self.trial_paths):
            scored = score_trials(path, keys, emb, mean)
            out[eer_column(name)] = 100.0 * compute_metrics(scored.scores, scored.labels).eer
        return out

    def record(self, epoch: int, train_means: Mapping[str, float], dev: Mapping[str, float] | None) -> None:
        """Rewrite the curve file with the rows of earlier epochs and this epoch's row (training means + dev
        EERs, '-' where not measured)."""
        kept = [row for row in read_curve(self.path) if int(row["epoch"]) < epoch]
        row: dict[str, Any] = {"epoch": epoch, **{k: float(v) for k, v in train_means.items()}}
        for name in self.spec.trials:
            row[eer_column(name)] = None if dev is None else dev[eer_column(name)]
        write_curve(self.path, [*kept, row])
