"""What a training mode is, the registry, and the helpers the modes share.

A training mode is one class, in one file of this package, registered with
``@register_mode``: its ``step(model, batch, ctx) -> stats`` leaves the gradient of the
weights in ``.grad`` (it may run several forwards, as the adversarial modes do); the
Trainer then clips it, steps the optimizer and the schedule. Everything else a mode may
tell the Trainer is a class attribute or a hook of :class:`TrainingMode`, with a default,
so the Trainer never names a mode.

Budgets are in 0..1 image units (``eps: 4/255``); the perturbation lives in the model's
0..255 pixel space and never touches a line's padding.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, cast

import torch

from ...adversarial.attacks import read_texts
from ...adversarial.perturb import parse_eps
from ...charset import Charset
from ...data.dataset import LineBatch
from ...losses import ctc_per_line, padded_targets
from ...models import CRNN, autocast

__all__ = ["StepContext", "TrainingMode", "BoundedAttackMode", "MODES", "register_mode", "make_mode", "Batch",
           "forward", "per_sample", "read_correct", "norm_option"]


@dataclass
class StepContext:
    """What a mode's step may know of the run besides the model and the batch."""

    device: torch.device
    amp: bool
    epoch: int
    step: int
    charset: Charset
    options: dict[str, Any]
    seed: int = 0
    feedback: bool = False  # the mode should return per-line losses and correctness
    replay: int = 0  # for modes that replay a batch (free-at)


class TrainingMode:
    """The base of every training mode: the hooks the Trainer calls, each with its default."""

    name: str = ""  # the --mode name, set by each mode
    replays: int = 1  # times the Trainer runs step() (and the optimizer) on each batch
    sampler: str = "bucket"  # the batch sampler when the config says auto: bucket | hard (hard examples)
    notext_rate: float = 0.0  # no-text images per line when the config does not say

    def step(self, model: CRNN, batch: LineBatch, ctx: StepContext) -> dict[str, float]:
        """Leave the weights' gradient for ``batch`` in ``.grad``; return ``{"loss": ...}`` and
        the mode's own statistics (``per_sample`` adds the hard-example feedback)."""
        raise NotImplementedError

    def confuser_for(self, charset: Charset):
        """The label confuser the epoch-end validation attack should use (None: the default)."""
        return None

    def val_attack(self) -> dict:
        """This mode's adversary as the epoch-end validation attack's settings ({}: the default)."""
        return {}


MODES: dict[str, type[TrainingMode]] = {}


def register_mode(cls: type[TrainingMode]) -> type[TrainingMode]:
    """Class decorator: make ``cls`` available as ``--mode cls.name``."""
    if not cls.name or cls.name in MODES:
        raise ValueError(f"training mode {cls.__name__}: its name {cls.name!r} is empty or taken")
    MODES[cls.name] = cls
    return cls


def make_mode(name: str, options: dict) -> TrainingMode:
    if name not in MODES:
        raise ValueError(f"unknown training mode {name!r}; available: {', '.join(MODES)}")
    try:
        return MODES[name](**options)
    except TypeError as e:
        raise ValueError(f"training mode {name!r}: bad options {options}: {e}") from None


def norm_option(value: Any) -> str | None:
    return None if value in (None, "", "none", "None") else str(value)


def forward(model, x, ctx):
    with autocast(ctx.device, ctx.amp):
        return model(x)


def read_correct(logp: torch.Tensor, batch: LineBatch, charset) -> list[bool]:
    """Whether each line of the batch is read exactly (greedy) from ``logp``."""
    return [p == t for p, t in zip(read_texts(logp, batch["widths"], charset), batch["texts"])]


def per_sample(stats: dict, losses: torch.Tensor, logp: torch.Tensor, batch: LineBatch, ctx) -> dict:
    """Add the per-line feedback the hard-example sampler uses (when the Trainer asks)."""
    if getattr(ctx, "feedback", False):
        stats["sample_loss"] = losses.detach().float().cpu().tolist()
        stats["sample_correct"] = read_correct(logp, batch, ctx.charset)
    return stats


class Batch:
    """The tensors of a collated batch on the device."""

    def __init__(self, batch: LineBatch, device: torch.device):
        self.x = batch["images"].to(device, non_blocking=True)
        self.widths = batch["widths"]
        self.targets, self.lengths = batch["targets"], batch["target_lengths"]
        self.soft = batch.get("soft")  # the teachers' posteriors, when the run distils
        self._padded: torch.Tensor | None = None

    def loss(self, logp: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Each line's training loss: CTC to its text, mixed with the KL to the teachers'
        posteriors when the run distils (``training.distill``). ``rows``: the lines ``logp``
        holds (a compacted batch), all when None."""
        targets, lengths, widths = self.targets, self.lengths, self.widths
        if rows is not None:
            if self._padded is None:
                self._padded = padded_targets(self.targets, self.lengths)
            p = self._padded[rows]
            targets, lengths, widths = p[p >= 0], self.lengths[rows], self.widths[rows]
        ctc = ctc_per_line(logp, targets, lengths, widths)
        return ctc if self.soft is None else self.soft.mix(ctc, logp, widths, lengths, rows)


class BoundedAttackMode(TrainingMode):
    """Shared options of the attack-based baselines: budget and PGD settings."""

    def __init__(self, eps: str | float = "4/255", norm: str = "linf", steps: int = 5,
                 step_size: str | float | None = None):
        self.eps = cast(float, parse_eps(eps))  # these modes need a budget: None (from "") fails later
        self.norm = norm_option(norm) or "linf"
        self.steps = int(steps)
        self.step_size = parse_eps(step_size)

    def generator(self, ctx) -> torch.Generator:
        key = f"{ctx.seed}:{self.name}:{ctx.step}:{getattr(ctx, 'replay', 0)}"
        return torch.Generator().manual_seed(random.Random(key).getrandbits(63))
