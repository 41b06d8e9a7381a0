"""AAM margin warm-up with WeSpeaker's MarginScheduler semantics (margin ramps from initial to final)."""
from __future__ import annotations

import math
from typing import Any

from wespeaker_avkd.utils.schema import ConfigError

# WeSpeaker's exponential ramp goes from 1 to this value; the ratio 1 - that is 0.999 at the ramp's end.
_EXP_RAMP_FINAL = 1e-3


class MarginScheduler:
    """Per-iteration margin schedule for a projection with `.update(margin)` and `.margin`.

    Epochs are counted from 1, as in WeSpeaker: iteration i of epoch e (both from 0 / 1) is
    (e - 1) * epoch_iter + i. Before (increase_start_epoch - 1) * epoch_iter the margin is initial_margin;
    up to (fix_start_epoch - 1) * epoch_iter it rises, for increase_type "exp" as
    m0 + (m1 - m0) * (1 - exp(k / K * ln(1e-3 / (1 + 1e-6)))) (k iterations into a K-iteration ramp;
    0.999 of the way at its end), for "linear" as m0 + (m1 - m0) * k / K; from then on it is final_margin.
    """

    def __init__(self, projection: Any, epoch_iter: int, increase_start_epoch: int, fix_start_epoch: int,
                 initial_margin: float, final_margin: float, increase_type: str = "exp",
                 update_margin: bool = True) -> None:
        """`projection` (or a model with a `.projection`) gets `.update(margin)`; sets initial_margin now."""
        if increase_type not in ("exp", "linear"):
            raise ConfigError(f"margin_update.increase_type must be 'exp' or 'linear', got {increase_type!r}")
        if fix_start_epoch < increase_start_epoch:
            raise ConfigError(f"margin_update: fix_start_epoch ({fix_start_epoch}) must be >= "
                              f"increase_start_epoch ({increase_start_epoch})")
        self.projection = getattr(projection, "projection", projection)
        self.increase_start_iter = (increase_start_epoch - 1) * epoch_iter
        self.fix_start_iter = (fix_start_epoch - 1) * epoch_iter
        self.increase_iter = self.fix_start_iter - self.increase_start_iter
        self.initial_margin = float(initial_margin)
        self.final_margin = float(final_margin)
        self.increase_type = increase_type
        self.update_margin = update_margin and hasattr(self.projection, "update")
        self.current_iter = 0
        self.fix_already = False
        if hasattr(self.projection, "update"):
            self.projection.update(margin=self.initial_margin)

    def margin_at(self, current_iter: int) -> float:
        """The margin this schedule gives at global iteration `current_iter` (pure; no side effect)."""
        if current_iter >= self.fix_start_iter:
            return self.final_margin
        if current_iter < self.increase_start_iter:
            return self.initial_margin
        progress = (current_iter - self.increase_start_iter) / self.increase_iter
        if self.increase_type == "exp":
            ratio = 1.0 - math.exp(progress * math.log(_EXP_RAMP_FINAL / (1.0 + 1e-6)))
        else:
            ratio = progress
        return self.initial_margin + (self.final_margin - self.initial_margin) * ratio

    def step(self, current_iter: int | None = None) -> None:
        """Set the margin for `current_iter` (default: one past the last step) on the projection."""
        if not self.update_margin or self.fix_already:
            return
        if current_iter is not None:
            self.current_iter = current_iter
        if self.current_iter >= self.increase_start_iter:
            self.projection.update(margin=self.margin_at(self.current_iter))
            self.fix_already = self.current_iter >= self.fix_start_iter
        self.current_iter += 1

    def get_margin(self) -> float:
        """The projection's current margin (0.0 if it has none)."""
        return float(getattr(self.projection, "margin", 0.0))
