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
import torch.nn.functional as F

from ..images import PIXEL_MAX

__all__ = ["NORMS", "BASES", "parse_eps", "to_pixels", "width_mask", "project_", "AdversarialLayer", "SignStep",
           "make_adv_optimizer"]

NORMS = ("linf", "l2")
# how the perturbation is parameterised: one value per pixel, or a coarse grid of one value
# per ``cell`` x ``cell`` pixels, upsampled bilinearly (a smooth change of shade: uneven
# illumination, a stain, a translucent watermark's tint)
BASES = ("pixel", "lowfreq")


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

    ``basis="lowfreq"`` (not in the seed) makes the trainable tensor a coarse grid, B x C x
    ceil(H / cell) x ceil(W / cell), upsampled bilinearly to the image (:meth:`full`): the
    adversary can only change the shade smoothly over a few pixels, as paper, stains, scans
    and watermarks do, not draw thin strokes. The budget holds for the upsampled
    perturbation (bilinear upsampling is a convex combination, so the grid's L-inf bound is
    the image's; an L2 budget is scaled on the image); the pixel range is kept by the clip
    of ``forward``, which a smooth perturbation cannot follow pixel by pixel.
    """

    def __init__(self, norm: str | None = None, eps: float | None = None, basis: str = "pixel", cell: int = 8):
        super().__init__()
        if norm is not None and norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS} or None, got {norm!r}")
        if norm is not None and eps is None:
            raise ValueError("a bounded perturbation needs eps")
        if basis not in BASES:
            raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
        if basis == "lowfreq" and cell < 2:
            raise ValueError(f"a low-frequency basis needs a cell of at least 2 pixels, got {cell}")
        self.norm, self.eps, self.basis, self.cell = norm, eps, basis, int(cell)
        self.delta: torch.Tensor | None = None
        self._x: torch.Tensor | None = None
        self._mask: torch.Tensor | None = None

    def reset(self, x: torch.Tensor, widths: torch.Tensor | None = None, start: float | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
        self._x = x.detach()
        self._mask = width_mask(x, widths) if widths is not None else None
        n, c, h, w = self._x.shape
        shape = (n, c, h, w) if self.basis == "pixel" else (n, c, -(-h // self.cell), -(-w // self.cell))
        self.delta = self._x.new_zeros(shape)
        if start:
            # drawn on the CPU, where the generators live: the same start on every device
            noise = torch.empty(shape).uniform_(-1.0, 1.0, generator=generator)
            self.delta.copy_(noise.to(self.delta.device) * to_pixels(start))
            self.project()
        self.delta.requires_grad_(True)
        return self.delta

    def full(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The perturbation at the image's resolution (of ``rows`` only, when given)."""
        if self.delta is None or self._x is None:
            raise RuntimeError("AdversarialLayer: call reset(x) for this batch first")
        d = self.delta if rows is None else self.delta[rows]
        if self.basis == "pixel":
            return d
        up = F.interpolate(d, size=self._x.shape[-2:], mode="bilinear", align_corners=False)
        if self._mask is not None:
            up = up * (self._mask if rows is None else self._mask[rows])
        return up

    def forward(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """``clip(x + delta)``; with ``rows`` only those lines (a compacted batch), the
        gradient still reaching the whole ``delta``."""
        if self._x is None or self._x.shape != x.shape:
            raise RuntimeError("AdversarialLayer: call reset(x) for this batch first")
        return ((x if rows is None else x[rows]) + self.full(rows)).clamp(0, PIXEL_MAX)

    def project(self) -> None:
        assert self.delta is not None and self._x is not None  # set by reset()
        eps_px = to_pixels(self.eps) if self.eps is not None else None
        if self.basis == "pixel":
            project_(self.delta.data, self._x, self.norm, eps_px, self._mask)
            return
        with torch.no_grad():
            if self.norm == "linf" and eps_px is not None:
                self.delta.data.clamp_(-eps_px, eps_px)
            elif self.norm == "l2" and eps_px is not None:
                n = self.full().flatten(1).norm(dim=1).clamp(min=1e-12)  # linear in the grid: exact
                self.delta.data.mul_((eps_px / n).clamp(max=1.0).view(-1, 1, 1, 1))


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
