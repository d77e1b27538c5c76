"""APGD: auto-PGD with the CTC loss (Croce & Hein 2020, "Reliable evaluation of adversarial
robustness with an ensemble of diverse parameter-free attacks"), L-inf or L2.

No step size to tune: each line starts at 2 eps (L-inf) and its step is halved at
checkpoints where the loss has stopped rising (fewer than ``rho`` of the steps since the last
checkpoint raised it, or neither the step nor the best loss changed), restarting from the
best point; steps carry momentum 0.75. The worst iterate is kept per line (with
``truths``: the one that leaves the fewest words read, then the highest loss), and a line
stops when none of its words is read; with ``restarts`` the worst run per line is kept.
"""

from __future__ import annotations

import math

import torch

from ...losses import ctc_per_line
from ...models import autocast
from ..perturb import project_, to_pixels
from .loop import AttackResult, Worst, read_texts, region_mask, worst_of
from .registry import AttackSpec, register_attack

__all__ = ["apgd", "checkpoints"]


def checkpoints(steps: int) -> list[int]:
    """The iterations at which APGD checks its progress: the first after 22% of the steps,
    then each gap 3% of the steps shorter than the last, down to 6% (the paper's
    p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), in whole steps as AutoAttack counts them)."""
    gap, shrink, least = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    marks = [gap]
    while True:
        gap = max(gap - shrink, least)
        if marks[-1] + gap >= steps:
            return marks
        marks.append(marks[-1] + gap)


def _normalise(g: torch.Tensor, norm: str, mask: torch.Tensor) -> torch.Tensor:
    if norm == "linf":
        return g.sign()
    return g / (g * mask).flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, 1, 1, 1)


def _one(model, x, widths, targets, target_lengths, eps_px, norm, steps, rho, charset, truths, generator, amp,
         region):
    n = x.shape[0]
    mask = region_mask(x, widths, region)
    view = (-1, 1, 1, 1)
    if norm == "linf":
        delta = torch.empty(x.shape, device="cpu").uniform_(-eps_px, eps_px, generator=generator).to(x.device)
    else:
        d = torch.randn(x.shape, generator=generator, device="cpu").to(x.device) * mask
        delta = d / d.flatten(1).norm(dim=1).clamp(min=1e-12).view(view) * eps_px
    project_(delta, x, norm, eps_px, mask)

    def evaluate(d):
        d = d.detach().requires_grad_(True)
        with autocast(x.device, amp):
            logp = model((x + d).clamp(0, 255))
        loss = ctc_per_line(logp, targets, target_lengths, widths)
        (g,) = torch.autograd.grad(loss.sum(), d)
        return loss.detach().float(), g.detach(), logp.detach()

    active = torch.ones(n, dtype=torch.bool, device=x.device)
    worst = Worst(x, charset, truths)  # what is returned: the reading with the fewest words left

    def track(loss, logp, d, best_loss, best_delta):
        """APGD's own best point (the highest loss, where a halving restarts), and the
        returned worst iterate; a line with no word left to break stops."""
        better = active & (loss > best_loss)
        best_delta[better] = d[better]
        worst.offer(d, loss, read_texts(logp, widths, charset) if charset is not None else [], active)
        active.__iand__(~worst.done)
        return torch.where(better, loss, best_loss)

    best_delta = delta.clone()
    loss, g, logp = evaluate(delta)
    best_loss = track(loss, logp, delta, torch.full((n,), -math.inf, device=x.device), best_delta)
    step = torch.full((n,), 2.0 * eps_px, device=x.device)
    prev = delta.clone()
    marks = checkpoints(steps)
    last_mark, rises = 0, torch.zeros(n, device=x.device)
    step_at_mark, best_at_mark = step.clone(), best_loss.clone()
    taken = torch.zeros(n, dtype=torch.long, device=x.device)
    for k in range(1, steps):
        if not active.any():
            break
        go = active.view(view).to(x.dtype)
        z = delta + step.view(view) * _normalise(g, norm, mask) * go
        project_(z, x, norm, eps_px, mask)
        alpha = 1.0 if k == 1 else 0.75
        new = delta + alpha * (z - delta) + (1 - alpha) * (delta - prev)
        project_(new, x, norm, eps_px, mask)
        prev, delta = delta, new
        old_loss = loss
        loss, g, logp = evaluate(delta)
        taken += active.long()
        rises += (loss > old_loss).float()
        best_loss = track(loss, logp, delta, best_loss, best_delta)
        if k in marks:
            stalled = (rises < rho * (k - last_mark)) | ((step == step_at_mark) & (best_loss <= best_at_mark))
            step = torch.where(stalled, step / 2, step)
            if stalled.any():  # restart those lines from their best point
                delta = torch.where(stalled.view(view), best_delta, delta)
                prev = delta.clone()
                loss, g, logp = evaluate(delta)
            last_mark, rises = k, torch.zeros(n, device=x.device)
            step_at_mark, best_at_mark = step.clone(), best_loss.clone()
    return worst.result(x, taken)


def apgd(model, x, widths, targets, target_lengths, eps: float, norm: str = "linf", steps: int = 50,
         restarts: int = 1, rho: float = 0.75, charset=None, truths: list[str] | None = None,
         generator: torch.Generator | None = None, amp: bool = False,
         region: torch.Tensor | None = None) -> AttackResult:
    """Auto-PGD on the true-label CTC loss within ``eps`` (0..1 units); ``steps`` gradient
    evaluations per restart. With ``restarts`` the worst run per line is kept
    (:func:`~ocr_robust.adversarial.attacks.loop.worst_of`). ``region`` confines the
    perturbation (:func:`~ocr_robust.adversarial.attacks.loop.perturb`)."""
    if norm not in ("linf", "l2"):
        raise ValueError(f"APGD norm must be linf or l2, got {norm!r}")
    x = x.detach()
    best: AttackResult | None = None
    for _ in range(max(1, restarts)):
        r = _one(model, x, widths, targets, target_lengths, to_pixels(eps), norm, max(2, steps), rho, charset, truths,
                 generator, amp, region)
        best = worst_of(best, r)
    assert best is not None
    return best


@register_attack("apgd")
def _apgd(model, x, batch, spec: AttackSpec, *, charset, generator=None, confused=None) -> AttackResult:
    if spec.eps is None:
        raise ValueError("APGD needs a budget (eps)")
    return apgd(model, x, batch["widths"], batch["targets"], batch["target_lengths"], eps=spec.eps, norm=spec.norm,
                steps=spec.steps, restarts=spec.restarts, charset=charset, truths=batch["texts"], generator=generator,
                region=batch.get("region"))
