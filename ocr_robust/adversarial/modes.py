"""Adversarial training modes, each one class with ``step(model, batch, ctx) -> stats`` as
the Trainer expects (see ``ocr_robust.training``): the step leaves the gradient of the
weights in ``.grad``; the Trainer clips it and steps the training optimizer.

- ``realtime``: realtime adversarial data augmentation with confusable-character targets
  (METHODS.md section 1, the product's method);
- ``pgd-at`` (Madry et al. 2018), ``free-at`` (Shafahi et al. 2019), ``fgsm-rs`` (Wong et
  al. 2020), ``nsl`` (adversarial regularisation in the style of Neural Structured Learning,
  METHODS.md section 4) and ``trades`` (Zhang et al. 2019): the defences it must beat.

Budgets are in 0..1 image units (``eps: 4/255``); the perturbation lives in the model's
0..255 pixel space and never touches a line's padding.
"""

from __future__ import annotations

import random
from typing import Any, cast

import torch

from ..charset import ConfusableTable
from ..losses import ctc_per_line, encode_targets, frame_kl
from ..models import CRNN, autocast
from .attacks import perturb, pgd, read_texts
from .confusion import TextConfuser
from .perturb import AdversarialLayer, make_adv_optimizer, parse_eps, project_, to_pixels, width_mask


def _norm(value: Any) -> str | None:
    return None if value in (None, "", "none", "None") else str(value)


def _forward(model, x, ctx):
    with autocast(ctx.device, ctx.amp):
        return model(x)


def read_correct(logp: torch.Tensor, batch: dict, charset) -> list[bool]:
    """Whether each line of the batch is read exactly (greedy) from ``logp``."""
    return [p == t for p, t in zip(read_texts(logp, batch["widths"], charset), batch["texts"])]


def per_sample(stats: dict, losses: torch.Tensor, logp: torch.Tensor, batch: dict, ctx) -> dict:
    """Add the per-line feedback the hard-example sampler uses (when the Trainer asks)."""
    if getattr(ctx, "feedback", False):
        stats["sample_loss"] = losses.detach().float().cpu().tolist()
        stats["sample_correct"] = read_correct(logp, batch, ctx.charset)
    return stats


class _Batch:
    """The tensors of a collated batch on the device."""

    def __init__(self, batch: dict, device: torch.device):
        self.x = batch["images"].to(device, non_blocking=True)
        self.widths = batch["widths"]
        self.targets, self.lengths = batch["targets"], batch["target_lengths"]

    def loss(self, logp: torch.Tensor) -> torch.Tensor:
        return ctc_per_line(logp, self.targets, self.lengths, self.widths)


