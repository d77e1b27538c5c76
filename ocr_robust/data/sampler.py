"""Hard-example sampling (METHODS.md section 1, S7).

Every line is visited at least once per epoch; on top of that, ``extra * N`` further draws
per epoch go to lines by difficulty, so hard lines (high recent loss, still misread) come
back more often than easy ones (read correctly at low loss). Difficulty is an exponential
moving average of each line's true-label loss, fed back by the Trainer after each step;
lines not yet seen count as average. Batches hold lines of similar width, as in
:class:`BucketBatchSampler`. Deterministic for the seed, the epoch and the feedback; its
state travels in checkpoints.

Under ``torchrun`` each rank trains on its share of the epoch's batches (``set_world``) and
feeds back only its own lines; :meth:`HardExampleSampler.merge` combines the ranks' tables at
each epoch's start, so that every rank draws the next epoch from the same difficulty table.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from .dataset import ShardedBatches

__all__ = ["HardExampleSampler"]


class HardExampleSampler(ShardedBatches, Sampler[list[int]]):
    def __init__(self, widths: Sequence[int], batch_size: int, seed: int = 0, extra: float = 0.25,
                 ema: float = 0.5, easy_weight: float = 0.2, max_weight: float = 10.0):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.widths = list(widths)
        self.batch_size, self.seed, self.extra = batch_size, seed, float(extra)
        self.ema, self.easy_weight, self.max_weight = ema, easy_weight, max_weight
        n = len(self.widths)
        self.loss = np.full(n, np.nan)
        self.correct = np.zeros(n, bool)
        self.touched = np.zeros(n, bool)  # fed back since the last merge
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def update(self, positions: Sequence[int], losses: Sequence[float], correct: Sequence[bool]) -> None:
        for p, l, c in zip(positions, losses, correct):
            if p < 0 or not np.isfinite(l):
                continue
            old = self.loss[p]
            self.loss[p] = l if np.isnan(old) else self.ema * old + (1 - self.ema) * l
            self.correct[p] = bool(c)
            self.touched[p] = True

    def feedback_table(self, state: dict | None = None) -> torch.Tensor:
        """This rank's feedback since the last merge (or that of a saved ``state``), as the
        3 x N sums :meth:`merge` adds over the ranks: loss, times fed back, times read right."""
        if state is None:
            loss, correct, touched = self.loss, self.correct, self.touched
        else:
            loss, correct = state["loss"].numpy(), state["correct"].numpy().astype(bool)
            touched = state["touched"].numpy().astype(bool) if "touched" in state else np.zeros(len(loss), bool)
        t = torch.from_numpy(touched.astype(np.float64))
        return torch.stack([torch.from_numpy(np.where(touched, np.nan_to_num(loss), 0.0)), t,
                            torch.from_numpy(correct.astype(np.float64)) * t])

    def merge(self, sum_over_ranks: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Make every rank's table the same: each line fed back on some ranks since the last
        merge takes the mean of their losses, and counts as read correctly if most of them
        read it so; other lines keep their (equal) values. ``sum_over_ranks`` is the
        all-reduce (``World.sum_``); every rank must call this at the same point."""
        total = sum_over_ranks(self.feedback_table()).numpy()
        seen = total[1] > 0
        self.loss[seen] = total[0][seen] / total[1][seen]
        self.correct[seen] = total[2][seen] / total[1][seen] >= 0.5
        self.touched[:] = False

    def weights(self) -> np.ndarray:
        seen = ~np.isnan(self.loss)
        mean = float(self.loss[seen].mean()) if seen.any() else 1.0
        d = np.where(seen, self.loss, mean)
        w = np.clip(d / max(mean, 1e-8), 1.0 / self.max_weight, self.max_weight)
        return np.where(self.correct, w * self.easy_weight, w)

    def n_extra(self) -> int:
        return int(round(self.extra * len(self.widths)))

    def batches(self) -> list[list[int]]:
        rng = random.Random(f"{self.seed}:hard:{self.epoch}")
        idx = list(range(len(self.widths)))
        m = self.n_extra()
        if m:
            w = self.weights()
            idx += rng.choices(range(len(w)), weights=w.tolist(), k=m)
        keys = sorted((self.widths[i], rng.random(), i) for i in idx)
        order = [i for _, _, i in keys]
        out = [order[k:k + self.batch_size] for k in range(0, len(order), self.batch_size)]
        rng.shuffle(out)
        return out

    def __len__(self) -> int:
        batches = -(-(len(self.widths) + self.n_extra()) // self.batch_size)
        return -(-batches // self.world_size)

    def state_dict(self) -> dict:
        return {"loss": torch.from_numpy(self.loss.copy()), "correct": torch.from_numpy(self.correct.copy()),
                "touched": torch.from_numpy(self.touched.copy())}

    def load_state_dict(self, state: dict) -> None:
        self.loss = state["loss"].numpy().astype(np.float64)
        self.correct = state["correct"].numpy().astype(bool)
        self.touched = state["touched"].numpy().astype(bool) if "touched" in state else np.zeros(len(self.loss), bool)
