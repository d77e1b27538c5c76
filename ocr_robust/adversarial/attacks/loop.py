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
from ...words import words_matched
from ..perturb import project_, to_pixels, width_mask

__all__ = ["AttackResult", "Worst", "worst_of", "region_mask", "read_texts", "perturb"]


@dataclass
class AttackResult:
    x_adv: torch.Tensor
    loss: torch.Tensor  # per line, w.r.t. the attack's own target, at x_adv
    steps: torch.Tensor  # gradient steps each line took
    success: torch.Tensor | None = None  # targeted: read exactly as the target
    texts: list[str] = field(default_factory=list)  # what the model read at x_adv
    matched: torch.Tensor | None = None  # evaluation with truths: truth words still read at x_adv
    broken: torch.Tensor | None = None  # ... and the lines with at least one word broken there


def worst_of(best: AttackResult | None, r: AttackResult) -> AttackResult:
    """Restarts combined per line (untargeted): with the truths, the run that left the
    fewest words read, then the higher loss; without, the higher loss. ``best`` is updated
    in place. A line broken by any restart is broken."""
    if best is None:
        return r
    better = r.loss > best.loss
    if r.matched is not None and best.matched is not None and r.broken is not None and best.broken is not None:
        better = (r.matched < best.matched) | ((r.matched == best.matched) & better)
        best.matched = torch.where(better, r.matched, best.matched)
        best.broken = torch.where(better, r.broken, best.broken)
    best.x_adv[better] = r.x_adv[better]
    best.loss[better] = r.loss[better]
    best.steps += r.steps
    if r.texts:
        best.texts = [a if m else b for a, b, m in zip(r.texts, best.texts, better.tolist())]
    return best


def region_mask(x: torch.Tensor, widths: torch.Tensor, region: torch.Tensor | None) -> torch.Tensor:
    """Where an attack may change pixels: each line's own columns, within ``region`` if given."""
    mask = width_mask(x, widths)
    return mask if region is None else mask * region.to(x.device, x.dtype)


def read_texts(logp: torch.Tensor, widths: torch.Tensor, charset) -> list[str]:
    """Greedy reading of each line of a ``T x N x C`` batch, over its own frames."""
    return [d.text for d in greedy_batch(logp.detach(), CRNN.output_lengths(widths).tolist(), charset)]


class Worst:
    """Each line's worst iterate so far, for evaluation. With ``truths`` the worst is the one
    whose reading keeps the fewest truth words (the count word accuracy scores), then the
    highest loss; without, the highest loss (untargeted) or the lowest (targeted). A line
    with no truth word left to break is ``done``: attacking it further cannot lower the
    score."""

    def __init__(self, x: torch.Tensor, charset=None, truths: list[str] | None = None, targeted: bool = False):
        if truths is not None and charset is None:
            raise ValueError("an attack given the truths needs the charset to read the lines")
        n = x.shape[0]
        self.charset, self.truths, self.targeted = charset, truths, targeted
        self.delta = torch.zeros_like(x)
        self.loss = torch.full((n,), math.inf if targeted else -math.inf, device=x.device)
        self.texts: list[str] = [""] * n
        self.words = (torch.tensor([len(t.split()) for t in truths], device=x.device) if truths is not None
                      else None)
        self.matched = self.words + 1 if self.words is not None else None  # worse than any reading

    def offer(self, delta: torch.Tensor, loss: torch.Tensor, texts: list[str], active: torch.Tensor,
              force: torch.Tensor | None = None) -> torch.Tensor:
        """Keep ``delta`` for the ``active`` lines it makes worse (``force``: always, e.g. a
        targeted attack's success), given the loss and the readings (``texts``) there;
        returns which lines it kept."""
        lv = loss.detach().float()
        better = (lv < self.loss) if self.targeted else (lv > self.loss)
        m = None
        if self.truths is not None and self.matched is not None:
            m = torch.tensor(words_matched(texts, self.truths), device=lv.device)
            better = (m < self.matched) | ((m == self.matched) & better)
        if force is not None:
            better = better | force
        better = better & active
        if m is not None and self.matched is not None:
            self.matched = torch.where(better, m, self.matched)
        self.loss = torch.where(better, lv, self.loss)
        self.delta[better] = delta.detach()[better]
        if texts:
            for i in better.nonzero().flatten().tolist():
                self.texts[i] = texts[i]
        return better

    @property
    def done(self) -> torch.Tensor:
        if self.matched is None:
            return torch.zeros_like(self.loss, dtype=torch.bool)
        return self.matched == 0

    def result(self, x: torch.Tensor, steps: torch.Tensor, success: torch.Tensor | None = None) -> AttackResult:
        with torch.no_grad():
            x_adv = (x + self.delta).clamp(0, 255)
        broken = (self.matched < self.words) if self.matched is not None and self.words is not None else None
        return AttackResult(x_adv, self.loss, steps, success, self.texts if self.charset is not None else [],
                            self.matched, broken)


