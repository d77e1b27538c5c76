"""``realtime``: realtime adversarial data augmentation with confusable-character targets
(METHODS.md section 1, the product's method)."""

from __future__ import annotations

import random
from typing import Any

import torch

from ...adversarial.confusion import TextConfuser
from ...adversarial.perturb import AdversarialLayer, make_adv_optimizer, parse_eps, to_pixels
from ...charset import ConfusableTable
from ...data.dataset import LineBatch
from ...losses import ctc_per_line, encode_targets, padded_targets, reads_exactly
from ...models import CRNN
from .base import Batch, TrainingMode, forward, norm_option, per_sample, register_mode

__all__ = ["PRESETS", "RealtimeMode"]


_COMMON = {"confusables": "confusables:train", "confuse_rate": 0.05, "max_subs": 3, "fallback": "edit",
           "start": 0.0, "basis": "pixel", "cell": 8, "adv_momentum": 0.0, "plateau_tol": 0.02, "plateau_patience": 1}
PRESETS: dict[str, dict[str, Any]] = {
    # the seed's own configuration (METHODS.md section 1): unbounded, SGD on raw pixel gradients
    "seed": {**_COMMON, "norm": "none", "eps": None, "adv_optimizer": "sgd", "adv_lr": 20000.0, "max_inner_steps": 3},
    # the design search's best (benchmarks/RESULTS.md, issue 20): bounded, signed steps (the
    # strength no longer follows the gradient's scale), 2 inner steps: each line trains on its
    # clean image and one adversarial image, at 1.09x natural training's time per image
    "default": {**_COMMON, "norm": "linf", "eps": "8/255", "adv_optimizer": "sign", "adv_lr": "4/255",
                "max_inner_steps": 2},
}


