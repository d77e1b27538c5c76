"""The patch GAN of seed 001 (METHODS.md section 2): a generator that fills a masked
rectangle of a line image from its surroundings, trained against a small discriminator, so
that region dropout's hole has the pixel statistics of real documents (paper, ink,
watermark strokes) instead of flat grey or noise.

- :class:`PatchGenerator`: input the line with its hole blanked, the hole's mask and the
  level of the hole's surroundings (3 channels, ``HEIGHT`` rows, any width); an encoder of
  4 stride-2 convolutions and a decoder of 4 upsample+conv blocks, LeakyReLU 0.2; output a
  whole image in 0..255 (the surroundings' level plus a learned offset), of which
  :meth:`PatchGenerator.fill` keeps the hole only. Fully convolutional: one forward fills
  every hole of a padded batch.
- :class:`PatchDiscriminator`: 3 stride-2 convolutions with BatchNorm, flatten, a linear
  layer and a sigmoid, on ``HEIGHT x WINDOW`` windows.
- :func:`train_patchgan`: windows of real line images, one Random Erasing hole each; the
  generator's loss is the L1 reconstruction of the hole plus ``adv_weight`` times the
  adversarial loss; each epoch writes a gallery (masked, filled, original) and the
  validation L1 on the holes. ``ocr-robust patchgan train`` runs it.

Saved as ``generator.safetensors`` (its config in the metadata, read back with
:func:`load_generator`, no code executed) and ``patchgan.json`` (the config and history).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.dataset import LineDataset
from ..errors import InputError
from ..images import HEIGHT, PIXEL_MAX
from .erase import EraseSpec, box_mask, erase_boxes
from .io import load_module, save_module

__all__ = ["WINDOW", "GeneratorConfig", "PatchGenerator", "PatchDiscriminator", "PatchGANConfig", "train_patchgan",
           "load_generator", "GENERATOR_FILE", "surround_level",
           "line_windows"]

WINDOW = 128  # training windows: HEIGHT x WINDOW pixels cut from lines (the discriminator's input size)
GENERATOR_FILE = "generator.safetensors"
_MULTIPLE = 16  # 4 stride-2 levels: widths are padded to a multiple of 16 for the generator


@dataclass(frozen=True)
class GeneratorConfig:
    channels: int = 32


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


def surround_level(x: torch.Tensor, mask: torch.Tensor, k: int = 31) -> torch.Tensor:
    """Per pixel, the mean of the visible pixels (``mask`` 0) in a ``k x k`` box around it;
    where the box sees too few of them (the middle of a big hole), the line's visible mean."""
    vis = 1 - mask
    num = F.avg_pool2d(x * vis, k, stride=1, padding=k // 2, count_include_pad=False)
    den = F.avg_pool2d(vis, k, stride=1, padding=k // 2, count_include_pad=False)
    line = (x * vis).sum((1, 2, 3), keepdim=True) / vis.sum((1, 2, 3), keepdim=True).clamp(min=1)
    return torch.where(den > 0.05, num / den.clamp(min=1e-6), line.expand_as(x))


class PatchGenerator(nn.Module):
    """Encoder of 4 stride-2 convolutions, decoder of 4 (upsample x2, conv) blocks, LeakyReLU
    0.2 between them; input ``N x 3 x H x W`` (the blanked line, the mask, the surroundings'
    level, each in -1..1 or 0..1), output ``N x 1 x H x W`` in 0..255: the level plus a
    learned offset. ``H`` and ``W`` are padded to multiples of 16 inside."""

    def __init__(self, cfg: GeneratorConfig | None = None):
        super().__init__()
        self.cfg = cfg or GeneratorConfig()
        c = self.cfg.channels
        chans = [3, c, 2 * c, 4 * c, 4 * c]
        self.encoder = nn.Sequential(*[m for i in range(4) for m in (
            nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1), _act())])
        dec = []
        back = [4 * c, 4 * c, 2 * c, c, c]
        for i in range(4):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(back[i], back[i + 1], 3, padding=1), _act()]
        self.decoder = nn.Sequential(*dec, nn.Conv2d(c, 1, 3, padding=1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` N x 1 x H x W in 0..255 (its hole is blanked here), ``mask`` 1 in the hole:
        the generated image, 0..255, the same size. The network predicts the fill as an
        offset from the surroundings' level (:func:`surround_level`), so that its start, and
        its floor, is a fill of the hole's own background, not of a global grey."""
        h, w = x.shape[-2:]
        ph, pw = -h % _MULTIPLE, -w % _MULTIPLE
        level = surround_level(x, mask)
        inp = torch.cat([(x / PIXEL_MAX * 2 - 1) * (1 - mask), mask, level / PIXEL_MAX * 2 - 1], 1)
        if ph or pw:
            inp = F.pad(inp, (0, pw, 0, ph), mode="replicate")
        offset = torch.tanh(self.decoder(self.encoder(inp)))[..., :h, :w] * (PIXEL_MAX / 2)
        return (level + offset).clamp(0, PIXEL_MAX)

    def fill(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` with its hole (and only its hole) replaced by the generator's pixels."""
        return x * (1 - mask) + self(x, mask) * mask

    @torch.no_grad()
    def generate(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The generated image (in eval mode, no gradient): region dropout's fill."""
        was = self.training
        self.eval()
        try:
            dev = next(self.parameters()).device
            return self(x.to(dev), mask.to(dev)).to(x.device)
        finally:
            self.train(was)


class PatchDiscriminator(nn.Module):
    """3 stride-2 convolutions with BatchNorm and LeakyReLU 0.2, flatten, linear, sigmoid:
    the probability that a ``HEIGHT x WINDOW`` window is a real line, not a filled one."""

    def __init__(self, channels: int = 32, height: int = HEIGHT, width: int = WINDOW):
        super().__init__()
        c = channels
        layers: list[nn.Module] = []
        for cin, cout in ((1, c), (c, 2 * c), (2 * c, 4 * c)):
            layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), _act()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(4 * c * (height // 8) * (width // 8), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x / PIXEL_MAX * 2 - 1)
        return torch.sigmoid(self.head(f.flatten(1))).squeeze(1)


@dataclass(frozen=True)
class PatchGANConfig:
    data: str
    out: str
    epochs: int = 5
    steps_per_epoch: int = 200
    batch_size: int = 32
    lr: float = 2e-4
    adv_weight: float = 0.01
    channels: int = 32
    erase_area: tuple[float, float] = (0.05, 0.25)  # a share of the window: larger than in training
    erase_aspect: tuple[float, float] = (0.3, 3.3)
    gallery: int = 8
    val_windows: int = 256
    seed: int = 0
    device: str = "auto"
    time_limit_min: float | None = None


def line_windows(ds: LineDataset, n: int, rng: random.Random) -> torch.Tensor:
    """``n`` windows of ``HEIGHT x WINDOW`` from random lines; a narrower line is padded on
    the right with its own edge (replicated), as a batch pads it."""
    out = np.empty((n, 1, HEIGHT, WINDOW), np.float32)
    for i in range(n):
        for _ in range(20):
            s = ds[rng.randrange(len(ds))]
            if s["image"] is not None:
                break
        else:
            raise InputError(ds.store.path, "20 line images in a row do not decode")
        img = s["image"]
        if img.shape[1] < WINDOW:
            img = np.pad(img, ((0, 0), (0, WINDOW - img.shape[1])), mode="edge")
        x0 = rng.randrange(img.shape[1] - WINDOW + 1)
        out[i, 0] = img[:, x0:x0 + WINDOW]
    return torch.from_numpy(out)


def _masks(n: int, spec: EraseSpec, rng: np.random.Generator) -> torch.Tensor:
    return box_mask((n, 1, HEIGHT, WINDOW), erase_boxes([WINDOW] * n, HEIGHT, spec, rng, always=True))


def _hole_l1(filled: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error on the hole's pixels, in 0..1 units."""
    return ((filled - real).abs() * mask).sum() / (mask.sum() * PIXEL_MAX).clamp(min=1)


def train_patchgan(cfg: PatchGANConfig, progress: bool = True) -> dict:
    """Train the generator and discriminator on ``cfg.data`` (any line store; labels are not
    used); write ``generator.safetensors``, ``patchgan.json`` and ``gallery/epoch-NNN/``
    under ``cfg.out``. Returns the history."""
    from ..evaluation.pages import write_gallery
    from ..runs import pick_device

    out = Path(cfg.out)
    ds = LineDataset.open(cfg.data)
    if len(ds) == 0:
        raise InputError(cfg.data, "no line images to train the patch GAN on")
    torch.manual_seed(cfg.seed)
    rng, nprng = random.Random(cfg.seed), np.random.default_rng(cfg.seed)
    device = pick_device(cfg.device)
    spec = EraseSpec(p=1.0, area=cfg.erase_area, aspect=cfg.erase_aspect)
    gen = PatchGenerator(GeneratorConfig(cfg.channels)).to(device)
    disc = PatchDiscriminator(cfg.channels).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    # fixed validation windows and holes: the gallery and the L1 compare like with like
    val_rng, val_np = random.Random(f"{cfg.seed}:val"), np.random.default_rng([cfg.seed, 1])
    val_x = line_windows(ds, max(cfg.val_windows, cfg.gallery), val_rng)
    val_m = _masks(val_x.shape[0], spec, val_np)
    out.mkdir(parents=True, exist_ok=True)
    history: list[dict] = []
    t_start = time.perf_counter()
    deadline = t_start + 60 * cfg.time_limit_min if cfg.time_limit_min else None
    stopped = "epochs"
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        sums = {"d_loss": 0.0, "g_adv": 0.0, "g_l1": 0.0}
        steps = 0
        gen.train()
        disc.train()
        for _ in range(cfg.steps_per_epoch):
            real = line_windows(ds, cfg.batch_size, rng).to(device)
            mask = _masks(cfg.batch_size, spec, nprng).to(device)
            filled = gen.fill(real, mask)
            # the discriminator: real windows toward 1, filled ones toward 0
            p_real, p_fake = disc(real), disc(filled.detach())
            d_loss = F.binary_cross_entropy(p_real, torch.ones_like(p_real)) + \
                F.binary_cross_entropy(p_fake, torch.zeros_like(p_fake))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            # the generator: the hole's pixels back, and a fill the discriminator takes for real
            p = disc(filled)
            g_adv = F.binary_cross_entropy(p, torch.ones_like(p))
            g_l1 = _hole_l1(filled, real, mask)
            opt_g.zero_grad(set_to_none=True)
            (g_l1 + cfg.adv_weight * g_adv).backward()
            opt_g.step()
            for k, v in (("d_loss", d_loss), ("g_adv", g_adv), ("g_l1", g_l1)):
                sums[k] += float(v.detach())
            steps += 1
            if deadline and time.perf_counter() > deadline:
                stopped = "time limit"
                break
        gen.eval()
        with torch.no_grad():
            vx, vm = val_x.to(device), val_m.to(device)
            vf = torch.cat([gen.fill(vx[i:i + 64], vm[i:i + 64]) for i in range(0, vx.shape[0], 64)])
            flat = vx * (1 - vm) + (vx * (1 - vm)).sum((1, 2, 3), keepdim=True) / (1 - vm).sum(
                (1, 2, 3), keepdim=True) * vm  # the flat fill (the window's mean outside the hole)
            rec = {"epoch": epoch, "steps": steps, **{k: v / max(1, steps) for k, v in sums.items()},
                   "val_hole_l1": float(_hole_l1(vf, vx, vm)), "val_hole_l1_flat": float(_hole_l1(flat, vx, vm)),
                   "epoch_seconds": time.perf_counter() - t0}
        history.append(rec)
        cells = []
        for i in range(min(cfg.gallery, vx.shape[0])):
            hole = vx[i, 0] * (1 - vm[i, 0]) + 128 * vm[i, 0]
            cells.append([(name, img.cpu().round().clamp(0, 255).byte().numpy()) for name, img in (
                ("masked", hole), ("filled", vf[i, 0]), ("original", vx[i, 0]))])
        write_gallery(cells, out / "gallery" / f"epoch-{epoch:03d}", f"patch GAN, epoch {epoch}",
                      f"Each row: the window with its hole (grey), the generator's fill, the original. Validation "
                      f"L1 on the holes {rec['val_hole_l1']:.4f} (the flat fill: {rec['val_hole_l1_flat']:.4f}).")
        save_module(gen, gen.cfg, out / GENERATOR_FILE, "generator")
        summary = {"format": "ocr-robust-patchgan", "config": {**asdict(cfg)}, "history": history,
                   "seconds": time.perf_counter() - t_start, "stopped": stopped}
        (out / "patchgan.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        if progress:
            print(f"epoch {epoch}: D {rec['d_loss']:.3f}  G adv {rec['g_adv']:.3f}  hole L1 {rec['g_l1']:.4f}  "
                  f"val hole L1 {rec['val_hole_l1']:.4f} (flat fill {rec['val_hole_l1_flat']:.4f})", flush=True)
        if stopped != "epochs":
            break
    return {"history": history, "stopped": stopped, "seconds": time.perf_counter() - t_start}


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> PatchGenerator:
    """The generator of a ``patchgan train`` folder (or its ``generator.safetensors``)."""
    return load_module(path, GENERATOR_FILE, "generator", lambda c: PatchGenerator(GeneratorConfig(**c)),
                       "patch GAN", "train one with `ocr-robust patchgan train`", device)
