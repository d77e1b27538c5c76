"""``natural``: plain training, the baseline every defence is compared against."""

from __future__ import annotations

from ...data.dataset import LineBatch
from ...models import CRNN
from .base import Batch, StepContext, TrainingMode, forward, per_sample, register_mode

__all__ = ["NaturalMode"]


@register_mode
class NaturalMode(TrainingMode):
    """Plain training: the baseline every defence is compared against."""

    name = "natural"

    def __init__(self, **options):
        if options:
            raise ValueError(f"natural mode takes no options, got {', '.join(options)}")

    def step(self, model: CRNN, batch: LineBatch, ctx: StepContext) -> dict[str, float]:
        b = Batch(batch, ctx.device)
        logp = forward(model, b.x, ctx)
        losses = b.loss(logp)
        loss = losses.mean()
        loss.backward()
        return per_sample({"loss": float(loss.detach())}, losses, logp, batch, ctx)