@register_mode
class RealtimeMode(TrainingMode):
    """Realtime adversarial data augmentation (METHODS.md section 1, seed 000).

    Per batch (S1-S6): the adversarial layer's perturbation is reset to zero; each inner
    step does ONE forward of ``clip(x + delta)`` and two backward passes: ``L2`` (CTC to the
    confused label) into ``delta`` only, stepped by the adversary optimizer (descending
    ``L2`` pushes the image toward the confused reading), and ``L1`` (CTC to the true label)
    into the weights only, accumulated. A line stops when the model reads its confused label
    (a success), when its ``L2`` has changed by less than ``plateau_tol`` (relative) for
    ``plateau_patience`` steps in a row (reachable: at most ``max_inner_steps`` - 2; with 2
    inner steps, the default, L2's change is known only at the last step, so success is the
    one rule that stops a line early), or at ``max_inner_steps``; a line with no confused
    target is trained on clean, once. A line that has stopped leaves the batch: each step
    runs the model on the active lines only, and success is checked on the device
    (``losses.reads_exactly``). The accumulated weight
    gradient is divided by the number of images it summed, so the Trainer's one optimizer
    step equals a step on one big batch of every intermediate adversarial image.

    Options start from a named ``preset`` (:data:`PRESETS`); any option given replaces the
    preset's. ``seed`` is the seed's own configuration: unbounded (``norm: none``), SGD with
    ``adv_lr`` 20000 on raw pixel gradients (CTC gradients per pixel are about 1e-4..1e-3 on
    a trained model, so a pixel moves a few levels per step). ``default`` bounds the
    perturbation (``norm: linf``, ``eps``) and takes signed steps of ``adv_lr`` in 0..1
    image units (``adv_optimizer: sign``), whose strength does not follow the gradient's
    scale. ``start`` (0..1 units, default 0: the seed's zero start) draws the perturbation's
    start uniformly in ``[-start, start]``: the first inner step then trains on a noisy image
    instead of the clean one (the random start of FGSM-RS, the noise of N-FGSM). ``basis:
    lowfreq`` (with ``cell``, default 8 pixels) lets the adversary change only the shade,
    smoothly, on a coarse grid upsampled to the line (:class:`AdversarialLayer`): the
    perturbations documents suffer (uneven paper, stains, a watermark's tint) rather than
    thin strokes.
    """

    name = "realtime"
    sampler = "hard"  # the lines the model gets wrong come back more often
    notext_rate = 0.05  # no-text images keep it from reading text into watermark strokes

    def __init__(self, preset: str = "default", confusables: str | None = None, confuse_rate: float | None = None,
                 max_subs: int | None = None, fallback: str | None = None, norm: str | None = None,
                 eps: str | float | None = None, start: str | float | None = None, basis: str | None = None,
                 cell: int | None = None, adv_optimizer: str | None = None,
                 adv_lr: str | float | None = None,
                 adv_momentum: float | None = None, max_inner_steps: int | None = None,
                 plateau_tol: float | None = None, plateau_patience: int | None = None):
        if preset not in PRESETS:
            raise ValueError(f"unknown realtime preset {preset!r}; choose from {', '.join(PRESETS)}")
        given = {k: v for k, v in locals().items() if k not in ("self", "preset", "__class__") and v is not None}
        o = {**PRESETS[preset], **given}
        self.preset, self.options = preset, o
        self.norm, self.eps = norm_option(o["norm"]), parse_eps(o["eps"])
        self.layer = AdversarialLayer(self.norm, self.eps, basis=str(o["basis"]), cell=int(o["cell"]))
        self.start = parse_eps(o["start"]) or 0.0
        self.table_name = o["confusables"]
        self.confuse_opts: dict[str, Any] = {"rate": float(o["confuse_rate"]), "max_subs": int(o["max_subs"]),
                                             "fallback": o["fallback"]}
        self.adv_optimizer, self.adv_momentum = o["adv_optimizer"], float(o["adv_momentum"])
        # sign steps are a size in 0..1 image units ("2/255"); sgd and adam a rate on raw pixel gradients
        self.adv_lr = to_pixels(parse_eps(o["adv_lr"]) or 0.0) if self.adv_optimizer == "sign" else float(o["adv_lr"])
        self.max_inner_steps = int(o["max_inner_steps"])
        self.plateau_tol, self.plateau_patience = float(o["plateau_tol"]), int(o["plateau_patience"])
        if self.max_inner_steps < 1:
            raise ValueError("max_inner_steps must be at least 1")
        if self.max_inner_steps > 2 and not 1 <= self.plateau_patience <= self.max_inner_steps - 2:
            # L2's change is first known at step 2; a rule that could fire only at the last
            # step (or never) would save nothing
            raise ValueError(f"plateau_patience {self.plateau_patience} can never stop a line before the last of "
                             f"{self.max_inner_steps} inner steps: use 1 to {self.max_inner_steps - 2}")
        make_adv_optimizer(self.adv_optimizer, [torch.zeros(1, requires_grad=True)], self.adv_lr)  # validate early
        self.confuser: TextConfuser | None = None
        self.trace: list | None = None  # set to [] to record (confused labels, [(input, active)]) per batch

    def confuser_for(self, charset) -> TextConfuser:
        if self.confuser is None or self.confuser.charset is not charset:
            self.confuser = TextConfuser(ConfusableTable.load(self.table_name, charset), charset, **self.confuse_opts)
        return self.confuser

    def val_attack(self) -> dict:
        """The epoch-end validation attack (S8's easy share, the human-check page): this
        adversary's budget with sign (PGD-style) steps of eps/4, at least 10 of them. Not the
        adversary's own raw-gradient steps, whose strength follows the gradient's scale, so
        that the easy share means the same from epoch to epoch; unbounded: 8/255."""
        eps = self.eps if self.eps is not None else 8 / 255
        norm = self.norm or "linf"
        return {"eps": eps, "norm": norm, "steps": max(10, self.max_inner_steps), "rule": "sign" if norm == "linf"
                else "l2", "step_size": eps / 4}

    def step(self, model: CRNN, batch: LineBatch, ctx) -> dict[str, float]:
        b = Batch(batch, ctx.device)
        n = b.x.shape[0]
        rng = random.Random(f"{ctx.seed}:realtime:{ctx.step}")
        confused = [self.confuser_for(ctx.charset).confuse(t, rng) for t in batch["texts"]]
        c_targets, c_lengths = encode_targets(confused, ctx.charset)
        c_padded = padded_targets(c_targets, c_lengths).to(ctx.device)
        dev = ctx.device
        # a line with no confused target (fallback "none" found nothing to confuse) has no L2 to
        # descend: descending the CTC of its own text would make it easier, so it is left clean
        no_target = torch.tensor([c == t for c, t in zip(confused, batch["texts"])], device=dev)
        params = [p for p in model.parameters() if p.requires_grad]
        # S1: the perturbation starts at zero (or, with ``start``, uniform noise of that size),
        # with its own optimizer and no gradient
        gen = torch.Generator().manual_seed(rng.getrandbits(63)) if self.start else None
        delta = self.layer.reset(b.x, b.widths, start=self.start, generator=gen)
        adv_opt = make_adv_optimizer(self.adv_optimizer, [delta], self.adv_lr, self.adv_momentum)
        adv_opt.zero_grad(set_to_none=True)
        active = torch.ones(n, dtype=torch.bool, device=dev)
        success = torch.zeros(n, dtype=torch.bool, device=dev)
        used = torch.zeros(n, device=dev)
        flat = torch.zeros(n, dtype=torch.long, device=dev)
        prev_l2 = torch.zeros(n, device=dev)
        first: dict = {}
        for k in range(self.max_inner_steps):
            # S2-S3: one forward of the lines still active only (the batch compacted), both losses
            live = active.clone()
            rows = live.nonzero().flatten().cpu()
            x_in = self.layer(b.x, None if bool(live.all()) else rows.to(dev))
            if self.trace is not None:
                if k == 0:
                    self.trace.append((confused, []))
                self.trace[-1][1].append((self.layer(b.x).detach().clone(), live.clone()))
            logp = forward(model, x_in, ctx)
            widths, c_len = b.widths[rows], c_lengths[rows]
            c_rows = c_padded[rows.to(dev)]
            l1 = b.loss(logp, rows)  # CTC to the true text (mixed with the teachers' KL when distilling)
            l2 = ctc_per_line(logp, c_rows[c_rows >= 0], c_len, widths)
            l2_full = torch.zeros(n, device=dev).masked_scatter(live, l2.detach().float())
            used += live.float()
            if k == 0:
                first = {"l1": l1.detach(), "logp": logp.detach()}
            # S5: stop a line on success (it reads the confused label) or when L2 is flat; the
            # reading is checked on the device, without decoding to text
            hit = torch.zeros(n, dtype=torch.bool, device=dev).masked_scatter(
                live, reads_exactly(logp, widths, c_rows, c_len)) & ~no_target
            success |= hit & active
            if k > 0:
                change = (l2_full - prev_l2).abs() / prev_l2.abs().clamp(min=1e-3)
                flat = torch.where(change < self.plateau_tol, flat + 1, torch.zeros_like(flat))
            prev_l2 = torch.where(live, l2_full, prev_l2)
            still = active & ~(hit | no_target | (flat >= self.plateau_patience))  # a clean line: one pass is enough
            last = k == self.max_inner_steps - 1 or not bool(still.any())
            # S4: L2 to the perturbation only (not after the last step: it would move nothing),
            # L1 to the weights only (accumulated)
            w2 = (~no_target[live]).to(l2.dtype)
            if not last:
                (g_delta,) = torch.autograd.grad((l2 * w2).sum(), delta, retain_graph=True)
            l1.sum().backward(inputs=params)
            active = still
            if last:
                break
            delta.grad = g_delta * active.to(g_delta.dtype).view(-1, 1, 1, 1)
            adv_opt.step()
            self.layer.project()
        # S6 (scaling): the mean over every image the weights were trained on
        total = float(used.sum())
        for p in params:
            if p.grad is not None:
                p.grad.div_(total)
        pert = (self.layer(b.x) - b.x).detach().abs()
        stats = {"loss": float(first["l1"].mean()), "adv_success": float(success.float().mean()),
                 "inner_steps": float(used.mean()), "l2_confused": float(prev_l2.mean()),
                 "delta_linf": float(pert.flatten(1).amax(1).mean() / 255.0)}
        return per_sample(stats, first["l1"], first["logp"], batch, ctx)
