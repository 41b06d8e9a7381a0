"""The training loop shared by the baselines, the fusion teacher and the KD students.

One epoch = one pass of the train loader; before every iteration the LR schedule and the AAM margin schedule
are set for the global iteration (epoch - 1) * epoch_iter + i (epochs count from 1, as in WeSpeaker). After
every epoch rank 0 writes models/model_<epoch>.pt atomically; a new run of the same command resumes from the
newest one with model, head, KD adapter, optimizer, schedule and RNG states, so it continues exactly.
Setup reads every input before it writes or moves anything; what a rerun may reuse is decided by
train/finished.py (config, speakers, training-data content stamp, num_epochs / num_avg).
"""
from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn as nn

from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.config.serialize import save_train_config
from wespeaker_avkd.config.train_config import ConfigError, KDConfig, TrainConfig, parse_config
from wespeaker_avkd.config.wespeaker import write_wespeaker_config
from wespeaker_avkd.data.kaldi_dir import make_spk2id, read_spk2id, read_table, write_spk2id
from wespeaker_avkd.data.loaders import set_loader_epoch
from wespeaker_avkd.kinds import SystemKind, kind_of
from wespeaker_avkd.models.embedding_net import trunk_autocast_dtype
from wespeaker_avkd.systems.builders import build_kd, build_net, load_model_init, model_embed_dim
from wespeaker_avkd.train import finished, resume
from wespeaker_avkd.train.dev_curve import DevCurve
from wespeaker_avkd.train.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    cleanup,
    init_distributed,
)
from wespeaker_avkd.train.exp_lock import ExpDirLock
from wespeaker_avkd.train.optim import build_optimizer, build_scheduler, margin_scheduler
from wespeaker_avkd.train.step import training_step
from wespeaker_avkd.utils.fingerprint import read_stamp, write_stamp
from wespeaker_avkd.utils.runtime import seed_everything, set_cpu_threads, setup_logging

logger = logging.getLogger("wespeaker_avkd.train")


@dataclasses.dataclass(frozen=True)
class TrainLoaders:
    """Where the trainer's batches come from (the real Kaldi data-dir loaders by default; tests pass fakes).

    build(kind, data_dir, spk2id, dataset_args, dataloader_args, seed, rank=, world_size=, teacher_scp=,
    embedding_scps=) returns a sized iterable of batches {"inputs", "labels", "teacher_emb" with teacher_scp}
    (kinds/base.py:SystemKind.train_loader); dataset_args and dataloader_args are the config's typed sections
    (data/dataset_args.py: the kind's dataset section, DataLoaderArgs), every default filled in;
    set_epoch(loader, epoch) is called before each pass over it.
    """

    build: Callable[..., Any] = SystemKind.train_loader
    set_epoch: Callable[[Any, int], None] = set_loader_epoch


# (kd section or None, student embedding dim) -> (KD objective or None, teacher xvector.scp or None)
KDBuilder = Callable[[KDConfig | None, int], tuple[nn.Module | None, str | None]]


