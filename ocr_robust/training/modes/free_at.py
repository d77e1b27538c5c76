"""``free-at``: free adversarial training (Shafahi et al. 2019), a defence the realtime mode must beat."""

from __future__ import annotations

import torch

from ...adversarial.perturb import project_, to_pixels, width_mask
from .base import Batch, BoundedAttackMode, forward, per_sample, register_mode

__all__ = ["FreeATMode"]


@register_mode
class FreeATMode(BoundedAttackMode):
    """Free adversarial training (Shafahi et al. 2019): each batch is replayed ``replays``
    times; every replay's single backward gives the weights' gradient (the Trainer steps the
    optimizer after each) and the perturbation's, which takes an ``eps`` sign step. The
    perturbation starts at zero for each batch (batches differ in width)."""

    name = "free-at"

    def __init__(self, replays: int = 4, **kw):
        super().__init__(**kw)
        self.replays = int(replays)
        self.delta: torch.Tensor | None = None

    def step(self, model, batch, ctx):
        b = Batch(batch, ctx.device)
        if getattr(ctx, "replay", 0) == 0 or self.delta is None or self.delta.shape != b.x.shape:
            self.delta = torch.zeros_like(b.x)
        delta = self.delta.requires_grad_(True)
        logp = forward(model, (b.x + delta).clamp(0, 255), ctx)
        losses = b.loss(logp)
        params = [p for p in model.parameters() if p.requires_grad]
        losses.mean().backward(inputs=params + [delta])
        with torch.no_grad():
            step = self.step_size if self.step_size is not None else self.eps
            assert delta.grad is not None  # the backward above reached delta
            d = delta.detach() + to_pixels(step) * delta.grad.sign()
            self.delta = project_(d, b.x, self.norm, to_pixels(self.eps), width_mask(b.x, b.widths))
        return per_sample({"loss": float(losses.detach().mean())}, losses, logp, batch, ctx)