class RealtimeMode:
    """Realtime adversarial data augmentation (METHODS.md section 1, seed 000).

    Per batch (S1-S6): the adversarial layer's perturbation is reset to zero; each inner
    step does ONE forward of ``clip(x + delta)`` and two backward passes: ``L2`` (CTC to the
    confused label) into ``delta`` only, stepped by the adversary optimizer (descending
    ``L2`` pushes the image toward the confused reading), and ``L1`` (CTC to the true label)
    into the weights only, accumulated. A line stops when the model reads its confused label
    (a success), when its ``L2`` has changed by less than ``plateau_tol`` (relative) for
    ``plateau_patience`` steps, or at ``max_inner_steps``. The accumulated weight gradient
    is divided by the number of images it summed, so the Trainer's one optimizer step equals
    a step on one big batch of every intermediate adversarial image.

    ``adv_lr`` is the adversary's SGD learning rate on raw pixels: CTC gradients per pixel are
    about 1e-4..1e-3 on a trained model, so the default 20000 moves a pixel by a few levels
    per step. ``norm: none`` (default) is the seed's unbounded mode; ``norm: linf`` or ``l2`` with
    ``eps`` bounds the perturbation by projection.
    """

    name = "realtime"

    def __init__(self, confusables: str = "confusables", confuse_rate: float = 0.05, max_subs: int = 3,
                 fallback: str = "edit", norm: str | None = None, eps: str | float | None = None,
                 adv_optimizer: str = "sgd", adv_lr: float = 20000.0, adv_momentum: float = 0.0,
                 max_inner_steps: int = 3, plateau_tol: float = 0.02, plateau_patience: int = 2):
        self.norm, self.eps = _norm(norm), parse_eps(eps)
        self.layer = AdversarialLayer(self.norm, self.eps)
        self.table_name = confusables
        self.confuse_opts: dict[str, Any] = {"rate": float(confuse_rate), "max_subs": int(max_subs),
                                             "fallback": fallback}
        self.adv_optimizer, self.adv_lr, self.adv_momentum = adv_optimizer, float(adv_lr), float(adv_momentum)
        self.max_inner_steps = int(max_inner_steps)
        self.plateau_tol, self.plateau_patience = float(plateau_tol), int(plateau_patience)
        if self.max_inner_steps < 1:
            raise ValueError("max_inner_steps must be at least 1")
        make_adv_optimizer(adv_optimizer, [torch.zeros(1, requires_grad=True)], self.adv_lr)  # validate early
        self.confuser: TextConfuser | None = None
        self.trace: list | None = None  # set to [] to record (confused labels, [(input, active)]) per batch

    def confuser_for(self, charset) -> TextConfuser:
        if self.confuser is None or self.confuser.charset is not charset:
            self.confuser = TextConfuser(ConfusableTable.load(self.table_name, charset), charset, **self.confuse_opts)
        return self.confuser

    def val_attack(self) -> dict:
        """This adversary as an evaluation attack (the epoch-end validation attack, S8)."""
        return {"eps": self.eps, "norm": self.norm, "steps": self.max_inner_steps, "rule": "sgd",
                "step_size": self.adv_lr}

    def step(self, model: CRNN, batch: dict, ctx) -> dict[str, float]:
        b = _Batch(batch, ctx.device)
        n = b.x.shape[0]
        rng = random.Random(f"{ctx.seed}:realtime:{ctx.step}")
        confused = [self.confuser_for(ctx.charset).confuse(t, rng) for t in batch["texts"]]
        c_targets, c_lengths = encode_targets(confused, ctx.charset)
        params = [p for p in model.parameters() if p.requires_grad]
        # S1: the perturbation starts at zero, with its own optimizer and no gradient
        delta = self.layer.reset(b.x, b.widths)
        adv_opt = make_adv_optimizer(self.adv_optimizer, [delta], self.adv_lr, self.adv_momentum)
        adv_opt.zero_grad(set_to_none=True)
        active = torch.ones(n, dtype=torch.bool)
        success = torch.zeros(n, dtype=torch.bool)
        used = torch.zeros(n)
        flat = torch.zeros(n, dtype=torch.long)
        prev_l2: torch.Tensor | None = None
        first: dict = {}
        for k in range(self.max_inner_steps):
            # S2-S3: one forward, both losses
            x_in = self.layer(b.x)
            if self.trace is not None:
                if k == 0:
                    self.trace.append((confused, []))
                self.trace[-1][1].append((x_in.detach().clone(), active.clone()))
            logp = _forward(model, x_in, ctx)
            l1 = b.loss(logp)
            l2 = ctc_per_line(logp, c_targets, c_lengths, b.widths)
            w = active.to(l1.device, l1.dtype)
            # S4: L2 to the perturbation only, L1 to the weights only (accumulated)
            (g_delta,) = torch.autograd.grad((l2 * w).sum(), delta, retain_graph=True)
            (l1 * w).sum().backward(inputs=params)
            used += active.float()
            if k == 0:
                first = {"l1": l1.detach(), "logp": logp.detach()}
            # S5: stop a line on success (it reads the confused label) or when L2 is flat
            hit = torch.tensor([p == c for p, c in zip(read_texts(logp, b.widths, ctx.charset), confused)])
            success |= hit & active
            l2c = l2.detach().cpu()
            if prev_l2 is not None:
                change = (l2c - prev_l2).abs() / prev_l2.abs().clamp(min=1e-3)
                flat = torch.where(change < self.plateau_tol, flat + 1, torch.zeros_like(flat))
            prev_l2 = l2c
            active &= ~(hit | (flat >= self.plateau_patience))
            if not active.any() or k == self.max_inner_steps - 1:
                break
            delta.grad = g_delta * active.to(g_delta.device, g_delta.dtype).view(-1, 1, 1, 1)
            adv_opt.step()
            self.layer.project()
        # S6 (scaling): the mean over every image the weights were trained on
        total = float(used.sum())
        for p in params:
            if p.grad is not None:
                p.grad.div_(total)
        pert = (self.layer(b.x) - b.x).detach().abs()
        assert prev_l2 is not None  # the loop ran at least once (max_inner_steps >= 1)
        stats = {"loss": float(first["l1"].mean()), "adv_success": float(success.float().mean()),
                 "inner_steps": float(used.mean()), "l2_confused": float(prev_l2.mean()),
                 "delta_linf": float(pert.flatten(1).amax(1).mean() / 255.0)}
        return per_sample(stats, first["l1"], first["logp"], batch, ctx)


