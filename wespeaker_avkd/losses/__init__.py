"""Knowledge-distillation losses and the Eq. 7 objective; importing registers them."""
from wespeaker_avkd.losses import cos, kl, mmd  # noqa: F401  (register "cos", "kl", "mmd")
from wespeaker_avkd.losses.kd_objective import KDObjective, build_kd_objective

__all__ = ["KDObjective", "build_kd_objective"]
