"""The learning-rate schedule: one-cycle (linear warm-up, cosine annealing) or constant,
over the steps or over the time budget, whichever runs out first."""

from __future__ import annotations

import math

__all__ = ["SCHEDULES", "progress", "lr_factor"]

SCHEDULES = ("onecycle", "constant")


def progress(step: int, total_steps: int, elapsed_s: float | None = None, time_limit_min: float | None = None) -> float:
    """Share of the schedule done: by steps, or by training time when that runs out first
    (a time-limited run then still warms up and anneals fully on a slow machine)."""
    p = step / total_steps
    if time_limit_min and elapsed_s is not None:
        p = max(p, elapsed_s / (60 * time_limit_min))
    return min(p, 1.0)


def lr_factor(p: float, schedule: str, warmup: float, total_steps: int) -> float:
    """The factor on the base lr at progress ``p``. One-cycle: linear warm-up from lr/25 over
    the ``warmup`` share, cosine down to lr/250000; constant: 1."""
    if schedule == "constant":
        return 1.0
    w = min(max(warmup, 2.0 / total_steps), 0.5)
    lo, end = 1 / 25, 1 / 25e4
    if p < w:
        return lo + (1 - lo) * p / w
    return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * (p - w) / (1 - w)))
