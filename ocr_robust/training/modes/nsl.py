"""``nsl``: adversarial regularisation in the style of Neural Structured Learning (METHODS.md
section 4), a defence the realtime mode must beat."""

from __future__ import annotations

import torch

from ...adversarial.perturb import width_mask
from .base import Batch, TrainingMode, forward, per_sample, register_mode

__all__ = ["NSLMode"]


@register_mode
class NSLMode(TrainingMode):
    """Adversarial regularisation in the style of Neural Structured Learning (METHODS.md
    section 4): ``loss(x) + multiplier * loss(x + step * sign(grad_x loss(x)))``, the
    neighbour an FGSM step. ``step_size`` is in the model's normalised units (the seed's
    0.2), one unit being 127.5 pixel levels here."""

    name = "nsl"

    def __init__(self, multiplier: float = 0.2, step_size: float = 0.2):
        self.multiplier, self.step_size = float(multiplier), float(step_size)

    def step(self, model, batch, ctx):
        b = Batch(batch, ctx.device)
        x = b.x.detach().requires_grad_(True)
        logp = forward(model, x, ctx)
        losses = b.loss(logp)
        (g,) = torch.autograd.grad(losses.sum(), x, retain_graph=True)
        with torch.no_grad():
            x_n = (x + self.step_size * 127.5 * g.sign() * width_mask(x, b.widths)).clamp(0, 255)
        adv = b.loss(forward(model, x_n, ctx))
        (losses.mean() + self.multiplier * adv.mean()).backward()
        stats = {"loss": float(losses.detach().mean()), "adv_loss": float(adv.detach().mean())}
        return per_sample(stats, losses, logp, batch, ctx)
