"""Learning-rate schedules: linear warm-up, then constant (Lyra: 100 warm-up steps) or cosine decay.

Each schedule is a multiplier ``f(step)`` of the base learning rate, for ``torch.optim.lr_scheduler.LambdaLR``
(``step`` counts optimiser steps from 0). Warm-up rises linearly from ``1/(warmup+1)`` to 1 over the
first ``warmup`` steps, so the very first update is small but not zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from lyra.errors import ConfigError

SCHEDULES = ("constant", "cosine")


def lr_multiplier(schedule: str, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """The multiplier function of ``schedule`` (``constant`` or ``cosine``).

    ``cosine`` decays from 1 after warm-up to ``min_ratio`` at ``total_steps`` (and stays there).
    """
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown learning-rate schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if warmup_steps < 0 or total_steps < 0:
        raise ConfigError("warm-up and total steps must be non-negative")
    if not 0.0 <= min_ratio <= 1.0:
        raise ConfigError(f"min_ratio must be in [0, 1], got {min_ratio}")

    def warm(step: int) -> float:
        return (step + 1) / (warmup_steps + 1) if step < warmup_steps else 1.0

    if schedule == "constant":
        return warm

    def cosine(step: int) -> float:
        if step < warmup_steps:
            return warm(step)
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return cosine
