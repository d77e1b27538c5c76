"""The Square attack (Andriushchenko et al. 2020), L-inf, with the CTC loss as its score: a
black-box check against gradient masking. It never differentiates the model: each query
changes one random square of the perturbation to a new corner of the eps box and keeps the
change where it makes the line worse (with the truths: fewer words read, or as many and a
higher loss; without: a higher loss). A model whose robustness under PGD is an artefact of
masked gradients still falls to it.

Queries are forward passes of the whole batch. The square's share of a line's pixels
starts at ``p_init`` and halves on the paper's schedule (scaled to ``queries``); with
``truths`` a line stops when none of its words is read.
"""

from __future__ import annotations

import math

import torch

from ...losses import ctc_per_line
from ...models import autocast
from ..perturb import to_pixels, width_mask
from .loop import AttackResult, Worst, read_texts
from .registry import AttackSpec, register_attack

__all__ = ["square", "square_share"]

_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)  # of 10,000 queries, as in the paper


def square_share(i: int, queries: int, p_init: float = 0.05) -> float:
    """The square's share of the line at query ``i`` of ``queries``."""
    k = sum(i > q * queries / 10_000 for q in _HALVINGS)
    return p_init / 2**k


def square(model, x, widths, targets, target_lengths, eps: float, queries: int = 1000, p_init: float = 0.05,
           charset=None, truths: list[str] | None = None, generator: torch.Generator | None = None,
           amp: bool = False) -> AttackResult:
    """Untargeted L-inf Square attack within ``eps`` (0..1 units), ``queries`` forward passes."""
    if truths is not None and charset is None:
        raise ValueError("an attack given the truths needs the charset to read the lines")
    x = x.detach()
    n, _, h, _ = x.shape
    eps_px = to_pixels(eps)
    mask = width_mask(x, widths)
    g = generator or torch.Generator().manual_seed(0)

    def score(d):
        with torch.no_grad(), autocast(x.device, amp):
            logp = model((x + d).clamp(0, 255))
        return ctc_per_line(logp, targets, target_lengths, widths).float(), logp

    def read(logp):
        return read_texts(logp, widths, charset) if charset is not None else []

    # vertical stripes of +-eps: the paper's start; the perturbation kept is always the worst so far,
    # the unperturbed line included (offered first), so the attack never ends below the clean loss
    stripes = (torch.randint(0, 2, (n, 1, 1, x.shape[-1]), generator=g).float() * 2 - 1).to(x.device)
    worst = Worst(x, charset, truths)
    active = torch.ones(n, dtype=torch.bool, device=x.device)
    loss, logp = score(torch.zeros_like(x))
    worst.offer(torch.zeros_like(x), loss, read(logp), active)
    start = eps_px * stripes.expand_as(x) * mask
    loss, logp = score(start)
    worst.offer(start, loss, read(logp), active)
    active &= ~worst.done
    taken = torch.zeros(n, dtype=torch.long, device=x.device)
    w = widths.tolist()
    for i in range(queries):
        if not active.any():
            break
        share = square_share(i, queries, p_init)
        cand = worst.delta.clone()
        for j in active.nonzero().flatten().tolist():
            side = max(1, min(h, w[j], int(round(math.sqrt(share * h * w[j])))))
            r0 = int(torch.randint(0, h - side + 1, (1,), generator=g))
            c0 = int(torch.randint(0, w[j] - side + 1, (1,), generator=g))
            value = eps_px * (float(torch.randint(0, 2, (1,), generator=g)) * 2 - 1)
            cand[j, :, r0:r0 + side, c0:c0 + side] = value
        loss, logp = score(cand)
        worst.offer(cand, loss, read(logp), active)
        taken += active.long()
        active &= ~worst.done
    return worst.result(x, taken)


@register_attack("square")
def _square(model, x, batch, spec: AttackSpec, *, charset, generator=None, confused=None) -> AttackResult:
    if "region" in batch:
        raise ValueError("the Square attack is not confined to a region here: use pgd, apgd or fgsm")
    if spec.eps is None or spec.norm != "linf":
        raise ValueError("the Square attack here is L-inf: give --norm linf and an eps")
    return square(model, x, batch["widths"], batch["targets"], batch["target_lengths"], eps=spec.eps,
                  queries=spec.steps, charset=charset, truths=batch["texts"], generator=generator)
