"""PGD: projected gradient ascent on the true-label CTC loss, L-inf or L2, random start and
restarts (Madry et al. 2018)."""

from __future__ import annotations

from typing import cast

from .loop import AttackResult, perturb, worst_of
from .registry import AttackSpec, register_attack

__all__ = ["pgd"]


def pgd(model, x, widths, targets, target_lengths, eps: float | None, norm: str = "linf", steps: int = 10,
        step_size: float | None = None, random_start: bool = True, restarts: int = 1, **kw) -> AttackResult:
    """Projected gradient ascent on the true-label loss (Madry et al. 2018); with
    ``restarts`` the worst run per line is kept (:func:`~.loop.worst_of`: with ``truths``
    and ``keep_best``, the one that leaves the fewest words read, then the highest loss).
    The default step is 2.5 eps / steps, Madry's choice."""
    step_size = step_size if step_size is not None else 2.5 * cast(float, eps) / max(1, steps)
    best: AttackResult | None = None
    for _ in range(max(1, restarts)):
        r = perturb(model, x, widths, targets, target_lengths, eps=eps, norm=norm, steps=steps, step_size=step_size,
                    random_start=random_start, **kw)
        best = worst_of(best, r)
    return best  # type: ignore[return-value]


@register_attack("pgd")
def _pgd(model, x, batch, spec: AttackSpec, *, charset, generator=None, confused=None) -> AttackResult:
    return pgd(model, x, batch["widths"], batch["targets"], batch["target_lengths"], eps=spec.eps, norm=spec.norm,
               steps=spec.steps, step_size=spec.step_size, restarts=spec.restarts, generator=generator, charset=charset,
               keep_best=True, truths=batch["texts"], region=batch.get("region"))
