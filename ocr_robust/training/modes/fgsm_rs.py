"""``fgsm-rs``: FGSM with a random start (Wong et al. 2020), a defence the realtime mode must beat."""

from __future__ import annotations

from ...adversarial.attacks import perturb
from .base import Batch, BoundedAttackMode, forward, per_sample, register_mode

__all__ = ["FGSMRSMode"]


@register_mode
class FGSMRSMode(BoundedAttackMode):
    """FGSM with a random start (Wong et al. 2020): one step of 1.25 eps from a uniform
    start in the eps ball, then train on that example."""

    name = "fgsm-rs"

    def step(self, model, batch, ctx):
        b = Batch(batch, ctx.device)
        step = self.step_size if self.step_size is not None else 1.25 * self.eps
        r = perturb(model, b.x, b.widths, b.targets, b.lengths, eps=self.eps, norm=self.norm, steps=1,
                    step_size=step, random_start=True, generator=self.generator(ctx), amp=ctx.amp)
        logp = forward(model, r.x_adv, ctx)
        losses = b.loss(logp)
        losses.mean().backward()
        return per_sample({"loss": float(losses.detach().mean())}, losses, logp, batch, ctx)
