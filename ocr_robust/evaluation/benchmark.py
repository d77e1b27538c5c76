"""``ocr-robust benchmark run``: every engine on every condition of a suite, white-box attack
rows for our models, and a report (``index.html``, ``results.md``, ``results.json``, plots).

The report holds the accuracy table (word accuracy, caseless, CER, line accuracy per engine
and condition; the hallucination rate on ``no-text``), speed on the same machine (lines/s
and ms/line on the ``clean`` lines, each engine run its fastest fair way, said how), robust
word accuracy under PGD per eps and the targeted confusable attack's success for our
models, the most frequent character substitutions per engine (which confusable pairs it
misreads), a gallery of misread lines with saliency maps for our models, training curves of
run folders, and a check of the product's claims against the measured figures.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..charset import ConfusableTable
from ..data.store import open_store, read_grey
from ..runs import read_metrics
from .engines import Engine, OursEngine, anchor, normalise_reading
from .metrics import Scores, confusion_counts
from .report import claims, markdown, page, plots
from .saliency import saliency, saliency_png
from .suite import CONDITIONS, NO_TEXT, TIGHT, load_suite

__all__ = ["EPS", "CACHE", "load_lines", "run_benchmark"]

EPS = ("1/255", "2/255", "4/255", "8/255")
CACHE = "anchor-readings"  # a suite's folder of anchor readings, reused while the lines and the engine are the same


def load_lines(store_dir: Path, limit: int | None) -> tuple[list[np.ndarray], list[str]]:
    store = open_store(store_dir)
    n = len(store) if limit is None else min(limit, len(store))
    return [read_grey(store, i) for i in range(n)], \
        [store.text(i) for i in range(n)]


def _cache_file(suite: Path, desc: dict, cond: str, e: Engine, n: int) -> Path:
    key = hashlib.sha256(f"{desc['conditions'][cond].get('labels_sha256')}|{n}|{e.name}|{e.how}".encode()).hexdigest()
    return suite / CACHE / f"{e.name}-{cond}-{key[:16]}.json"


def _cached(suite: Path, desc: dict, cond: str, e: Engine, n: int) -> dict | None:
    """An anchor's earlier readings of these very lines (anchors are deterministic; Tesseract
    and PP-OCR take minutes per condition), or ``None``."""
    if e.kind != "anchor":
        return None
    f = _cache_file(suite, desc, cond, e, n)
    try:
        got = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return got if isinstance(got.get("preds"), list) and len(got["preds"]) == n else None


def _cache(suite: Path, desc: dict, cond: str, e: Engine, preds: list[str], seconds: float) -> None:
    f = _cache_file(suite, desc, cond, e, len(preds))
    try:
        f.parent.mkdir(exist_ok=True)
        f.write_text(json.dumps({"engine": e.name, "how": e.how, "seconds": seconds, "preds": preds}), encoding="utf-8")
    except OSError:  # a read-only suite: no cache, same results
        pass


def run_benchmark(suite: str | Path, models: list[str], compare: list[str] | None, out: str | Path,
                  engines: list[Engine] | None = None, attack_lines: int = 200, eps=EPS, pgd_steps: int = 10,
                  limit: int | None = None, gallery: int = 8, progress: bool = True,
                  conditions: list[str] | None = None) -> dict:
    suite, out = Path(suite), Path(out)
    desc = load_suite(suite)
    unknown = [c for c in conditions or [] if c not in desc["conditions"]]
    if unknown:
        raise ValueError(f"the suite has no condition {unknown[0]!r}; it has: {', '.join(desc['conditions'])}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "gallery").mkdir(exist_ok=True)
    say = print if progress else (lambda *a, **k: None)
    ours: list[OursEngine] = []
    for m in models:
        name = f"ours:{Path(m).name}"
        if any(o.name == name for o in ours):
            name = f"ours:{Path(m).parent.name}/{Path(m).name}"
        ours.append(OursEngine(m, name=name))
    all_engines: list[Engine] = [*ours, *(engines or [])]
    missing: list[dict] = []
    for a in compare or []:
        try:
            all_engines.append(anchor(a))
        except RuntimeError as e:
            missing.append({"engine": a, "why": str(e)})
            say(f"benchmark: {a} skipped: {e}")
    conditions = [c for c in [*(c.name for c in CONDITIONS), TIGHT, NO_TEXT]
                  if c in desc["conditions"] and (not conditions or c in conditions)]
    rows, speed = [], []
    confusions: dict[str, Counter] = {e.name: Counter() for e in all_engines}
    misreads: dict[str, list] = {o.name: [] for o in ours}
    for cond in conditions:
        images, truths = load_lines(suite / cond, limit)
        for eng in all_engines:
            cached = _cached(suite, desc, cond, eng, len(images))
            t = time.perf_counter()
            preds = cached["preds"] if cached else [normalise_reading(p) for p in eng.read(images)]
            dt = cached["seconds"] if cached else time.perf_counter() - t
            if eng.kind == "anchor" and not cached:
                _cache(suite, desc, cond, eng, preds, dt)
            s = Scores().update(preds, truths)
            row = {"engine": eng.name, "condition": cond, "lines": s.lines, "word_acc": s.word_acc,
                   "word_acc_caseless": s.word_acc_caseless, "cer": s.cer, "line_acc": s.line_acc,
                   "hallucination_rate": s.hallucination_rate if cond == NO_TEXT else None,
                   "lines_per_s": s.lines / dt if dt else None}
            rows.append(row)
            say(f"  {cond:<17} {eng.name:<28} "
                + (f"hallucination {100 * s.hallucination_rate:.2f}%" if cond == NO_TEXT
                   else f"word acc {100 * s.word_acc:.2f}%  CER {100 * s.cer:.2f}%"))
            if cond == "clean":
                speed.append({"engine": eng.name, "lines": s.lines, "seconds": dt, "lines_per_s": s.lines / dt,
                              "ms_per_line": 1000 * dt / max(1, s.lines), "how": eng.how})
            if cond != NO_TEXT:
                confusions[eng.name].update(confusion_counts(preds, truths))
            if eng.name in misreads and cond != "clean":
                misreads[eng.name] += [(cond, k, images[k], truths[k], preds[k]) for k in range(len(truths))
                                       if preds[k] != truths[k]][:gallery]
    attacks = []
    if attack_lines > 0 and "clean" in desc["conditions"]:
        from .attacks import attack_store

        for o in ours:
            for e_ in eps:
                r = attack_store(o.model, o.rec.charset, suite / "clean", "pgd", e_, steps=pgd_steps,
                                 limit=attack_lines, crop=o.rec.crop)
                attacks.append({"engine": o.name, "mode": o.mode, **r})
                say(f"  attack {o.name} PGD {e_}: robust word acc {100 * r['robust_word_acc']:.2f}%")
            r = attack_store(o.model, o.rec.charset, suite / "clean", "confusable", "8/255", steps=20,
                             step_size="1/255", limit=attack_lines, crop=o.rec.crop)
            attacks.append({"engine": o.name, "mode": o.mode, **r})
            say(f"  attack {o.name} targeted confusable 8/255: success {100 * (r['targeted_success'] or 0.0):.2f}%")
    gallery_rows = []
    for o in ours:
        for k, (cond, idx, img, truth, pred) in enumerate(misreads[o.name][: gallery * 2]):
            line, pos, neg = saliency(o.model, img)
            f = f"gallery/{o.name.replace(':', '_').replace('/', '_')}-{k:02d}.png"
            saliency_png(line, pos, neg, out / f)
            gallery_rows.append({"engine": o.name, "condition": cond, "index": idx, "truth": truth, "read": pred,
                                 "image": f})
    table = ConfusableTable.load("confusables")
    known = {(e.source, e.target) for e in table.entries} | {(e.target, e.source) for e in table.entries}
    conf = {name: [{"truth": a, "read": b, "count": n, "confusable_pair": (a, b) in known}
                   for (a, b), n in c.most_common(15)] for name, c in confusions.items()}
    result = {"suite": desc, "suite_path": str(suite), "engines": [{"name": e.name, "kind": e.kind, "how": e.how,
                                                                    "mode": getattr(e, "mode", None)}
                                                                   for e in all_engines],
              "missing": missing, "rows": rows, "speed": speed, "attacks": attacks, "confusions": conf,
              "gallery": gallery_rows, "claims": claims(rows, speed, all_engines), "limit": limit,
              "curves": {o.name: read_metrics(o.path) for o in ours}}
    plots(result, out)
    (out / "results.json").write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    (out / "results.md").write_text(markdown(result), encoding="utf-8")
    (out / "index.html").write_text(page(result), encoding="utf-8")
    return result
