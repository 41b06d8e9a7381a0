"""The recipe's settings as run.sh hands them to the planner, and what they imply for every job's command line.

run.sh checks each option's form (local/settings.sh) and fills the defaults that depend on other options
(conf set, mean part, weights file); the planner takes them all as given, holds no default of its own, and
derives here the parts every system embeds, the score folders and the per-job flags (device, torch threads,
progress bars, the trainer's launcher).
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from wespeaker_avkd.kinds import kind_of
from wespeaker_avkd.kinds.fusion import INPUT_KINDS
from wespeaker_avkd.utils.naming import seed_dir_name

TRAIN = "wespeaker_avkd.bin.train"
# Recipe-relative files every conf set shares (run.sh runs from egs/voxceleb/v_kd and checks they exist).
SHARED_KD = "conf/kd.yaml"           # the students' kd block
AUG = "conf/aug.yaml"                # WeSpeaker's augmentation, merged over the audio systems with --aug true
TUNING_WEIGHTS = "conf/kd_weights.yaml"  # the weights table the tuning runs start from (one weight overridden)
SINGLE_LOSSES = ("COS", "KL", "MMD")  # the KD losses tuned one at a time, in run order
PAIR = INPUT_KINDS                    # the baselines, in run order: the teacher's two inputs


@dataclasses.dataclass(frozen=True)
class RecipeSettings:
    """run.sh's checked options (lists as tuples, flags as bools, numbers as written)."""

    exp: str
    data: str
    conf_dir: str
    config: str                 # "" = no extra yaml over every training config
    seeds: tuple[str, ...]
    modalities: tuple[str, ...]
    combos: tuple[str, ...]
    grid: tuple[str, ...]
    trials: tuple[str, ...]
    mean_part: str              # the part whose embeddings give every system's mean (train or train_mean)
    score_norm: str             # none | asnorm
    top_n: str
    kd_weights: str
    data_type: str              # raw | shard
    aug: bool
    gpus: str                   # "" = CPU, else comma-separated GPU ids
    jobs: int                   # jobs side by side (--nj on CPU, 1 with GPUs)
    nnodes: int
    node_rank: str
    master_addr: str
    master_port: str
    overwrite: bool
    progress: bool
    tune: bool = False          # stage 6 tunes the KD weights on dev at tune_seed
    tune_seed: str = ""         # the tuning's own seed, disjoint from the eval seeds
    command: str = ""           # run.sh's command line as typed (recorded by the report)
    # {modality: {loss: weights}} stage 6 trains in its current round (bin.plan grows the grid); None: `grid`
    tune_weights: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None

    @property
    def num_gpus(self) -> int:
        """How many GPU ids --gpus lists."""
        return len(self.gpus.split(",")) if self.gpus else 0

    @property
    def train_seeds(self) -> tuple[str, ...]:
        """Seeds of the baselines and the teacher (stages 3-5): the tuning seed first with --tune true (its
        students are tuned on dev against them), then the eval seeds."""
        return (self.tune_seed, *self.seeds) if self.tune else self.seeds

    def parts_of(self, seed: str) -> tuple[str, ...]:
        """Parts a baseline or teacher of `seed` embeds: the tuning seed's systems never touch eval."""
        parts = self.system_parts
        return tuple(p for p in parts if p != "eval") if self.tune and seed == self.tune_seed else parts

    def weights_of(self, modality: str, loss: str) -> tuple[str, ...]:
        """The weights stage 6 trains for one modality and single loss in the current round."""
        return tuple((self.tune_weights or {}).get(modality, {}).get(loss, self.grid))

    @property
    def system_parts(self) -> tuple[str, ...]:
        """Parts the baselines and the teacher embed: train (the teacher trains on it), the mean part, dev, eval."""
        return ("train", "dev", "eval") if self.mean_part == "train" else ("train", self.mean_part, "dev", "eval")

    @property
    def score_dirs(self) -> tuple[str, ...]:
        """Score folders of every system: scores, and scores_asnorm with --score_norm asnorm."""
        return ("scores", "scores_asnorm") if self.score_norm == "asnorm" else ("scores",)

    def system_dir(self, seed: str, system: str) -> str:
        """exp/seed<seed>/<system>, joined as the shell would (an --exp ending in / keeps it)."""
        return f"{self.exp}/{seed_dir_name(seed)}/{system}"


