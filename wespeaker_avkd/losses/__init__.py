"""Knowledge-distillation losses and the Eq. 7 objective; importing registers them."""
from wespeaker_avkd.losses import cos, kd_objective, kl, mmd  # noqa: F401  (register "cos", "kl", "mmd")
