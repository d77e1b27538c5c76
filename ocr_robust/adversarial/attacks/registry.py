"""The attack registry: every attack ``ocr-robust attack`` and the benchmark can run, by name.

An attack is one file in this package: its function (the attack itself, usable on its own)
and one adapter registered with ``@register_attack(name)``, which runs it on a batch from
the line loader with an :class:`AttackSpec`. A targeted attack (``targeted=True``) is given
each line's target label in ``confused``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

    from ...data.dataset import LineBatch
    from .loop import AttackResult

__all__ = ["AttackSpec", "AttackFn", "RegisteredAttack", "ATTACKS", "register_attack", "get_attack"]


@dataclass(frozen=True)
class AttackSpec:
    """An attack's budget and settings; sizes in 0..1 image units (``4/255``), ``eps=None``:
    unbounded (pixel range only)."""

    eps: float | None = 4 / 255
    norm: str = "linf"
    steps: int = 10
    step_size: float | None = None
    restarts: int = 1


class AttackFn(Protocol):
    def __call__(self, model: torch.nn.Module, x: torch.Tensor, batch: LineBatch, spec: AttackSpec, *, charset,
                 generator: torch.Generator | None = None, confused: list[str] | None = None) -> AttackResult: ...


@dataclass(frozen=True)
class RegisteredAttack:
    name: str
    run: AttackFn
    targeted: bool = False
    steps: int | None = None  # a fixed number of steps (FGSM: 1); None: the spec's


ATTACKS: dict[str, RegisteredAttack] = {}


def register_attack(name: str, *, targeted: bool = False, steps: int | None = None) -> Callable[[AttackFn], AttackFn]:
    def add(fn: AttackFn) -> AttackFn:
        if name in ATTACKS:
            raise ValueError(f"attack {name!r} is registered twice")
        ATTACKS[name] = RegisteredAttack(name, fn, targeted, steps)
        return fn
    return add


def get_attack(name: str) -> RegisteredAttack:
    try:
        return ATTACKS[name]
    except KeyError:
        raise ValueError(f"unknown attack {name!r}; choose from {', '.join(ATTACKS)}") from None