def torch_threads(settings: RecipeSettings, side_by_side: bool) -> int:
    """Torch threads of one CPU job: the usable cores, shared out when jobs run side by side."""
    cores = len(os.sched_getaffinity(0))
    return max(1, cores // settings.jobs) if side_by_side else cores


def device_flags(settings: RecipeSettings, side_by_side: bool) -> list[str]:
    """--device (and on CPU --num_threads) of a training or extraction job."""
    if settings.num_gpus:
        return ["--device", "cuda"]
    return ["--device", "cpu", "--num_threads", str(torch_threads(settings, side_by_side))]


def progress_flags(settings: RecipeSettings, side_by_side: bool) -> list[str]:
    """--no_progress unless bars are wanted and the job runs alone (bars of jobs side by side would mix)."""
    return [] if settings.progress and not side_by_side else ["--no_progress"]


def trainer(settings: RecipeSettings) -> list[str]:
    """The trainer's command up to its configs: python on CPU or one GPU, torchrun with several GPUs or nodes."""
    side_by_side = settings.jobs > 1
    overwrite = ["--overwrite"] if settings.overwrite else []
    if settings.num_gpus > 1 or settings.nnodes > 1:
        return ["env", f"CUDA_VISIBLE_DEVICES={settings.gpus}", "torchrun", f"--nnodes={settings.nnodes}",
                f"--node_rank={settings.node_rank}", f"--nproc_per_node={settings.num_gpus}",
                f"--master_addr={settings.master_addr}", f"--master_port={settings.master_port}", "-m", TRAIN,
                "--device", "cuda", *progress_flags(settings, side_by_side), *overwrite]
    gpu_env = ["env", f"CUDA_VISIBLE_DEVICES={settings.gpus}"] if settings.num_gpus == 1 else []
    return [*gpu_env, "python3", "-m", TRAIN, *device_flags(settings, side_by_side),
            *progress_flags(settings, side_by_side), *overwrite]


def extractor(settings: RecipeSettings, side_by_side: bool) -> list[str]:
    """bin.extract's flags after --jobs FILE: device, threads, progress, --force with --overwrite true."""
    force = ["--force"] if settings.overwrite else []
    return [*device_flags(settings, side_by_side), *progress_flags(settings, side_by_side), *force]


def config_flags(settings: RecipeSettings) -> list[str]:
    """--config of the extra yaml merged over every training config (none when --config is empty)."""
    return ["--config", settings.config] if settings.config else []


def modality_configs(settings: RecipeSettings, modality: str, kd: bool) -> list[str]:
    """A single-modality system's configs, in merge order: its conf set's yaml, the augmentation (audio with
    --aug true), a student's kd configs, the extra --config, the shard override (--data_type shard)."""
    flags = ["--config", f"{settings.conf_dir}/{modality}.yaml"]
    if settings.aug and kind_of(modality).takes_fbank:  # WeSpeaker's audio pipeline
        flags += ["--config", AUG, "--noise_data", f"{settings.data}/musan/wav.scp",
                  "--reverb_data", f"{settings.data}/rirs/wav.scp"]
    if kd:
        flags += kd_configs(settings)
    flags += config_flags(settings)
    if settings.data_type == "shard":
        flags.append("+dataset_args.data_type=shard")
    return flags


def kd_configs(settings: RecipeSettings) -> list[str]:
    """A student's kd configs: conf/kd.yaml (every conf set), then the set's own kd.yaml when it has one."""
    own = f"{settings.conf_dir}/kd.yaml"
    return ["--config", SHARED_KD] + (["--config", own] if os.path.isfile(own) else [])
