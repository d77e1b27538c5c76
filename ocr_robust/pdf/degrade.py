"""Page-level degradations, as a scanner, a fax or a re-compressing pipeline would apply them.

A spec is a comma-separated list of ``name`` or ``name:lo-hi`` (the strength range), e.g.
``jpeg:30-50,downscale:0.5-0.7``. Each page draws its strengths from its own seeded RNG;
degradations run in the fixed order downscale, blur, noise, jpeg (compression comes last).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# name: (default range, meaning)
DEGRADATIONS: dict[str, tuple[tuple[float, float], str]] = {
    "downscale": ((0.4, 0.75), "scale factor: area-downscale then linear upscale back"),
    "blur": ((0.5, 1.4), "Gaussian sigma in output pixels"),
    "noise": ((3.0, 12.0), "Gaussian noise sigma in grey levels, plus 0.1% salt-and-pepper"),
    "jpeg": ((25.0, 70.0), "JPEG quality"),
}
ORDER = ["downscale", "blur", "noise", "jpeg"]


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
            try:
                a, _, b = rng.partition("-")
                lo = float(a)
                hi = float(b) if b else lo
            except ValueError:
                raise ValueError(f"degradation {item!r}: expected {name}:LO-HI with numbers") from None
            if lo > hi:
                raise ValueError(f"degradation {item!r}: LO is above HI")
        out[name] = Degradation(name, lo, hi)
    return [out[n] for n in ORDER if n in out]


def degrade_page(img: np.ndarray, degs: list[Degradation], rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Apply ``degs`` to a grey uint8 page; returns the page and the strengths drawn."""
    applied: dict[str, float] = {}
    h, w = img.shape[:2]
    for d in degs:
        v = float(rng.uniform(d.lo, d.hi))
        applied[d.name] = round(v, 3)
        if d.name == "downscale":
            v = min(max(v, 0.05), 1.0)
            small = cv2.resize(img, (max(1, round(w * v)), max(1, round(h * v))), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
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
            img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return img, applied