class _BoundedAttackMode:
    """Shared options of the attack-based baselines: budget and PGD settings."""

    name: str  # set by each mode

    def __init__(self, eps: str | float = "4/255", norm: str = "linf", steps: int = 5,
                 step_size: str | float | None = None):
        self.eps = cast(float, parse_eps(eps))  # these modes need a budget: None (from "") fails later
        self.norm = _norm(norm) or "linf"
        self.steps = int(steps)
        self.step_size = parse_eps(step_size)

    def generator(self, ctx) -> torch.Generator:
        key = f"{ctx.seed}:{self.name}:{ctx.step}:{getattr(ctx, 'replay', 0)}"
        return torch.Generator().manual_seed(random.Random(key).getrandbits(63))


class PGDATMode(_BoundedAttackMode):
    """PGD adversarial training (Madry et al. 2018): train on the PGD example only."""

    name = "pgd-at"

    def step(self, model, batch, ctx):
        b = _Batch(batch, ctx.device)
        r = pgd(model, b.x, b.widths, b.targets, b.lengths, self.eps, self.norm, steps=self.steps,
                step_size=self.step_size, random_start=True, generator=self.generator(ctx), amp=ctx.amp)
        logp = _forward(model, r.x_adv, ctx)
        losses = b.loss(logp)
        losses.mean().backward()
        return per_sample({"loss": float(losses.detach().mean())}, losses, logp, batch, ctx)


class FGSMRSMode(_BoundedAttackMode):
    """FGSM with a random start (Wong et al. 2020): one step of 1.25 eps from a uniform
    start in the eps ball, then train on that example."""

    name = "fgsm-rs"

    def step(self, model, batch, ctx):
        b = _Batch(batch, ctx.device)
        step = self.step_size if self.step_size is not None else 1.25 * self.eps
        r = perturb(model, b.x, b.widths, b.targets, b.lengths, eps=self.eps, norm=self.norm, steps=1,
                    step_size=step, random_start=True, generator=self.generator(ctx), amp=ctx.amp)
        logp = _forward(model, r.x_adv, ctx)
        losses = b.loss(logp)
        losses.mean().backward()
        return per_sample({"loss": float(losses.detach().mean())}, losses, logp, batch, ctx)


class FreeATMode(_BoundedAttackMode):
    """Free adversarial training (Shafahi et al. 2019): each batch is replayed ``replays``
    times; every replay's single backward gives the weights' gradient (the Trainer steps the
    optimizer after each) and the perturbation's, which takes an ``eps`` sign step. The
    perturbation starts at zero for each batch (batches differ in width)."""

    name = "free-at"

    def __init__(self, replays: int = 4, **kw):
        super().__init__(**kw)
        self.replays = int(replays)
        self.delta: torch.Tensor | None = None

    def step(self, model, batch, ctx):
        b = _Batch(batch, ctx.device)
        if getattr(ctx, "replay", 0) == 0 or self.delta is None or self.delta.shape != b.x.shape:
            self.delta = torch.zeros_like(b.x)
        delta = self.delta.requires_grad_(True)
        logp = _forward(model, (b.x + delta).clamp(0, 255), ctx)
        losses = b.loss(logp)
        params = [p for p in model.parameters() if p.requires_grad]
        losses.mean().backward(inputs=params + [delta])
        with torch.no_grad():
            step = self.step_size if self.step_size is not None else self.eps
            assert delta.grad is not None  # the backward above reached delta
            d = delta.detach() + to_pixels(step) * delta.grad.sign()
            self.delta = project_(d, b.x, self.norm, to_pixels(self.eps), width_mask(b.x, b.widths))
        return per_sample({"loss": float(losses.detach().mean())}, losses, logp, batch, ctx)


