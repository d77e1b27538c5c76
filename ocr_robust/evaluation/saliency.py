"""Saliency maps for the benchmark's gallery of misread lines: which pixels pushed the
model toward its reading (red) and away from it (blue)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ..images import output_frames, pad_batch, resize_to_height
from ..models import model_state

__all__ = ["saliency", "saliency_png"]


def saliency(model: torch.nn.Module, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient of the greedy reading's log-probability (summed over its frames) w.r.t. the
    input pixels: (resized line, positive part, negative part), each ``32 x W``."""
    line = resize_to_height(img)
    x, widths = pad_batch([line])
    x = x.clone().requires_grad_(True)
    with model_state(model, train=False), torch.enable_grad():
        lp = model(x)[: output_frames(int(widths[0])), 0]
        path = lp.argmax(-1)
        lp.gather(1, path[:, None]).sum().backward()
    assert x.grad is not None  # set by the backward pass above
    g = x.grad[0, 0, :, : line.shape[1]].numpy()
    return line, np.maximum(g, 0), np.maximum(-g, 0)


def saliency_png(line: np.ndarray, pos: np.ndarray, neg: np.ndarray, path: Path) -> None:
    """Three rows, 2x: the line; positive gradient in red; negative in blue (each scaled to its max)."""
    base = cv2.cvtColor(line, cv2.COLOR_GRAY2BGR).astype(np.float32)
    rows = [base]
    for part, channel in ((pos, 2), (neg, 0)):
        heat = part / (part.max() + 1e-12)
        overlay = base * 0.45 + 140
        overlay[:, :, channel] = np.clip(overlay[:, :, channel] + 255 * heat, 0, 255)
        for c in range(3):
            if c != channel:
                overlay[:, :, c] *= 1 - 0.6 * heat
        rows.append(overlay)
    img = np.vstack(rows).clip(0, 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
