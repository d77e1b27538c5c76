"""FGSM: one signed step of size eps up the true-label loss (Goodfellow et al. 2015)."""

from __future__ import annotations

from .loop import AttackResult, perturb
from .registry import AttackSpec, register_attack

__all__ = ["fgsm"]


def fgsm(model, x, widths, targets, target_lengths, eps: float | None, norm: str = "linf", **kw) -> AttackResult:
    """One step of size ``eps`` up the true-label loss (Goodfellow et al. 2015)."""
    return perturb(model, x, widths, targets, target_lengths, eps=eps, norm=norm, steps=1, step_size=eps, **kw)


@register_attack("fgsm", steps=1)
def _fgsm(model, x, batch, spec: AttackSpec, *, charset, generator=None, confused=None) -> AttackResult:
    return fgsm(model, x, batch["widths"], batch["targets"], batch["target_lengths"], eps=spec.eps, norm=spec.norm,
                charset=charset, region=batch.get("region"))
