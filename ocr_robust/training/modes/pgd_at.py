"""``pgd-at``: PGD adversarial training (Madry et al. 2018), a defence the realtime mode must beat."""

from __future__ import annotations

from ...adversarial.attacks import pgd
from ...models import model_state
from .base import Batch, BoundedAttackMode, forward, per_sample, register_mode

__all__ = ["PGDATMode"]


@register_mode
class PGDATMode(BoundedAttackMode):
    """PGD adversarial training (Madry et al. 2018): train on the PGD example only."""

    name = "pgd-at"

    def step(self, model, batch, ctx):
        b = Batch(batch, ctx.device)
        with model_state(model, train=False):  # crafted with BatchNorm in eval mode: the batch's own statistics
            r = pgd(model, b.x, b.widths, b.targets, b.lengths, self.eps, self.norm, steps=self.steps,  # stay out
                    step_size=self.step_size, random_start=True, generator=self.generator(ctx), amp=ctx.amp)
        logp = forward(model, r.x_adv, ctx)
        losses = b.loss(logp)
        losses.mean().backward()
        return per_sample({"loss": float(losses.detach().mean())}, losses, logp, batch, ctx)
