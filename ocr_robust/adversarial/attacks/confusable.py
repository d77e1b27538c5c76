"""The targeted confusable attack: push each line toward its confused label (a
:class:`~ocr_robust.adversarial.confusion.TextConfuser` reading of the confusable table); a
line succeeds when the model reads the confused label exactly."""

from __future__ import annotations

import random

from ...losses import encode_targets
from .loop import AttackResult, perturb
from .registry import AttackSpec, register_attack

__all__ = ["confusable_attack", "seeded_confusions"]


def confusable_attack(model, x, widths, confused: list[str], charset, eps: float | None, norm: str | None = "linf",
                      steps: int = 20, step_size: float | None = None, rule: str | None = None,
                      **kw) -> AttackResult:
    """Targeted: push each line toward its confused label (from :class:`TextConfuser`);
    a line succeeds when the model reads the confused label exactly."""
    targets, lengths = encode_targets(confused, charset)
    return perturb(model, x, widths, targets, lengths, eps=eps, norm=norm, steps=steps, step_size=step_size,
                   rule=rule, targeted=True, stop_texts=confused, charset=charset, **kw)


def seeded_confusions(texts: list[str], confuser, seed: str | int) -> list[str]:
    """The confused label of each text, reproducible from ``seed``."""
    rng = random.Random(str(seed))
    return [confuser.confuse(t, rng) for t in texts]


@register_attack("confusable", targeted=True)
def _confusable(model, x, batch, spec: AttackSpec, *, charset, generator=None, confused=None) -> AttackResult:
    if "region" in batch:
        raise ValueError("the confusable attack is not confined to a region here: use pgd, apgd or fgsm")
    if confused is None:
        raise ValueError("the confusable attack needs the confused labels (seeded_confusions)")
    return confusable_attack(model, x, batch["widths"], confused, charset, eps=spec.eps, norm=spec.norm,
                             steps=spec.steps, step_size=spec.step_size)
