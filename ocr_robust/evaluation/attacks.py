"""``ocr-robust attack``: robust word accuracy, CER and targeted success rate of a model
under FGSM, PGD or the targeted confusable attack, on any line store.

With ``region_from`` (a store of the same lines without watermarks, such as the suite's
``clean`` condition beside its ``watermark`` one) the attack is confined to the pixels under
the watermark, in the style of FAWA (Chen et al. 2020, "FAWA: fast adversarial watermark
attack on optical character recognition"): the pixels where a line differs from its
unmarked copy by more than ``WATERMARK_DIFF`` grey levels, taken through the same crop
normalisation and resizing as the line itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from ..adversarial.attacks import ATTACKS as REGISTRY
from ..adversarial.attacks import AttackSpec, get_attack, read_texts, seeded_confusions
from ..adversarial.confusion import TextConfuser
from ..adversarial.perturb import parse_eps
from ..charset import ConfusableTable
from ..data.crop import crop_box, cut_crop
from ..data.dataset import BucketBatchSampler, LineDataset, collate
from ..data.store import read_grey
from ..errors import InputError
from ..images import resize_to_height
from ..models import model_state
from .metrics import Scores
from .pages import AttackedLine, write_page

__all__ = ["ATTACKS", "WATERMARK_DIFF", "AttackRow", "watermark_regions", "attack_store", "format_rows"]

ATTACKS = tuple(REGISTRY)  # the registered attacks' names (adversarial/attacks/registry.py)
WATERMARK_DIFF = 8  # grey levels: a pixel that differs more from the unmarked line is under the watermark


def watermark_regions(ds: LineDataset, ref: LineDataset, ref_index: dict[str, int], ks: list[int],
                      shape: torch.Size, threshold: int = WATERMARK_DIFF) -> tuple[torch.Tensor, int]:
    """``N x 1 x H x W`` (1 = under the watermark) for lines ``ks`` of ``ds`` against their
    same-named lines in ``ref``, in the geometry of the model's input (the crop normalisation
    cut from the marked line, as the model sees it, then the resize); and the number of lines
    whose unmarked copy is missing or of another size (left with an empty region)."""
    out = torch.zeros(shape)
    unmatched = 0
    for j, k in enumerate(ks):
        i = ds.indices[k]
        r = ref_index.get(ds.store.name(i))
        marked = read_grey(ds.store, i)
        plain = read_grey(ref.store, r) if r is not None else None
        if plain is None or plain.shape != marked.shape:
            unmatched += 1
            continue
        m = (np.abs(marked.astype(np.int16) - plain.astype(np.int16)) > threshold).astype(np.uint8) * 255
        if ds.crop == "ink":
            box = crop_box(marked)
            m = m if box is None else cut_crop(m, box, 0)
        under = resize_to_height(m, ds.height, ds.max_width) > 0
        out[j, 0, :, : under.shape[1]] = torch.from_numpy(under)
    return out, unmatched


class AttackRow(TypedDict):
    """One row of ``ocr-robust attack``: one attack at one budget on one store (rates 0..1)."""

    data: str
    attack: str
    eps: float | None
    eps_text: str
    norm: str
    steps: int
    lines: int
    clean_word_acc: float
    robust_word_acc: float
    robust_word_acc_ci: tuple[float, float]  # 95% bootstrap interval over lines
    robust_cer: float
    robust_line_acc: float
    targeted_success: float | None  # targeted attacks: the share of lines read as the target
    region_from: str | None  # confined to the watermark: the unmarked store compared with
    region_share: float | None  # ... the share of the lines' pixels the attack could change
    region_lines: int | None  # ... the lines with any such pixel
    region_clean_word_acc: float | None  # ... their clean word accuracy
    region_robust_word_acc: float | None  # ... and their robust word accuracy
    seconds: float
    skipped: int
    problems: list[str]


def attack_store(model, charset, data: str | Path, attack: str = "pgd", eps: float | str | None = "4/255",
                 norm: str = "linf", steps: int = 10, step_size: float | str | None = None, restarts: int = 1,
                 limit: int | None = None, batch_size: int = 32, seed: int = 0, device: str | torch.device = "cpu",
                 examples: Path | None = None, n_examples: int = 16, clean: Scores | None = None,
                 crop: str = "none", confusables: str = "confusables:eval",
                 region_from: str | Path | None = None) -> AttackRow:
    """Attack every line (or the first ``limit``) of a store; one result row. ``crop``: the
    model's crop normalisation (``"ink"`` for models trained with it), applied before the attack.
    ``confusables``: the table a targeted attack aims with; by default the evaluation pairs,
    which the realtime mode does not train on (``charset.ConfusableTable.split``).
    ``region_from``: confine the attack to the watermark's pixels (:func:`watermark_regions`)."""
    att = get_attack(attack)
    eps_v, step_v = parse_eps(eps), parse_eps(step_size)
    spec = AttackSpec(eps=eps_v, norm=norm, steps=steps, step_size=step_v, restarts=restarts)
    ds = LineDataset.open(data, charset, crop=crop)
    if len(ds) == 0:
        raise InputError(data, f"no usable lines to attack ({len(ds.problems)} skipped"
                               + (f"; first: {ds.problems[0]})" if ds.problems else ")"))
    n = len(ds) if limit is None else min(limit, len(ds))
    sub = Subset(ds, list(range(n)))
    loader = DataLoader(sub, batch_sampler=BucketBatchSampler(ds.widths()[:n], batch_size, shuffle=False),
                        collate_fn=collate)
    confuser = TextConfuser(ConfusableTable.load(confusables, charset), charset)
    ref, ref_index = None, {}
    if region_from is not None:
        ref = LineDataset.open(region_from, None)
        ref_index = {ref.store.name(i): i for i in range(len(ref.store))}
    region_px = region_all = region_lines = unmatched = 0
    gen = torch.Generator().manual_seed(seed)
    robust, base = Scores(), Scores()
    robust_in, base_in = Scores(), Scores()  # the lines under a watermark (region_from)
    successes = 0
    kept: list[AttackedLine] = []
    t0 = time.perf_counter()
    with model_state(model, train=False):
        for bi, batch in enumerate(loader):
            if not batch["texts"]:  # every line of the batch unreadable (collate left them out)
                continue
            x = batch["images"].to(device)
            confused = seeded_confusions(batch["texts"], confuser, f"{seed}:{bi}") if att.targeted else None
            if ref is not None:
                region, missed = watermark_regions(ds, ref, ref_index, batch["indices"].tolist(), x.shape)
                batch["region"] = region.to(device)
                unmatched += missed
                cols = torch.arange(x.shape[-1])[None, :] < batch["widths"][:, None]
                region_px += int(region.sum())
                region_all += int(cols.sum()) * x.shape[2]
                under = (region.flatten(1).sum(1) > 0).tolist()
                region_lines += sum(under)
            r = att.run(model, x, batch, spec, charset=charset, generator=gen, confused=confused)
            if r.success is not None:
                successes += int(r.success.sum())
            with torch.no_grad():
                clean_reads = read_texts(model(x), batch["widths"], charset)
            base.update(clean_reads, batch["texts"])
            robust.update(r.texts, batch["texts"])
            if ref is not None:
                for j, t in enumerate(batch["texts"]):
                    if under[j]:
                        base_in.add(clean_reads[j], t)
                        robust_in.add(r.texts[j], t)
            for j, t in enumerate(batch["texts"]):
                if examples is not None and len(kept) < n_examples:
                    kept.append(AttackedLine.crop(x, r.x_adv, j, int(batch["widths"][j]), t,
                                                  confused[j] if confused else "(untargeted)", r.texts[j],
                                                  clean_reads[j]))
    seconds = time.perf_counter() - t0
    if unmatched:
        problems = [f"{unmatched} lines have no same-sized unmarked copy in {region_from}: not attacked"]
    else:
        problems = []
    if examples is not None:
        write_page(kept, Path(examples), f"{attack} eps={eps} ({norm}) on {data}")
    return AttackRow(data=str(data), attack=attack, eps=eps_v, eps_text=str(eps), norm=norm, steps=att.steps or steps,
                     lines=robust.lines, clean_word_acc=base.word_acc, robust_word_acc=robust.word_acc,
                     robust_word_acc_ci=robust.word_acc_ci(),
                     robust_cer=robust.cer, robust_line_acc=robust.line_acc,
                     targeted_success=successes / robust.lines if att.targeted and robust.lines else None,
                     region_from=None if region_from is None else str(region_from),
                     region_share=region_px / region_all if ref is not None and region_all else None,
                     region_lines=region_lines if ref is not None else None,
                     region_clean_word_acc=base_in.word_acc if ref is not None else None,
                     region_robust_word_acc=robust_in.word_acc if ref is not None else None,
                     seconds=seconds, skipped=len(ds.problems), problems=problems + ds.problems[:20])


def format_rows(rows: list[AttackRow]) -> str:
    head = (f"{'attack':<11}{'eps':>8}{'norm':>6}{'steps':>6}{'lines':>7}{'clean acc':>11}{'robust acc':>12}"
            f"{'95% CI':>17}{'robust CER':>12}{'target hit':>12}")
    out = [head, "-" * len(head)]
    for r in rows:
        hit = "" if r["targeted_success"] is None else f"{100 * r['targeted_success']:.2f}%"
        eps = r["eps_text"] if r["eps"] is not None else "none"
        out.append(f"{r['attack']:<11}{eps:>8}{r['norm']:>6}{r['steps']:>6}{r['lines']:>7}"
                   f"{100 * r['clean_word_acc']:>10.2f}%{100 * r['robust_word_acc']:>11.2f}%"
                   f"{'':>3}{100 * r['robust_word_acc_ci'][0]:>6.2f}-{100 * r['robust_word_acc_ci'][1]:<6.2f}"
                   f"{100 * r['robust_cer']:>11.2f}%{hit:>12}")
    return "\n".join(out)

