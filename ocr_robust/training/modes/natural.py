"""``natural``: plain training, the baseline every defence is compared against."""

from __future__ import annotations

from ...data.dataset import LineBatch
from ...losses import ctc_per_line
from ...models import CRNN
from .base import StepContext, TrainingMode, forward, per_sample, register_mode

__all__ = ["NaturalMode"]


@register_mode
class NaturalMode(TrainingMode):
    """Plain training: the baseline every defence is compared against."""

    name = "natural"

    def __init__(self, **options):
        if options:
            raise ValueError(f"natural mode takes no options, got {', '.join(options)}")

    def step(self, model: CRNN, batch: LineBatch, ctx: StepContext) -> dict[str, float]:
        x = batch["images"].to(ctx.device, non_blocking=True)
        logp = forward(model, x, ctx)
        losses = ctc_per_line(logp, batch["targets"], batch["target_lengths"], batch["widths"])
        loss = losses.mean()
        loss.backward()
        return per_sample({"loss": float(loss.detach())}, losses, logp, batch, ctx)
