"""The adversarial parameter layer and perturbation budgets.

Everything here works in the model's input space: pixels 0..255 (see
``ocr_robust.data.dataset``). Budgets are given as users write them, in image units of
0..1 (``4/255``, ``0.5``), and converted to pixels with :func:`to_pixels`.

A perturbation only touches a line's own pixels: batches pad lines on the right to the
widest one, and the padding is masked out (a BiLSTM reads the padding too, so a
perturbation there would change what the model reads of the line itself).
"""

from __future__ import annotations

from fractions import Fraction

import torch
import torch.nn as nn

from ..images import PIXEL_MAX

__all__ = ["NORMS", "parse_eps", "to_pixels", "width_mask", "project_", "AdversarialLayer", "SignStep",
           "make_adv_optimizer"]

NORMS = ("linf", "l2")


def parse_eps(value: str | float | int | None) -> float | None:
    """``"4/255"``, ``"0.0157"`` or a number -> float in 0..1 image units; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        eps = float(value)
    else:
        try:
            eps = float(Fraction(str(value).strip()))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"epsilon {value!r}: expected a number or a fraction such as 4/255") from None
    if eps < 0:
        raise ValueError(f"epsilon {value!r} is negative")
    return eps


def to_pixels(eps: float) -> float:
    return eps * PIXEL_MAX


def width_mask(x: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """N x 1 x 1 x W mask: 1 on each line's own columns, 0 on its padding."""
    cols = torch.arange(x.shape[-1], device=x.device)
    return (cols[None, :] < widths.to(x.device)[:, None]).to(x.dtype)[:, None, None, :]


@torch.no_grad()
def project_(delta: torch.Tensor, x: torch.Tensor, norm: str | None, eps_px: float | None,
             mask: torch.Tensor | None = None) -> torch.Tensor:
    """In place: ``delta`` into the budget (``norm`` ball of radius ``eps_px`` pixels per
    line, none when ``norm`` is None) and ``x + delta`` into 0..255; padding zeroed."""
    if norm is not None and eps_px is not None:
        if norm == "linf":
            delta.clamp_(-eps_px, eps_px)
        elif norm == "l2":
            n = delta.flatten(1).norm(dim=1).clamp(min=1e-12)
            delta.mul_((eps_px / n).clamp(max=1.0).view(-1, 1, 1, 1))
        else:
            raise ValueError(f"norm must be one of {NORMS} or None, got {norm!r}")
    delta.copy_((x + delta).clamp(0, PIXEL_MAX) - x)
    if mask is not None:
        delta.mul_(mask)
    return delta


class AdversarialLayer(nn.Module):
    """The trainable perturbation ``G`` in front of the network (METHODS.md section 1).

    ``reset(x, widths)`` makes a zero tensor of the batch's shape (B x C x H x W) with
    ``requires_grad`` (the seed's S1); ``reset(..., start=s)`` starts it instead uniformly in
    ``[-s, s]`` (0..1 units) per pixel, then projects it (a random start, as FGSM-RS and
    N-FGSM take); ``forward(x)`` returns ``clip(x + delta, 0, 255)``; the model then
    normalises as usual. ``project()`` after each adversary step keeps ``delta`` inside its
    budget: the pixel range always, and an L-inf or L2 ball of ``eps`` (0..1 units) per line
    in the bounded mode (``norm`` set); with ``norm=None`` the perturbation is unbounded, as
    in the seed, and the inner loop's stop rule limits it.
    """

    def __init__(self, norm: str | None = None, eps: float | None = None):
        super().__init__()
        if norm is not None and norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS} or None, got {norm!r}")
        if norm is not None and eps is None:
            raise ValueError("a bounded perturbation needs eps")
        self.norm, self.eps = norm, eps
        self.delta: torch.Tensor | None = None
        self._x: torch.Tensor | None = None
        self._mask: torch.Tensor | None = None

    def reset(self, x: torch.Tensor, widths: torch.Tensor | None = None, start: float | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
        self._x = x.detach()
        self._mask = width_mask(x, widths) if widths is not None else None
        self.delta = torch.zeros_like(self._x)
        if start:
            # drawn on the CPU, where the generators live: the same start on every device
            noise = torch.empty(self._x.shape).uniform_(-1.0, 1.0, generator=generator)
            self.delta.copy_(noise.to(self.delta.device) * to_pixels(start))
            self.project()
        self.delta.requires_grad_(True)
        return self.delta

    def forward(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """``clip(x + delta)``; with ``rows`` only those lines (a compacted batch), the
        gradient still reaching the whole ``delta``."""
        if self.delta is None or self.delta.shape != x.shape:
            raise RuntimeError("AdversarialLayer: call reset(x) for this batch first")
        if rows is None:
            return (x + self.delta).clamp(0, PIXEL_MAX)
        return (x[rows] + self.delta[rows]).clamp(0, PIXEL_MAX)

    def project(self) -> None:
        assert self.delta is not None and self._x is not None  # set by reset()
        project_(self.delta.data, self._x, self.norm, to_pixels(self.eps) if self.eps is not None else None,
                 self._mask)


class SignStep(torch.optim.Optimizer):
    """Signed gradient descent: each step moves every element by ``lr`` against the sign of
    its gradient (the PGD / FGSM step, whose size does not depend on the gradient's scale)."""

    def __init__(self, params, lr: float):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])


def make_adv_optimizer(name: str, params: list[torch.Tensor], lr: float, momentum: float = 0.0):
    """The adversary's optimizer: it owns only the perturbation. ``sgd`` and ``adam`` take
    ``lr`` on raw pixel gradients; ``sign`` takes signed steps of ``lr`` pixels."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sign":
        return SignStep(params, lr=lr)
    raise ValueError(f"adversary optimizer must be 'sgd', 'adam' or 'sign', got {name!r}")