def perturb(model: CRNN, x: torch.Tensor, widths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
            *, eps: float | None, norm: str | None = "linf", steps: int = 10, step_size: float | None = None,
            rule: str | None = None, targeted: bool = False, random_start: bool = False,
            stop_texts: list[str] | None = None, charset=None, generator: torch.Generator | None = None,
            amp: bool = False, keep_best: bool = False, truths: list[str] | None = None,
            region: torch.Tensor | None = None) -> AttackResult:
    """The one attack loop. Untargeted: ascend the CTC loss of the true ``targets``;
    targeted: descend the loss of the target labels, and with ``stop_texts`` a line stops
    moving once the model reads its target (a success).

    For evaluation (``keep_best``): each line's worst iterate is kept, not the last
    (:class:`Worst`: with ``truths`` and the charset, the iterate that leaves the fewest
    truth words read, then the highest loss), and a line stops only when none of its words
    is read any more, so the returned image scores as low as any iterate did. Training
    modes use the last iterate, as PGD-AT does.

    ``rule`` is the step: ``sign`` (L-inf steepest ascent, the PGD/FGSM step), ``l2``
    (the gradient scaled to length ``step_size``) or ``sgd`` (the raw gradient times
    ``step_size``, the seed's adversary); by default ``sign`` for L-inf and ``l2`` for L2.
    Sizes are in 0..1 image units; ``eps=None`` or ``norm=None`` leaves the perturbation
    unbounded (pixel range only). ``region`` (N x 1 x H x W, 1 where a pixel may change)
    confines the perturbation, e.g. to the pixels under a watermark. The model's state is
    not changed here: callers wrap the call in :func:`ocr_robust.models.model_state`.
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
    mask = region_mask(x, widths, region)
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
    worst = Worst(x, charset, truths, targeted) if keep_best else None
    for k in range(steps + 1):
        delta.requires_grad_(True)
        with autocast(x.device, amp):
            logp = model((x + delta).clamp(0, 255))
        loss = ctc_per_line(logp, targets, target_lengths, widths)
        texts = read_texts(logp, widths, charset) if charset is not None and (worst or stop_texts) else []
        hit_now = None
        if stop_texts is not None:
            hit_now = torch.tensor([a == b for a, b in zip(texts, stop_texts)], device=x.device) & active
            assert success is not None  # made above when stop_texts is given
            success |= hit_now
        if worst is not None:  # a target reached is the best iterate of a targeted attack
            worst.offer(delta, loss, texts, active, force=hit_now)
            active &= ~worst.done
        if hit_now is not None:
            active &= ~hit_now
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
    if worst is not None:
        return worst.result(x, taken, success)
    with torch.no_grad():
        x_adv = (x + delta.detach()).clamp(0, 255)
    texts = read_texts(logp, widths, charset) if charset is not None else []
    return AttackResult(x_adv, loss.detach(), taken, success, texts)
