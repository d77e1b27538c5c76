"""Reading line stores and scoring the reading: ``evaluate`` (a torch model on a dataset,
the Trainer's validation) and ``bench`` (``ocr-robust bench``: word accuracy, CER, line
accuracy and speed of a run or an export on line stores)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from ..charset import Charset
from ..data.dataset import BucketBatchSampler, LineDataset, collate
from ..data.store import open_store, read_grey
from ..decoding import Decoded, greedy_batch
from ..errors import InputError
from ..inference import Recognizer
from ..models import CRNN, model_state
from .metrics import Scores

__all__ = ["evaluate", "BenchRow", "StoreReading", "read_store", "bench", "format_table"]


@torch.no_grad()
def evaluate(model: CRNN, ds, charset: Charset, device: torch.device, batch_size: int = 64,
             progress: bool = False, shard: tuple[int, int] = (0, 1)) -> Scores:
    """Greedy-decode every line of ``ds`` and score it; ``shard=(rank, world_size)``: only
    that rank's share of the batches (``Scores.merged`` of all shards is the whole set's)."""
    widths = ds.widths() if hasattr(ds, "widths") else ds.dataset.widths()
    if isinstance(ds, Subset):
        widths = [widths[i] for i in ds.indices]
    rank, world_size = shard  # no collective here, so the shards need not be of equal count
    batches = BucketBatchSampler(widths, batch_size, shuffle=False).batches()[rank::world_size]
    loader = DataLoader(ds, batch_sampler=batches, collate_fn=collate)
    scores = Scores()
    with model_state(model, train=False, grads=False):
        for batch in tqdm(loader, desc="eval", leave=False, disable=not progress):
            if not batch["texts"]:  # every line of the batch unreadable (collate left them out)
                continue
            logp = model(batch["images"].to(device)).float().cpu()
            preds = greedy_batch(logp, CRNN.output_lengths(batch["widths"]).tolist(), charset)
            scores.update([p.text for p in preds], batch["texts"])
    return scores


class BenchRow(TypedDict):
    """One row of ``ocr-robust bench``: a model on one store (rates are 0..1)."""

    data: str
    lines: int
    word_acc: float
    word_acc_caseless: float
    cer: float
    line_acc: float
    lines_per_s: float
    skipped: int
    problems: list[str]
    engine: str
    errors: list[tuple[str, str]]  # (truth, reading) of the first misread lines


@dataclass
class StoreReading:
    """One model's reading of one line store: names, truths and predictions in store order,
    the lines left out as bad input (``problems``) and the seconds recognition took."""

    names: list[str]
    truths: list[str]
    preds: list[Decoded]
    problems: list[str]
    seconds: float


def read_store(rec: Recognizer, data: str | Path, batch_size: int = 64) -> StoreReading:
    """Every usable line of a store, read; lines whose images do not decode are left out and
    listed in ``problems`` with the store's other bad lines."""
    ds = LineDataset(open_store(data), rec.charset)
    problems = list(ds.problems)
    names, truths, images = [], [], []
    for i in ds.indices:
        try:
            images.append(read_grey(ds.store, i))
        except InputError as e:
            problems.append(f"{e}; line skipped")
            continue
        names.append(ds.store.name(i))
        truths.append(ds.store.text(i))
    t = time.perf_counter()
    preds = rec.recognize(images, batch_size=batch_size) if images else []
    dt = time.perf_counter() - t
    return StoreReading(names, truths, preds, problems, dt)


def bench(model: str | Path, data: list[str], batch_size: int = 64, decoder: str = "greedy",
          recognizer: Recognizer | None = None, engine: str = "auto") -> list[BenchRow]:
    rec = recognizer or Recognizer(model, decoder=decoder, engine=engine)
    rows: list[BenchRow] = []
    for d in data:
        r = read_store(rec, d, batch_size)
        s = Scores().update([p.text for p in r.preds], r.truths)
        rows.append(BenchRow(data=str(d), lines=s.lines, word_acc=s.word_acc, word_acc_caseless=s.word_acc_caseless,
                             cer=s.cer, line_acc=s.line_acc, lines_per_s=s.lines / r.seconds if r.seconds else 0.0,
                             skipped=len(r.problems), problems=r.problems[:20], engine=rec.engine,
                             errors=[(t, p.text) for p, t in zip(r.preds, r.truths) if p.text != t][:20]))
    return rows


def format_table(rows: list[BenchRow]) -> str:
    head = f"{'data':<40}{'lines':>7}{'word acc':>10}{'caseless':>10}{'CER':>8}{'line acc':>10}{'lines/s':>9}"
    out = [head, "-" * len(head)]
    for r in rows:
        name = r["data"] if len(r["data"]) <= 38 else "..." + r["data"][-35:]
        out.append(f"{name:<40}{r['lines']:>7}{100 * r['word_acc']:>9.2f}%{100 * r['word_acc_caseless']:>9.2f}%"
                   f"{100 * r['cer']:>7.2f}%{100 * r['line_acc']:>9.2f}%{r['lines_per_s']:>9.0f}")
        if r["skipped"]:
            out.append(f"  ({r['skipped']} lines skipped: {r['problems'][0]})")
    return "\n".join(out)