class NSLMode:
    """Adversarial regularisation in the style of Neural Structured Learning (METHODS.md
    section 4): ``loss(x) + multiplier * loss(x + step * sign(grad_x loss(x)))``, the
    neighbour an FGSM step. ``step_size`` is in the model's normalised units (the seed's
    0.2), one unit being 127.5 pixel levels here."""

    name = "nsl"

    def __init__(self, multiplier: float = 0.2, step_size: float = 0.2):
        self.multiplier, self.step_size = float(multiplier), float(step_size)

    def step(self, model, batch, ctx):
        b = _Batch(batch, ctx.device)
        x = b.x.detach().requires_grad_(True)
        logp = _forward(model, x, ctx)
        losses = b.loss(logp)
        (g,) = torch.autograd.grad(losses.sum(), x, retain_graph=True)
        with torch.no_grad():
            x_n = (x + self.step_size * 127.5 * g.sign() * width_mask(x, b.widths)).clamp(0, 255)
        adv = b.loss(_forward(model, x_n, ctx))
        (losses.mean() + self.multiplier * adv.mean()).backward()
        stats = {"loss": float(losses.detach().mean()), "adv_loss": float(adv.detach().mean())}
        return per_sample(stats, losses, logp, batch, ctx)


class TRADESMode(_BoundedAttackMode):
    """TRADES (Zhang et al. 2019): ``CTC(f(x), y) + beta * KL(f(x) || f(x'))``, with ``x'``
    found by PGD ascending the KL from a small random start. The KL is summed over a line's
    frames and divided by its label length, the scale of the CTC term."""

    name = "trades"

    def __init__(self, beta: float = 1.0, **kw):
        super().__init__(**kw)
        self.beta = float(beta)

    def step(self, model, batch, ctx):
        b = _Batch(batch, ctx.device)
        mask = width_mask(b.x, b.widths)
        eps_px = to_pixels(self.eps)
        step_px = to_pixels(self.step_size if self.step_size is not None else 2.5 * self.eps / max(1, self.steps))
        denom = b.lengths.clamp(min=1).float().to(b.x.device)
        with torch.no_grad():
            ref = _forward(model, b.x, ctx).detach()
        g_ = self.generator(ctx)
        delta = 0.001 * 255 * torch.randn(b.x.shape, generator=g_).to(b.x.device) * mask
        project_(delta, b.x, self.norm, eps_px, mask)
        for _ in range(self.steps):
            delta.requires_grad_(True)
            kl = frame_kl(ref, _forward(model, (b.x + delta).clamp(0, 255), ctx), b.widths)
            (g,) = torch.autograd.grad(kl.sum(), delta)
            with torch.no_grad():
                delta = delta.detach() + step_px * (g.sign() if self.norm == "linf" else
                                                    g / g.flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, 1, 1, 1))
                project_(delta, b.x, self.norm, eps_px, mask)
        logp = _forward(model, b.x, ctx)
        losses = b.loss(logp)
        robust = frame_kl(logp, _forward(model, (b.x + delta).clamp(0, 255), ctx), b.widths) / denom
        (losses.mean() + self.beta * robust.mean()).backward()
        stats = {"loss": float(losses.detach().mean()), "kl": float(robust.detach().mean())}
        return per_sample(stats, losses, logp, batch, ctx)


ADVERSARIAL_MODES: dict[str, type] = {m.name: m for m in (RealtimeMode, PGDATMode, FreeATMode, FGSMRSMode, NSLMode,
                                                            TRADESMode)}
