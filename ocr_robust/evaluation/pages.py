"""Attacking the validation set at each epoch's end (METHODS.md section 1, S8).

``attack_validation`` attacks every validation line once with the targeted confusable
attack and measures the share of *easy* lines (still read correctly under attack): one
of the stop criteria. ``write_page`` writes the human check: an HTML page of validation
lines with the original, the adversarial image, the perturbation amplified, the truth, the
confused target and what the model read, so that a person can see whether the adversarial
images still look like text.
"""

from __future__ import annotations

import html
import random
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from ..adversarial.attacks import confusable_attack, read_texts
from ..data.dataset import BucketBatchSampler, LineDataset, collate
from ..models import model_state

__all__ = ["DEFAULT_VAL_ATTACK", "AttackedLine", "attack_validation", "amplified", "write_page", "html_page",
           "write_gallery"]

DEFAULT_VAL_ATTACK = {"eps": 8 / 255, "norm": "linf", "steps": 10, "rule": "sign", "step_size": 2 / 255}


@dataclass
class AttackedLine:
    original: np.ndarray
    adversarial: np.ndarray
    truth: str
    confused: str
    read: str
    clean_read: str

    @property
    def easy(self) -> bool:
        return self.read == self.truth

    @classmethod
    def crop(cls, x: torch.Tensor, x_adv: torch.Tensor, j: int, width: int, truth: str, confused: str, read: str,
             clean_read: str) -> AttackedLine:
        """Line ``j`` of a batch and of its attacked copy, without the padding, as uint8."""
        return cls(x[j, 0, :, :width].cpu().numpy().astype(np.uint8),
                   x_adv[j, 0, :, :width].cpu().numpy().round().astype(np.uint8), truth, confused, read, clean_read)


def _widths(ds) -> list[int]:
    if isinstance(ds, Subset):
        w = cast(LineDataset, ds.dataset).widths()
        return [w[i] for i in ds.indices]
    return ds.widths()


def attack_validation(model, ds, charset, confuser, device, attack: dict | None = None, limit: int | None = None,
                      keep: int = 16, batch_size: int = 32, seed: int | str = 0) -> tuple[float, list[AttackedLine]]:
    """(share of lines read correctly under the targeted confusable attack, the first
    ``keep`` attacked lines). ``limit`` caps the number of lines attacked."""
    attack = {**DEFAULT_VAL_ATTACK, **(attack or {})}
    n = len(ds) if limit is None else min(limit, len(ds))
    sub = Subset(ds, list(range(n)))
    widths = _widths(ds)[:n]
    loader = DataLoader(sub, batch_sampler=BucketBatchSampler(widths, batch_size, shuffle=False), collate_fn=collate)
    rng = random.Random(f"{seed}:val-attack")
    easy, total = 0, 0
    kept: list[AttackedLine] = []
    with model_state(model, train=False):
        for batch in loader:
            if not batch["texts"]:  # every line of the batch unreadable (collate left them out)
                continue
            x = batch["images"].to(device)
            confused = [confuser.confuse(t, rng) for t in batch["texts"]]
            with torch.no_grad():
                clean = read_texts(model(x), batch["widths"], charset)
            r = confusable_attack(model, x, batch["widths"], confused, charset, **attack)
            for j, t in enumerate(batch["texts"]):
                total += 1
                easy += int(r.texts[j] == t)
                if len(kept) < keep:
                    kept.append(AttackedLine.crop(x, r.x_adv, j, int(batch["widths"][j]), t, confused[j], r.texts[j],
                                                  clean[j]))
    return (easy / total if total else float("nan")), kept


def amplified(orig: np.ndarray, adv: np.ndarray) -> np.ndarray:
    """The perturbation as an image: grey 128 is zero, scaled so its largest value is full range."""
    d = adv.astype(np.float32) - orig.astype(np.float32)
    m = max(1.0, float(np.abs(d).max()))
    return np.clip(128 + 127 * d / m, 0, 255).astype(np.uint8)


def write_page(lines: list[AttackedLine], out_dir: Path, title: str, easy_share: float | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, ln in enumerate(lines):
        for tag, img in (("orig", ln.original), ("adv", ln.adversarial),
                         ("delta", amplified(ln.original, ln.adversarial))):
            big = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(out_dir / f"{i:03d}-{tag}.png"), big)
        d = ln.adversarial.astype(np.int16) - ln.original.astype(np.int16)
        e = html.escape
        rows.append(
            f"<tr><td><img src='{i:03d}-orig.png'><br><img src='{i:03d}-adv.png'><br><img src='{i:03d}-delta.png'></td>"
            f"<td><b>truth</b> <code>{e(ln.truth)}</code><br><b>confused target</b> <code>{e(ln.confused)}</code><br>"
            f"<b>read (clean)</b> <code>{e(ln.clean_read)}</code><br>"
            f"<b>read (attacked)</b> <code>{e(ln.read)}</code> {'(easy: still right)' if ln.easy else ''}<br>"
            f"|delta| max {np.abs(d).max()}/255, mean {np.abs(d).mean():.2f}</td></tr>")
    share = "" if easy_share is None else f"<p>easy share under attack (read correctly): {100 * easy_share:.1f}%</p>"
    intro = (f"{share}<p>Each row: original (top), adversarial image (middle), perturbation amplified (bottom, grey "
             "= 0). If the adversarial images no longer look like the text, stop training: create the file STOP in "
             "the run folder (or press Ctrl-C) and the run ends cleanly with a checkpoint.</p>")
    return html_page(out_dir, title, intro, rows)


def html_page(out_dir: Path, title: str, intro_html: str, rows: list[str]) -> Path:
    """``out_dir/index.html``: a title, an introduction and a table of ``rows`` (``<tr>``)."""
    page = (f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>body{{font-family:sans-serif}}td{{border-bottom:1px solid #ccc;padding:4px;vertical-align:top}}"
            f"img{{image-rendering:pixelated}}</style><h1>{html.escape(title)}</h1>{intro_html}"
            f"<table>{''.join(rows)}</table>")
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_gallery(samples: list[list[tuple[str, np.ndarray]]], out_dir: Path, title: str, intro: str = "",
                  scale: int = 2) -> Path:
    """A gallery page: one row per sample, each a list of (caption, grey image) shown side
    by side, enlarged ``scale`` times; the PNGs beside ``index.html``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, cells in enumerate(samples):
        tds = []
        for j, (caption, img) in enumerate(cells):
            name = f"{i:03d}-{j}.png"
            big = cv2.resize(img, (img.shape[1] * scale, img.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(out_dir / name), big)
            tds.append(f"<td>{html.escape(caption)}<br><img src='{name}'></td>")
        rows.append(f"<tr>{''.join(tds)}</tr>")
    return html_page(out_dir, title, f"<p>{html.escape(intro)}</p>" if intro else "", rows)
