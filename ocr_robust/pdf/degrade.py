"""Page-level degradations, as a scanner, a fax or a re-compressing pipeline would apply them.

A spec is a comma-separated list of ``name`` or ``name:lo-hi`` (the strength range), e.g.
``jpeg:30-50,downscale:0.5-0.7``. Each page draws its strengths from its own seeded RNG;
degradations run in the fixed order rotate, skew, downscale, shade, blur, noise, jpeg
(geometry first, compression last). The geometric ones return the affine map they applied,
so that text-layer boxes can follow the page (``degrade_page``'s third result).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np

__all__ = ["DEGRADATIONS", "ORDER", "Degradation", "parse_degrade", "degrade_page"]

# name: (default range, meaning)
DEGRADATIONS: dict[str, tuple[tuple[float, float], str]] = {
    "rotate": ((-0.8, 0.8), "rotation of the page in degrees (a scanner's misplaced sheet)"),
    "skew": ((-0.02, 0.02), "horizontal shear of the page (x += skew * y)"),
    "downscale": ((0.4, 0.75), "scale factor: area-downscale then linear upscale back"),
    "shade": ((0.1, 0.35), "uneven illumination: the page darkens by up to this share along a random direction"),
    "blur": ((0.5, 1.4), "Gaussian sigma in output pixels"),
    "noise": ((3.0, 12.0), "Gaussian noise sigma in grey levels, plus 0.1% salt-and-pepper"),
    "jpeg": ((25.0, 70.0), "JPEG quality"),
}
_RANGE = re.compile(r"^(-?\d+(?:\.\d*)?|-?\.\d+)(?:-(-?\d+(?:\.\d*)?|-?\.\d+))?$")  # LO or LO-HI, signed
ORDER = ["rotate", "skew", "downscale", "shade", "blur", "noise", "jpeg"]


@dataclass(frozen=True)
class Degradation:
    name: str
    lo: float
    hi: float


def parse_degrade(spec: str | None) -> list[Degradation]:
    if not spec:
        return []
    out: dict[str, Degradation] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, rng = item.partition(":")
        if name not in DEGRADATIONS:
            raise ValueError(f"unknown degradation {name!r}; choose from {', '.join(ORDER)}")
        lo, hi = DEGRADATIONS[name][0]
        if rng:
            m = _RANGE.match(rng)
            if m is None:
                raise ValueError(f"degradation {item!r}: expected {name}:LO-HI with numbers")
            lo = float(m.group(1))
            hi = float(m.group(2)) if m.group(2) is not None else lo
            if lo > hi:
                raise ValueError(f"degradation {item!r}: LO is above HI")
        out[name] = Degradation(name, lo, hi)
    return [out[n] for n in ORDER if n in out]


def degrade_page(img: np.ndarray, degs: list[Degradation], rng: np.random.Generator
                 ) -> tuple[np.ndarray, dict, np.ndarray | None]:
    """Apply ``degs`` to a grey uint8 page; returns the page, the strengths drawn, and the
    2x3 affine map from original to degraded pixel coordinates (None if no geometry)."""
    applied: dict[str, float] = {}
    h, w = img.shape[:2]
    affine: np.ndarray | None = None
    for d in degs:
        v = float(rng.uniform(d.lo, d.hi))
        applied[d.name] = round(v, 4)
        if d.name in ("rotate", "skew"):
            if d.name == "rotate":
                m = cv2.getRotationMatrix2D((w / 2, h / 2), v, 1.0)
            else:
                m = np.array([[1.0, v, -v * h / 2], [0.0, 1.0, 0.0]])
            img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            affine = m if affine is None else _compose(m, affine)
        elif d.name == "downscale":
            v = min(max(v, 0.05), 1.0)
            small = cv2.resize(img, (max(1, round(w * v)), max(1, round(h * v))), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        elif d.name == "shade":
            a = rng.uniform(0, 2 * np.pi)
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            t = (xx / max(1, w) - 0.5) * np.cos(a) + (yy / max(1, h) - 0.5) * np.sin(a)  # -0.7..0.7
            t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
            img = np.clip(img.astype(np.float32) * (1.0 - v * t), 0, 255).astype(np.uint8)
        elif d.name == "blur":
            img = cv2.GaussianBlur(img, (0, 0), sigmaX=max(v, 0.01))
        elif d.name == "noise":
            noisy = img.astype(np.float32) + rng.normal(0.0, v, img.shape).astype(np.float32)
            img = np.clip(noisy, 0, 255).astype(np.uint8)
            sp = rng.random(img.shape)
            img[sp < 0.0005] = 0
            img[sp > 0.9995] = 255
        elif d.name == "jpeg":
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(round(min(max(v, 1), 100)))])
            img = cast(np.ndarray, cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE))  # just encoded: decodes
    return img, applied, affine


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The affine map ``a`` after ``b`` (both 2x3)."""
    A = np.vstack([a, [0, 0, 1]])
    B = np.vstack([b, [0, 0, 1]])
    return (A @ B)[:2]
