"""The one attack loop every white-box attack is a setting of (``perturb``), and what an
attack returns (``AttackResult``).

The package's docstring says what every attack keeps to (input-only gradients, budgets in
0..1 units, padding never touched).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ...decoding import greedy_batch
from ...losses import ctc_per_line
from ...models import CRNN, autocast
from ..perturb import project_, to_pixels, width_mask

__all__ = ["AttackResult", "worst_of", "read_texts", "perturb"]


@dataclass
class AttackResult:
    x_adv: torch.Tensor
    loss: torch.Tensor  # per line, w.r.t. the attack's own target, at x_adv
    steps: torch.Tensor  # gradient steps each line took
    success: torch.Tensor | None = None  # targeted: read exactly as the target
    texts: list[str] = field(default_factory=list)  # what the model read at x_adv
    broken: torch.Tensor | None = None  # evaluation with truths: lines whose reading x_adv breaks


def worst_of(best: AttackResult | None, r: AttackResult) -> AttackResult:
    """Restarts combined per line: the run with the higher (untargeted) loss, and a run that
    broke the line's reading over any that did not; ``best`` is updated in place."""
    if best is None:
        return r
    better = r.loss > best.loss
    if r.broken is not None and best.broken is not None:  # a line broken by any restart stays broken
        better = (r.broken & ~best.broken) | ((r.broken == best.broken) & better)
        best.broken |= r.broken
    best.x_adv[better] = r.x_adv[better]
    best.loss[better] = r.loss[better]
    best.steps += r.steps
    if r.texts:
        best.texts = [a if m else b for a, b, m in zip(r.texts, best.texts, better.tolist())]
    return best


def read_texts(logp: torch.Tensor, widths: torch.Tensor, charset) -> list[str]:
    """Greedy reading of each line of a ``T x N x C`` batch, over its own frames."""
    return [d.text for d in greedy_batch(logp.detach(), CRNN.output_lengths(widths).tolist(), charset)]


def perturb(model: CRNN, x: torch.Tensor, widths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
            *, eps: float | None, norm: str | None = "linf", steps: int = 10, step_size: float | None = None,
            rule: str | None = None, targeted: bool = False, random_start: bool = False,
            stop_texts: list[str] | None = None, charset=None, generator: torch.Generator | None = None,
            amp: bool = False, keep_best: bool = False, truths: list[str] | None = None) -> AttackResult:
    """The one attack loop. Untargeted: ascend the CTC loss of the true ``targets``;
    targeted: descend the loss of the target labels, and with ``stop_texts`` a line stops
    moving once the model reads its target (a success).

    For evaluation (``keep_best``): each line's worst iterate is kept (the highest
    untargeted loss seen, the lowest targeted one), not the last; and with ``truths`` (and
    the charset) a line whose reading breaks a word stops there, broken, so that the
    returned image is one that fools the model whenever any iterate did. Training modes use
    the last iterate, as PGD-AT does.

    ``rule`` is the step: ``sign`` (L-inf steepest ascent, the PGD/FGSM step), ``l2``
    (the gradient scaled to length ``step_size``) or ``sgd`` (the raw gradient times
    ``step_size``, the seed's adversary); by default ``sign`` for L-inf and ``l2`` for L2.
    Sizes are in 0..1 image units; ``eps=None`` or ``norm=None`` leaves the perturbation
    unbounded (pixel range only). The model's state is not changed here: callers wrap the
    call in :func:`ocr_robust.models.model_state`.
    """
    if truths is not None and charset is None:
        raise ValueError("an attack given the truths needs the charset to read the lines")
    rule = rule or ("l2" if norm == "l2" else "sign")
    if rule not in ("sign", "l2", "sgd"):
        raise ValueError(f"step rule must be sign, l2 or sgd, got {rule!r}")
    eps_px = to_pixels(eps) if (eps is not None and norm is not None) else None
    if rule == "sgd":  # a learning rate on raw pixel gradients, not a size
        step_px = step_size if step_size is not None else 1.0
    else:
        step_px = to_pixels(step_size if step_size is not None else (eps / 4 if eps else 1 / 255))
    x = x.detach()
    mask = width_mask(x, widths)
    n = x.shape[0]
    delta = torch.zeros_like(x)
    if random_start and eps_px is not None:
        # drawn on the CPU, where the generators live, then moved: the same start on every device
        if norm == "linf":
            delta = torch.empty(x.shape, device="cpu").uniform_(-eps_px, eps_px, generator=generator).to(x.device)
        else:
            d = torch.randn(x.shape, generator=generator, device="cpu").to(x.device) * mask
            r = torch.rand(n, generator=generator, device="cpu").to(x.device).view(-1, 1, 1, 1)
            delta = d / d.flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, 1, 1, 1) * eps_px * r
    project_(delta, x, norm, eps_px, mask)
    active = torch.ones(n, dtype=torch.bool, device=x.device)
    success = torch.zeros(n, dtype=torch.bool, device=x.device) if stop_texts is not None else None
    taken = torch.zeros(n, dtype=torch.long, device=x.device)
    sign = -1.0 if targeted else 1.0
    best_delta = delta.clone()
    best_loss = torch.full((n,), math.inf if targeted else -math.inf, device=x.device)
    best_texts: list[str] = [""] * n
    broken = torch.zeros(n, dtype=torch.bool, device=x.device)
    for k in range(steps + 1):
        delta.requires_grad_(True)
        with autocast(x.device, amp):
            logp = model((x + delta).clamp(0, 255))
        loss = ctc_per_line(logp, targets, target_lengths, widths)
        texts = read_texts(logp, widths, charset) if charset is not None and (keep_best or stop_texts) else []
        if stop_texts is not None:
            hit = torch.tensor([a == b for a, b in zip(texts, stop_texts)], device=x.device)
            assert success is not None  # made above when stop_texts is given
            success |= hit & active
            hit_now = hit & active
            active &= ~hit
        if keep_best:
            with torch.no_grad():
                lv = loss.detach().float()
                better = active & ((lv < best_loss) if targeted else (lv > best_loss))
                if stop_texts is not None:
                    better |= hit_now  # a target reached is the best iterate of a targeted attack
                if truths is not None:
                    now = torch.tensor([r.split() != t.split() for r, t in zip(texts, truths)], device=x.device)
                    better |= active & now  # a broken reading is the worst iterate, whatever its loss
                    broken |= active & now
                best_loss = torch.where(better, lv, best_loss)
                best_delta[better] = delta.detach()[better]
                if texts:
                    for i in better.nonzero().flatten().tolist():
                        best_texts[i] = texts[i]
                active &= ~broken
        if k == steps or not active.any():
            break
        (g,) = torch.autograd.grad(loss.sum(), delta)
        with torch.no_grad():
            if rule == "sign":
                step = step_px * g.sign()
            elif rule == "l2":
                step = step_px * g / (g * mask).flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, 1, 1, 1)
            else:
                step = step_px * g
            delta = delta.detach() + sign * step * active.view(-1, 1, 1, 1).to(x.dtype)
            project_(delta, x, norm, eps_px, mask)
            taken += active.long()
    if keep_best:
        with torch.no_grad():
            x_adv = (x + best_delta).clamp(0, 255)
        return AttackResult(x_adv, best_loss, taken, success, best_texts if charset is not None else [], broken)
    with torch.no_grad():
        x_adv = (x + delta.detach()).clamp(0, 255)
    texts = read_texts(logp, widths, charset) if charset is not None else []
    return AttackResult(x_adv, loss.detach(), taken, success, texts)