class Trainer:
    """Trains one system described by a config into exp_dir (see the module docstring).

    The config comes parsed (a TrainConfig; a mapping is parsed here with config.train_config.parse_config);
    exp_dir/config.yaml records it with every default, and a resumed run is compared with it key by key.
    Its collaborators come in: `loaders` (default: the real data-dir loaders) and `kd_builder` (default:
    builders.build_kd, which reads the teacher's kd_export).
    """

    def __init__(self, cfg: TrainConfig | Mapping[str, Any], exp_dir: str, device: str = "auto",
                 num_threads: int | None = None, overwrite: bool = False, progress: bool = True,
                 loaders: TrainLoaders | None = None, kd_builder: KDBuilder = build_kd) -> None:
        self.cfg = cfg if isinstance(cfg, TrainConfig) else parse_config(cfg)
        self._saved_config_current = False  # exp_dir/config.yaml already records self.cfg (left as it is)
        self.loaders = loaders if loaders is not None else TrainLoaders()
        self.kd_builder = kd_builder
        self.exp_dir = exp_dir
        self.model_dir = os.path.join(exp_dir, "models")
        self.progress = progress
        self._set_aside: dict[str, str] = {}  # models/ and train_state/ -> their old copies during --overwrite
        self.info: DistInfo = init_distributed(device)
        # One training per exp dir: rank 0 owns exp_dir/.lock from before its first write until close().
        self._lock: ExpDirLock | None = ExpDirLock(exp_dir) if self.info.is_main else None
        takeover = self._lock.acquire() if self._lock is not None else None
        if self._lock is not None:
            atexit.register(self._lock.release)
        try:
            setup_logging(exp_dir, self.info.is_main)
            if takeover:
                logger.warning(takeover)
            set_cpu_threads(num_threads, share=int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
            self._build()  # reads only: every input is validated before anything is moved or written
            if overwrite and self.info.is_main:  # deleted only once the new training completed (train)
                for results in (self.model_dir, ckpt.train_state_dir(self.model_dir)):
                    moved = finished.set_aside(results)
                    if moved is not None:
                        self._set_aside[results] = moved
            barrier(self.info)
            self._check_resume_config()
            self._maybe_resume()
            if self.info.is_main:
                self._write_run_files()
        except BaseException:
            self._restore_set_aside()
            self.close()
            raise

    def _restore_set_aside(self) -> None:
        """After a failed setup, put the results set aside by --overwrite back (when nothing replaced them)."""
        for results, moved in list(self._set_aside.items()):
            if not os.path.exists(results):
                os.rename(moved, results)
            del self._set_aside[results]

    def close(self) -> None:
        """Release the exp dir (rank 0's lock); idempotent."""
        if self._lock is not None:
            self._lock.release()

    # ---------------------------------------------------------------- setup
    def _check_resume_config(self) -> None:
        """Refuse, before anything is written, to continue or keep checkpoints made from other inputs: another
        config (train/resume.py), another speaker list, other training data content (train/finished.py), a
        num_epochs or num_avg that could not act, or a batch setting changed on a finished run."""
        saved = resume.saved_config_path(self.exp_dir)
        found = ckpt.list_checkpoints(self.model_dir)
        if not found:
            return
        if os.path.isfile(saved):
            self._saved_config_current = resume.check_saved_config(saved, self.model_dir, self.cfg, max(found))
        self._check_speakers()
        finished.check_same_inputs(self.exp_dir, self.cfg.train_data, self._training_inputs)
        finished.check_epochs(self.model_dir, self.cfg.num_epochs, self.cfg.num_avg, saved)

    def _check_speakers(self) -> None:
        """Refuse checkpoints whose AAM head was trained on another speaker list than the data's now."""
        path = os.path.join(self.exp_dir, "spk2id")
        if not os.path.isfile(path):
            return
        old = read_spk2id(path)
        if old != self.spk2id:
            gone, new = sorted(set(old) - set(self.spk2id)), sorted(set(self.spk2id) - set(old))
            raise ConfigError(f"{path}: the checkpoints in {self.model_dir} were trained on {len(old)} speakers, "
                              f"{self.cfg.train_data}/utt2spk now has {len(self.spk2id)} ({len(gone)} gone, e.g. "
                              f"{gone[:3]}; {len(new)} new, e.g. {new[:3]}); use another --exp_dir or pass "
                              f"--overwrite to retrain")

    def _write_run_files(self) -> None:
        """Rank 0, after every check: the run's config.yaml (unless it records this config already, as an older
        one without every default may: rewriting it would change the extraction stamps), spk2id and the
        training-data stamp."""
        if not self._saved_config_current:
            save_train_config(self.cfg, resume.saved_config_path(self.exp_dir))
        write_spk2id(os.path.join(self.exp_dir, "spk2id"), self.spk2id)
        write_stamp(finished.train_stamp_path(self.exp_dir), self._training_inputs())

    def _training_inputs(self) -> dict[str, Any]:
        """The content stamp of the training data (finished.training_inputs), computed once and only when a
        check or the stamp needs it: it stats every file the tables list, which a fresh non-main rank never needs."""
        if self._inputs_stamp is None:
            self._inputs_stamp = finished.training_inputs(self.cfg.train_data, self._listed_files(),
                                                          self._teacher_scp)
        return self._inputs_stamp

    def _listed_files(self) -> list[str] | None:
        """The files the training data's tables list (for the content stamp); None when they cannot be listed
        (e.g. a test's fake loader over a dir holding only utt2spk)."""
        try:
            return self.kind.input_files(self.cfg.train_data, self.cfg.dataset_args, self._embedding_scps("train"))
        except (OSError, ValueError, KeyError):
            return None

    def _build(self) -> None:
        """Data, model, head, KD objective, optimizer and schedules; resume state if a checkpoint exists."""
        cfg, info = self.cfg, self.info
        seed_everything(cfg.seed)
        self.kind = kind_of(cfg.modality)
        self.spk2id = make_spk2id(sorted(set(read_table(os.path.join(cfg.train_data, "utt2spk")).values())))

        self.net = build_net(cfg, len(self.spk2id))
        encoder = self.net.encoder
        embed_dim = model_embed_dim(cfg.model.args, encoder)
        if cfg.model_init:
            load_model_init(self.net, cfg.model_init, cfg.modality, cfg.model)
        self.kd, teacher_scp = self.kd_builder(cfg.kd, embed_dim)
        self._teacher_scp = teacher_scp
        self._inputs_stamp: dict[str, Any] | None = None  # training_inputs(), computed when first needed
        self._check_teacher_spk2id()
        self.net.to(info.device)
        if self.kd is not None:
            self.kd.to(info.device)
        self.num_params = sum(p.numel() for p in encoder.parameters())

        self.loader = self.loaders.build(
            self.kind, cfg.train_data, self.spk2id, cfg.dataset_args, cfg.dataloader_args, cfg.seed,
            rank=info.rank, world_size=info.world_size,
            teacher_scp=teacher_scp, embedding_scps=self._embedding_scps("train"))
        self.epoch_iter = len(self.loader)
        # the learning curve on dev (rank 0): its loader and trial lists checked now, before anything is written
        self.dev_curve = (DevCurve(cfg, self.kind, self.exp_dir, self._embedding_scps(
            os.path.basename(os.path.normpath(cfg.dev_eval.data)))) if cfg.dev_eval and info.is_main else None)
        if self.epoch_iter == 0:
            raise ConfigError(f"{cfg.train_data}: the train loader yields no batch (batch_size "
                              f"{cfg.dataloader_args.batch_size} larger than the data?)")

        if info.distributed:
            ddp_kwargs = {"device_ids": [info.device.index]} if info.device.type == "cuda" else {}
            self.ddp_net: nn.Module = nn.parallel.DistributedDataParallel(self.net, **ddp_kwargs)
        else:
            self.ddp_net = self.net
        self.kd_params = [p for p in (self.kd.parameters() if self.kd is not None else []) if p.requires_grad]
        self.optimizer = build_optimizer(cfg.optimizer.name, list(self.net.parameters()) + self.kd_params,
                                         cfg.optimizer.args, float(cfg.scheduler.args["initial_lr"]))
        self.num_epochs = cfg.num_epochs
        self.scheduler = build_scheduler(cfg.scheduler.name, self.optimizer, self.num_epochs, self.epoch_iter,
                                         cfg.scheduler.args)
        self.margin_scheduler = margin_scheduler(self.net.projection, self.epoch_iter, cfg)
        self.use_amp = cfg.amp and info.device.type == "cuda"
        self.net.trunk_autocast = trunk_autocast_dtype(cfg.amp, info.device.type)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.start_epoch, self.global_step = 1, 0
        self._resume_rng: Mapping[str, Any] | None = None

    def _embedding_scps(self, subset: str) -> dict[str, str] | None:
        """For a system that reads embeddings (the fusion teacher): {input kind: <its dir>/<subset>/xvector.scp}."""
        dirs = self.cfg.embedding_dirs
        if not self.kind.reads_embeddings or dirs is None:
            return None
        return self.kind.embedding_scps(dirs.audio, dirs.visual, subset)

    def _check_teacher_spk2id(self) -> None:
        """Warn when the teacher was trained on another speaker list (its W rows would mean other people)."""
        if self.cfg.kd is None:
            return
        path = os.path.join(self.cfg.kd.teacher_dir, "spk2id")
        if os.path.isfile(path) and read_spk2id(path) != self.spk2id:
            logger.warning("%s differs from the student's spk2id: the teacher was trained on another speaker "
                           "set; KL uses the teacher's classes, AAM the student's", path)

    def _maybe_resume(self) -> None:
        """Continue from the newest epoch with a model file and a training state, restoring every state."""
        if self.info.is_main:
            ckpt.migrate_train_states(self.model_dir)  # an exp dir of an earlier version: states out of models/
        barrier(self.info)
        epoch = ckpt.resume_point(self.model_dir)
        if epoch is None:
            if ckpt.list_checkpoints(self.model_dir):
                ckpt.load_model_state(ckpt.last_checkpoint(self.model_dir))  # an old-layout dir: say how to convert
                raise RuntimeError(f"{self.model_dir}: model files but no train_state_<N>.pt in "
                                   f"{ckpt.train_state_dir(self.model_dir)} to resume from; pass --overwrite to "
                                   f"start afresh")
            return
        path = ckpt.checkpoint_path(self.model_dir, epoch)
        ckpt.load_into_net(self.net, path, policy="strict")
        state_path = ckpt.train_state_path(self.model_dir, epoch)
        state = ckpt.load_checkpoint(state_path)
        self.start_epoch, self.global_step, self._resume_rng = resume.restore_train_state(self, state, state_path)
        logger.info("resuming from %s (epoch %d done, step %d)", path, state["epoch"], self.global_step)

    def _save(self, epoch: int) -> None:
        """Rank 0: write models/model_<epoch>.pt (flat, WeSpeaker's layout) and train_state/train_state_<epoch>.pt
        when the save policy asks for this epoch, then prune to the newest state + keep_checkpoints model files."""
        if not self.info.is_main:
            return
        cfg = self.cfg
        if not ckpt.should_save(epoch, self.num_epochs, cfg.save_epoch_interval, cfg.num_avg):
            return
        train_state = resume.capture_train_state(self, epoch)
        model_state = ckpt.flat_model_state(self.net.encoder.state_dict(), self.net.projection.state_dict())
        ckpt.save_epoch(self.model_dir, epoch, model_state, train_state)
        removed = ckpt.prune_checkpoints(self.model_dir, cfg.keep_checkpoints or cfg.num_avg)
        if removed:
            logger.info("pruned %s", ", ".join(os.path.basename(p) for p in removed))

    # ---------------------------------------------------------------- loop
    def _step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """One optimisation step on a loader batch (see training_step)."""
        return training_step(self.ddp_net, self.kd, self.optimizer, self.scaler, batch, self.info,
                             self.kd_params, self.use_amp, self.global_step)

    def train(self) -> None:
        """Run the remaining epochs, then average the last num_avg checkpoints into models/avg_model.pt."""
        cfg, info = self.cfg, self.info
        if self.start_epoch == 1:
            logger.info("training %s (%s, %.2f M params) on %s, world %d, %d iterations/epoch, %d epochs",
                        self.exp_dir, cfg.model.name, self.num_params / 1e6, info.device, info.world_size,
                        self.epoch_iter, self.num_epochs)
        writer = self._tensorboard()
        if self._resume_rng is not None:
            ckpt.restore_rng_state(self._resume_rng)
        for epoch in range(self.start_epoch, self.num_epochs + 1):
            start = time.time()
            sums = self._run_epoch(epoch, writer)
            means = {k: all_reduce_mean(v / self.epoch_iter, info) for k, v in sums.items()}
            logger.info("epoch %d done in %.1f s: %s", epoch, time.time() - start,
                        " ".join(f"{k} {v:.4g}" for k, v in means.items()))
            dev = self._dev_point(epoch, means)
            if writer is not None:
                for key, value in {**means, **dev}.items():
                    writer.add_scalar(f"epoch/{key}", value, epoch)
                writer.flush()
            self._save(epoch)
            barrier(info)
        if writer is not None:
            writer.close()
        if info.is_main:
            self.average()
            for moved in self._set_aside.values():  # the replacement is complete
                finished.discard(moved)
            self._set_aside = {}
        barrier(info)

    def _dev_point(self, epoch: int, means: Mapping[str, float]) -> dict[str, float]:
        """Rank 0 with dev_eval: the epoch's dev EERs (when due) logged and recorded with its training means in
        learning_curve.tsv; returns them ({} when not measured)."""
        if self.dev_curve is None:
            return {}
        dev = self.dev_curve.dev_eers(self.net, self.info.device) if self.dev_curve.due(epoch) else None
        if dev:
            logger.info("epoch %d dev EER %%: %s", epoch, " ".join(f"{k} {v:.2f}" for k, v in dev.items()))
        self.dev_curve.record(epoch, means, dev)
        return dev or {}

    def _run_epoch(self, epoch: int, writer: Any) -> dict[str, float]:
        """One pass of the train loader; before each iteration the LR and margin schedules are set for the global
        iteration. Returns the sum over the epoch of every logged value (losses, accuracy, lr, margin)."""
        self.loaders.set_epoch(self.loader, epoch)
        self.net.train()
        if self.kd is not None:
            self.kd.train()
        sums: dict[str, float] = defaultdict(float)
        bar = self._progress_bar(epoch)
        for i, batch in enumerate(self.loader):
            cur_iter = (epoch - 1) * self.epoch_iter + i
            lr = self.scheduler.step(cur_iter)
            self.margin_scheduler.step(cur_iter)
            values = self._step(batch)
            values.update(lr=lr, margin=self.margin_scheduler.get_margin())
            self.global_step += 1
            for key, value in values.items():
                sums[key] += value
            if writer is not None:
                for key, value in values.items():
                    writer.add_scalar(f"train/{key}", value, self.global_step)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{values['loss']:.3f}", acc=f"{values['acc']:.2f}", refresh=False)
            if (i + 1) % self.cfg.log_batch_interval == 0 or i + 1 == self.epoch_iter:
                logger.info("epoch %d batch %d/%d %s", epoch, i + 1, self.epoch_iter,
                            " ".join(f"{k} {v / (i + 1):.4g}" for k, v in sums.items()))
        if bar is not None:
            bar.close()
        return sums

    def average(self) -> None:
        """models/avg_model.pt from the last num_avg epoch checkpoints; kept only while its stamp (the averaged
        checkpoints' content + num_avg) matches, so another num_avg or a newer epoch re-averages. Beside it
        models/config.yaml: the run's config in WeSpeaker's key names (a pretrained-model dir, docs/wespeaker.md)."""
        avg_path = os.path.join(self.model_dir, "avg_model.pt")
        stamp = read_stamp(ckpt.average_stamp_path(avg_path))
        epochs = ckpt.average_last(self.model_dir, self.cfg.num_avg, avg_path, force=False)
        if stamp != read_stamp(ckpt.average_stamp_path(avg_path)):
            logger.info("averaged epochs %s into %s", epochs, avg_path)
        write_wespeaker_config(self.cfg, self.model_dir)  # unchanged content: the file is left untouched

    def _tensorboard(self):
        """SummaryWriter on exp_dir/tensorboard (rank 0), or None."""
        if not self.info.is_main or not self.cfg.tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(os.path.join(self.exp_dir, "tensorboard"), purge_step=self.global_step + 1)

    def _progress_bar(self, epoch: int):
        """A tqdm bar for one epoch on rank 0 (or None)."""
        if not (self.progress and self.info.is_main):
            return None
        from tqdm import tqdm

        return tqdm(total=self.epoch_iter, desc=f"{os.path.basename(self.exp_dir.rstrip('/'))} epoch {epoch}",
                    mininterval=1.0, leave=False, file=sys.stderr, dynamic_ncols=True)


def run_training(cfg: TrainConfig | Mapping[str, Any], exp_dir: str, **kwargs: Any) -> Trainer:
    """Build a Trainer (kwargs: device, num_threads, overwrite, progress, loaders, kd_builder) and train;
    returns it (for tests)."""
    trainer = Trainer(cfg, exp_dir, **kwargs)
    try:
        trainer.train()
    finally:
        trainer.close()
        cleanup(trainer.info)
    return trainer
