"""SAN, the self-adversarial background generator of seed 002 (METHODS.md section 3).

A generator ``G`` (noise ``z ~ N(0, I)`` to a ``HEIGHT x WINDOW`` grey image) and a
*reverser* ``R`` (image to ``z`` space) built as mirror images: each transposed
convolution of ``G`` has a convolution of ``R`` with a kernel of the same shape, and after
every update the pair is set to ``lambda * W_G + (1 - lambda) * W_R`` (:meth:`SAN.share`).

Blocks (seed 002): residual transposed-conv (``G``) and conv (``R``) blocks, each a channel
attention then the (transposed) convolution, PixelNorm and LeakyReLU, with a shortcut added;
region attention :class:`RPA` (compress to ``C*r`` channels at 1/2 resolution, conv back to
``C`` at 1/4, sigmoid, bilinear upsample, multiply); attention-based dropout :class:`ADO`
(two PixelNorm+conv layers give an attention map of the input's size; the features whose
attention is under ``threshold`` are zeroed, the others pass unchanged, and the attention
learns through a straight-through gradient). Each ``G`` stage is ADO, two attention/
transposed-conv blocks (the first doubles the resolution), RPA; each ``R`` stage mirrors it
(RPA, two attention/conv blocks, the second halving the resolution, ADO).

Losses (METHODS.md): generator ``WD(R(G(z)), z) + MSE(G(z), x)``; reverser ``WD(R(G(z)),
z) + WD(R(x), z)``; ``WD`` the Wasserstein distance in ``z`` space, estimated by a critic
trained with a gradient penalty (WGAN-GP, Gulrajani et al. 2017, :func:`gradient_penalty`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..images import HEIGHT, PIXEL_MAX

__all__ = ["SANConfig", "PixelNorm", "ChannelAttention", "RPA", "ADO", "UpBlock", "DownBlock", "GenStage", "RevStage",
           "Generator", "Reverser", "Critic", "SAN", "gradient_penalty", "BG_WIDTH", "SAN_FILE", "SANTrainConfig",
           "train_step", "Features", "frechet_distance", "train_san", "load_san"]

BG_WIDTH = 128  # the backgrounds SAN learns and makes: HEIGHT x BG_WIDTH
SAN_FILE = "san.safetensors"


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2)


class PixelNorm(nn.Module):
    """Each pixel's feature vector scaled to unit mean square over channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-8)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: a weight per channel from its global mean."""

    def __init__(self, c: int, r: int = 4):
        super().__init__()
        self.fc = nn.Sequential(nn.Conv2d(c, max(1, c // r), 1), _act(), nn.Conv2d(max(1, c // r), c, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((2, 3), keepdim=True))


class RPA(nn.Module):
    """Region attention: conv-PixelNorm-LReLU down to ``C*r`` channels at 1/2 resolution,
    conv-PixelNorm back to ``C`` at 1/4, sigmoid, bilinear upsample, multiply."""

    def __init__(self, c: int, r: float = 0.5):
        super().__init__()
        m = max(1, int(c * r))
        self.down = nn.Sequential(nn.Conv2d(c, m, 3, stride=2, padding=1), PixelNorm(), _act())
        self.back = nn.Sequential(nn.Conv2d(m, c, 3, stride=2, padding=1), PixelNorm())

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.back(self.down(x)))
        return F.interpolate(w, size=x.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class ADO(nn.Module):
    """Attention-based dropout: an attention map of the input's size (two PixelNorm+conv
    layers, LeakyReLU then sigmoid); features whose attention is under ``threshold`` are
    zeroed, the others pass unchanged. The attention's layers learn through a
    straight-through gradient (the forward value is exactly ``x * keep``)."""

    def __init__(self, c: int, threshold: float = 0.3):
        super().__init__()
        self.threshold = threshold
        self.att = nn.Sequential(PixelNorm(), nn.Conv2d(c, c, 3, padding=1), _act(),
                                 PixelNorm(), nn.Conv2d(c, c, 3, padding=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.att(x)
        keep = (a >= self.threshold).to(x.dtype)
        return x * (keep + (a - a.detach()))  # a - a.detach() is exactly 0: the value is x * keep


class UpBlock(nn.Module):
    """Residual: channel attention, transposed conv (``stride`` 2 doubles the size),
    PixelNorm, LeakyReLU; plus a shortcut (nearest upsample and a 1x1 conv)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        k = 4 if stride == 2 else 3
        self.att = ChannelAttention(cin)
        self.conv = nn.ConvTranspose2d(cin, cout, k, stride=stride, padding=1)
        self.post = nn.Sequential(PixelNorm(), _act())
        self.stride = stride
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.interpolate(x, scale_factor=2, mode="nearest") if self.stride == 2 else x
        return self.post(self.conv(self.att(x))) + self.skip(s)


class DownBlock(nn.Module):
    """The mirror of :class:`UpBlock`: channel attention, conv (``stride`` 2 halves the
    size) whose kernel has the shape of the matching transposed conv's, PixelNorm,
    LeakyReLU; plus a shortcut (average pool and a 1x1 conv)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        k = 4 if stride == 2 else 3
        self.att = ChannelAttention(cin)
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=1)
        self.post = nn.Sequential(PixelNorm(), _act())
        self.stride = stride
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.avg_pool2d(x, 2) if self.stride == 2 else x
        return self.post(self.conv(self.att(x))) + self.skip(s)


@dataclass(frozen=True)
class SANConfig:
    z_dim: int = 64
    channels: int = 32  # at full resolution; doubled at each coarser stage, at most 4x
    stages: int = 3  # 32 x 128 from 4 x 16
    share_lambda: float = 0.5
    ado_threshold: float = 0.3


def _widths(cfg: SANConfig) -> list[int]:
    """Channels from the coarsest stage to full resolution."""
    c = cfg.channels
    return [c * min(4, 2 ** (cfg.stages - i)) for i in range(cfg.stages + 1)]


class GenStage(nn.Module):
    """ADO, an upsampling and a same-size attention/transposed-conv block, RPA."""

    def __init__(self, cin: int, cout: int, threshold: float):
        super().__init__()
        self.ado, self.up, self.same, self.rpa = ADO(cin, threshold), UpBlock(cin, cout, 2), UpBlock(cout, cout, 1), \
            RPA(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rpa(self.same(self.up(self.ado(x))))


class RevStage(nn.Module):
    """The mirror of :class:`GenStage`: RPA, a same-size and a downsampling attention/conv
    block, ADO."""

    def __init__(self, cin: int, cout: int, threshold: float):
        super().__init__()
        self.rpa, self.same, self.down, self.ado = RPA(cin), DownBlock(cin, cin, 1), DownBlock(cin, cout, 2), \
            ADO(cout, threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ado(self.down(self.same(self.rpa(x))))


class Generator(nn.Module):
    """``z`` (N x z_dim) -> N x 1 x HEIGHT x BG_WIDTH in 0..255."""

    def __init__(self, cfg: SANConfig):
        super().__init__()
        self.cfg = cfg
        ch = _widths(cfg)
        self.h0, self.w0 = HEIGHT >> cfg.stages, BG_WIDTH >> cfg.stages
        self.fc = nn.Linear(cfg.z_dim, ch[0] * self.h0 * self.w0)
        self.stages: list[GenStage] = [GenStage(ch[i], ch[i + 1], cfg.ado_threshold) for i in range(cfg.stages)]
        self.blocks = nn.Sequential(*self.stages)
        self.out = nn.Conv2d(ch[-1], 1, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.fc(z), 0.2).view(z.shape[0], -1, self.h0, self.w0)
        return torch.sigmoid(self.out(self.blocks(x))) * PIXEL_MAX


class Reverser(nn.Module):
    """N x 1 x HEIGHT x BG_WIDTH (0..255) -> ``z`` space (N x z_dim); stage ``i`` mirrors
    the generator's stage ``stages - 1 - i``."""

    def __init__(self, cfg: SANConfig):
        super().__init__()
        self.cfg = cfg
        ch = _widths(cfg)[::-1]  # full resolution first
        self.inp = nn.Conv2d(1, ch[0], 3, padding=1)
        self.stages: list[RevStage] = [RevStage(ch[i], ch[i + 1], cfg.ado_threshold) for i in range(cfg.stages)]
        self.blocks = nn.Sequential(*self.stages)
        h0, w0 = HEIGHT >> cfg.stages, BG_WIDTH >> cfg.stages
        self.fc = nn.Linear(ch[-1] * h0 * w0, cfg.z_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.inp(x / PIXEL_MAX * 2 - 1), 0.2)
        return self.fc(self.blocks(h).flatten(1))


class Critic(nn.Module):
    """The Wasserstein critic in ``z`` space (an MLP), trained with a gradient penalty."""

    def __init__(self, z_dim: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), _act(), nn.Linear(hidden, hidden), _act(),
                                 nn.Linear(hidden, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(-1)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP: ``mean((||grad critic(x_hat)||_2 - 1)^2)`` at ``x_hat = alpha real + (1 -
    alpha) fake`` (``alpha`` uniform per sample unless given)."""
    if alpha is None:
        alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


class SAN(nn.Module):
    """The generator, the reverser and the critic, with the shared kernels paired."""

    def __init__(self, cfg: SANConfig | None = None):
        super().__init__()
        self.cfg = cfg or SANConfig()
        self.G, self.R, self.critic = Generator(self.cfg), Reverser(self.cfg), Critic(self.cfg.z_dim)
        n = self.cfg.stages
        self.pairs: list[tuple[nn.ConvTranspose2d, nn.Conv2d]] = []
        for i in range(n):
            g, r = self.G.stages[i], self.R.stages[n - 1 - i]
            # G's upsampling conv (c_i -> c_i+1) mirrors R's downsampling conv (c_i+1 -> c_i); the
            # same-size convs mirror each other: the kernels have one shape (in x out x k x k)
            self.pairs += [(g.up.conv, r.down.conv), (g.same.conv, r.same.conv)]
        for a, b in self.pairs:
            if a.weight.shape != b.weight.shape:  # pragma: no cover - a construction error
                raise AssertionError(f"shared kernels of shapes {tuple(a.weight.shape)} and {tuple(b.weight.shape)}")
        self.share()

    @torch.no_grad()
    def share(self, lam: float | None = None) -> None:
        """Set each shared pair to ``lam * W_G + (1 - lam) * W_R`` (both of them)."""
        lam = self.cfg.share_lambda if lam is None else lam
        for a, b in self.pairs:
            w = lam * a.weight + (1 - lam) * b.weight
            a.weight.copy_(w)
            b.weight.copy_(w)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.cfg.z_dim, generator=generator).to(next(self.parameters()).device)
        was = self.G.training
        self.G.eval()
        try:
            with torch.no_grad():
                return self.G(z)
        finally:
            self.G.train(was)


@dataclass(frozen=True)
class SANTrainConfig:
    data: str  # a store of text-free crops (backgrounds); labels unused
    out: str
    epochs: int = 5
    steps_per_epoch: int = 200
    batch_size: int = 32
    lr: float = 1e-4
    gp_weight: float = 10.0
    mse_weight: float = 1.0
    z_dim: int = 64
    channels: int = 32
    share_lambda: float = 0.5
    gallery: int = 16
    fid_samples: int = 512
    feature_model: str = ""  # a recognizer (run or export) whose CNN gives the FID-like features; "" = the shipped one
    seed: int = 0
    device: str = "auto"
    time_limit_min: float | None = None


def train_step(san: SAN, opts: dict, x: torch.Tensor, cfg: SANTrainConfig) -> dict[str, float]:
    """One SAN step on real backgrounds ``x``: the critic (WGAN-GP in z space), then the
    generator (``WD(R(G(z)), z) + MSE(G(z), x)``), then the reverser (``WD(R(G(z)), z) +
    WD(R(x), z)``), each with its own optimizer, then the shared kernels averaged."""
    n, dev = x.shape[0], x.device
    z, z_ref = torch.randn(n, san.cfg.z_dim, device=dev), torch.randn(n, san.cfg.z_dim, device=dev)
    G, R, D = san.G, san.R, san.critic
    # the critic: tells the prior's samples from what R makes of generated and real images
    with torch.no_grad():
        fake = G(z)
        rg, rx = R(fake), R(x)
    d_loss = (D(rg).mean() - D(z_ref).mean()) + (D(rx).mean() - D(z_ref).mean()) + cfg.gp_weight * (
        gradient_penalty(D, z_ref, rg) + gradient_penalty(D, z_ref, rx))
    opts["critic"].zero_grad(set_to_none=True)
    d_loss.backward()
    opts["critic"].step()
    # the generator: its images mapped back by R should look like the prior, and like real pixels
    fake = G(z)
    wd_g = D(z_ref).detach().mean() - D(R(fake)).mean()
    mse = F.mse_loss(fake / PIXEL_MAX, x / PIXEL_MAX)
    g_loss = wd_g + cfg.mse_weight * mse
    opts["G"].zero_grad(set_to_none=True)
    g_loss.backward(inputs=list(G.parameters()))
    opts["G"].step()
    # the reverser: both generated and real images mapped onto the prior
    wd_rg = D(z_ref).detach().mean() - D(R(fake.detach())).mean()
    wd_rx = D(z_ref).detach().mean() - D(R(x)).mean()
    r_loss = wd_rg + wd_rx
    opts["R"].zero_grad(set_to_none=True)
    r_loss.backward(inputs=list(R.parameters()))
    opts["R"].step()
    san.share()
    return {"critic": float(d_loss.detach()), "g_wd": float(wd_g.detach()), "g_mse": float(mse.detach()),
            "r_wd_fake": float(wd_rg.detach()), "r_wd_real": float(wd_rx.detach())}


class Features:
    """The FID-like distance's feature extractor: the CNN backbone of a recognizer trained
    here (no downloaded Inception), each image's features pooled over its frames (mean and
    standard deviation per channel)."""

    def __init__(self, model_path: str = "", device: str | torch.device = "cpu"):
        from ..inference import default_model
        from ..runs import load_torch_model

        self.model, _, _ = load_torch_model(model_path or default_model(), device)
        self.device = device

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        f = m.backbone((x.to(self.device) / m.pixel_max - 0.5) / 0.5).squeeze(2)  # N x C x T
        return torch.cat([f.mean(-1), f.std(-1)], 1).double().cpu()


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` between Gaussians fitted to
    the rows of ``a`` and ``b`` (the FID formula); the trace of the square root from the
    eigenvalues of ``S_a^(1/2) S_b S_a^(1/2)``."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = torch.cov(a.T), torch.cov(b.T)
    ev, vec = torch.linalg.eigh(sa)
    root = vec @ torch.diag(ev.clamp(min=0).sqrt()) @ vec.T
    cross = torch.linalg.eigvalsh(root @ sb @ root).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + sa.trace() + sb.trace() - 2 * cross)


def train_san(cfg: SANTrainConfig, progress: bool = True) -> dict:
    """Train SAN on ``cfg.data`` (text-free crops); per epoch write the gallery, the
    FID-like distance between real and generated backgrounds (and its plot), ``san.json``
    and ``san.safetensors`` (the generator, the reverser and the critic; its config in the
    metadata, read back by :func:`load_san`)."""
    import json
    import random
    import time
    from dataclasses import asdict
    from pathlib import Path

    from ..data.dataset import LineDataset
    from ..errors import InputError
    from ..evaluation.pages import write_gallery
    from ..runs import pick_device
    from .io import save_module
    from .patchgan import line_windows

    out = Path(cfg.out)
    ds = LineDataset.open(cfg.data)
    if len(ds) == 0:
        raise InputError(cfg.data, "no background images to train SAN on")
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    device = pick_device(cfg.device)
    san = SAN(SANConfig(z_dim=cfg.z_dim, channels=cfg.channels, share_lambda=cfg.share_lambda)).to(device)
    opts = {"G": torch.optim.Adam(san.G.parameters(), lr=cfg.lr, betas=(0.5, 0.9), weight_decay=1e-5),
            "R": torch.optim.Adam(san.R.parameters(), lr=cfg.lr, betas=(0.5, 0.9), weight_decay=1e-5),
            "critic": torch.optim.Adam(san.critic.parameters(), lr=cfg.lr, betas=(0.5, 0.9))}
    feats = Features(cfg.feature_model, device)
    real_eval = line_windows(ds, cfg.fid_samples, random.Random(f"{cfg.seed}:fid"))
    real_f = feats(real_eval)
    z_eval = torch.Generator().manual_seed(cfg.seed + 1)
    out.mkdir(parents=True, exist_ok=True)
    history: list[dict] = []
    t_start = time.perf_counter()
    deadline = t_start + 60 * cfg.time_limit_min if cfg.time_limit_min else None
    stopped = "epochs"
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        steps = 0
        for _ in range(cfg.steps_per_epoch):
            x = line_windows(ds, cfg.batch_size, rng).to(device)
            for k, v in train_step(san, opts, x, cfg).items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
            if deadline and time.perf_counter() > deadline:
                stopped = "time limit"
                break
        fake = torch.cat([san.sample(64, z_eval) for _ in range(0, cfg.fid_samples, 64)])[: cfg.fid_samples]
        rec = {"epoch": epoch, "steps": steps, **{k: v / max(1, steps) for k, v in sums.items()},
               "fid": frechet_distance(real_f, feats(fake)), "epoch_seconds": time.perf_counter() - t0}
        if epoch == 1:  # the floor: two halves of the real backgrounds
            half = real_f.shape[0] // 2
            rec["fid_real_halves"] = frechet_distance(real_f[:half], real_f[half:])
        history.append(rec)
        cells = [[("generated", fake[i, 0].round().byte().cpu().numpy()),
                  ("real", real_eval[i, 0].round().byte().numpy())] for i in range(min(cfg.gallery, fake.shape[0]))]
        write_gallery(cells, out / "gallery" / f"epoch-{epoch:03d}", f"SAN, epoch {epoch}",
                      f"Each row: a generated background, a real one. FID-like distance {rec['fid']:.3f}.")
        save_module(san, san.cfg, out / SAN_FILE, "san")
        (out / "san.json").write_text(json.dumps({"format": "ocr-robust-san", "config": asdict(cfg),
                                                   "history": history, "stopped": stopped,
                                                   "seconds": time.perf_counter() - t_start}, indent=1),
                                      encoding="utf-8")
        _plot(history, out / "fid.png")
        if progress:
            print(f"epoch {epoch}: critic {rec['critic']:.3f}  G wd {rec['g_wd']:.3f}  G mse {rec['g_mse']:.4f}  "
                  f"FID-like {rec['fid']:.3f}", flush=True)
        if stopped != "epochs":
            break
    return {"history": history, "stopped": stopped, "seconds": time.perf_counter() - t_start}


def _plot(history: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([h["epoch"] for h in history], [h["fid"] for h in history], marker="o", label="generated vs real")
    if "fid_real_halves" in history[0]:
        ax.axhline(history[0]["fid_real_halves"], ls="--", c="grey", label="real vs real (floor)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("FID-like distance")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_san(path, device: str | torch.device = "cpu") -> SAN:
    """The SAN of a ``san train`` folder (or its ``san.safetensors``); no code executed."""
    from .io import load_module

    return load_module(path, SAN_FILE, "san", lambda c: SAN(SANConfig(**c)), "SAN",
                       "train one with `ocr-robust san train`", device)
