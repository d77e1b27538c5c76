"""``trades``: TRADES (Zhang et al. 2019), a defence the realtime mode must beat."""

from __future__ import annotations

import torch

from ...adversarial.perturb import project_, to_pixels, width_mask
from ...losses import frame_kl
from ...models import model_state
from .base import Batch, BoundedAttackMode, forward, per_sample, register_mode

__all__ = ["TRADESMode"]


@register_mode
class TRADESMode(BoundedAttackMode):
    """TRADES (Zhang et al. 2019): ``CTC(f(x), y) + beta * KL(f(x) || f(x'))``, with ``x'``
    found by PGD ascending the KL from a small random start. The KL is summed over a line's
    frames and divided by its label length, the scale of the CTC term."""

    name = "trades"

    def __init__(self, beta: float = 1.0, **kw):
        super().__init__(**kw)
        self.beta = float(beta)

    def step(self, model, batch, ctx):
        b = Batch(batch, ctx.device)
        mask = width_mask(b.x, b.widths)
        eps_px = to_pixels(self.eps)
        step_px = to_pixels(self.step_size if self.step_size is not None else 2.5 * self.eps / max(1, self.steps))
        denom = b.lengths.clamp(min=1).float().to(b.x.device)
        g_ = self.generator(ctx)
        delta = 0.001 * 255 * torch.randn(b.x.shape, generator=g_).to(b.x.device) * mask
        project_(delta, b.x, self.norm, eps_px, mask)
        with model_state(model, train=False):  # crafted in eval mode, as the TRADES reference code does
            with torch.no_grad():
                ref = forward(model, b.x, ctx).detach()
            for _ in range(self.steps):
                delta.requires_grad_(True)
                kl = frame_kl(ref, forward(model, (b.x + delta).clamp(0, 255), ctx), b.widths)
                (g,) = torch.autograd.grad(kl.sum(), delta)
                with torch.no_grad():
                    step = g.sign() if self.norm == "linf" else \
                        g / g.flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, 1, 1, 1)
                    delta = delta.detach() + step_px * step
                    project_(delta, b.x, self.norm, eps_px, mask)
        logp = forward(model, b.x, ctx)
        losses = b.loss(logp)
        robust = frame_kl(logp, forward(model, (b.x + delta).clamp(0, 255), ctx), b.widths) / denom
        (losses.mean() + self.beta * robust.mean()).backward()
        stats = {"loss": float(losses.detach().mean()), "kl": float(robust.detach().mean())}
        return per_sample(stats, losses, logp, batch, ctx)
