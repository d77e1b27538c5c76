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
import html
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import torch

from .charset import ConfusableTable
from .data.store import open_store, read_grey
from .engines import Engine, OursEngine, anchor, normalise_reading
from .images import output_frames, pad_batch, resize_to_height
from .metrics import Scores, confusion_counts
from .models import model_state
from .runs import read_metrics
from .suite import CONDITIONS, NO_TEXT, TIGHT, load_suite

__all__ = ["EPS", "DEGRADED", "CACHE", "saliency", "run_benchmark", "claims", "plots", "markdown", "page"]

EPS = ("1/255", "2/255", "4/255", "8/255")
DEGRADED = [c.name for c in CONDITIONS if c.name != "clean"] + [TIGHT]
CACHE = "anchor-readings"  # a suite's folder of anchor readings, reused while the lines and the engine are the same


def _load(store_dir: Path, limit: int | None) -> tuple[list[np.ndarray], list[str]]:
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


def _saliency_png(line: np.ndarray, pos: np.ndarray, neg: np.ndarray, path: Path) -> None:
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
        images, truths = _load(suite / cond, limit)
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
        from .adversarial.evaluate import attack_store

        for o in ours:
            for e_ in eps:
                r = attack_store(o.model, o.rec.charset, suite / "clean", "pgd", e_, steps=pgd_steps,
                                 limit=attack_lines, crop=o.rec.crop)
                attacks.append({"engine": o.name, "mode": o.mode, **r})
                say(f"  attack {o.name} PGD {e_}: robust word acc {100 * r['robust_word_acc']:.2f}%")
            r = attack_store(o.model, o.rec.charset, suite / "clean", "confusable", "8/255", steps=20,
                             step_size="1/255", limit=attack_lines, crop=o.rec.crop)
            attacks.append({"engine": o.name, "mode": o.mode, **r})
            say(f"  attack {o.name} targeted confusable 8/255: success {100 * r['targeted_success']:.2f}%")
    gallery_rows = []
    for o in ours:
        for k, (cond, idx, img, truth, pred) in enumerate(misreads[o.name][: gallery * 2]):
            line, pos, neg = saliency(o.model, img)
            f = f"gallery/{o.name.replace(':', '_').replace('/', '_')}-{k:02d}.png"
            _saliency_png(line, pos, neg, out / f)
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


def _acc(rows, engine, cond, key="word_acc"):
    for r in rows:
        if r["engine"] == engine and r["condition"] == cond:
            return r[key]
    return None


def claims(rows: list[dict], speed: list[dict], engines: list[Engine]) -> list[dict]:
    """The product's claims, checked against this run: met, NOT met, or not measurable."""
    out = []
    ours = [cast(OursEngine, e) for e in engines if e.kind == "ours"]
    rt = [e.name for e in ours if getattr(e, "mode", "") == "realtime"]
    nat = [e.name for e in ours if getattr(e, "mode", "") == "natural"]
    anchors = [e.name for e in engines if e.kind == "anchor"]
    conds = sorted({r["condition"] for r in rows} & set(DEGRADED), key=DEGRADED.index)
    for name in rt:
        for cond in conds:
            mine = _acc(rows, name, cond)
            others = {o: _acc(rows, o, cond) for o in anchors + nat}
            ok = all(v is not None and mine > v for v in others.values()) and bool(others)
            out.append({"claim": f"{name} beats {', '.join(others) or 'nothing measured'} on {cond}",
                        "met": ok if others else None,
                        "figures": {name: mine, **others}})
    for e in ours:
        c = _acc(rows, e.name, "clean")
        if c is not None:
            out.append({"claim": f"{e.name}: clean word accuracy at least 99%", "met": c >= 0.99,
                        "figures": {e.name: c}})
        h = _acc(rows, e.name, NO_TEXT, "hallucination_rate")
        if h is not None:
            out.append({"claim": f"{e.name}: hallucination rate on no-text under 1%", "met": h < 0.01,
                        "figures": {e.name: h}})
    pp = next((s for s in speed if s["engine"] == "pp-ocrv4"), None)
    for s in speed:
        o = next(x for x in ours if x.name == s["engine"]) if any(x.name == s["engine"] for x in ours) else None
        if o is not None and pp is not None:
            ratio = s["lines_per_s"] / pp["lines_per_s"]
            out.append({"claim": f"{o.name} ({o.rec.engine}) at least 5x faster per line than PP-OCRv4",
                        "met": ratio >= 5.0, "figures": {"speed_ratio": ratio}})
    return out


def plots(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    engines = [e["name"] for e in result["engines"]]
    conds = [c for c in dict.fromkeys(r["condition"] for r in rows) if c != NO_TEXT]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(conds) + 2), 4))
    w = 0.8 / max(1, len(engines))
    for k, e in enumerate(engines):
        ax.bar(np.arange(len(conds)) + k * w, [100 * (_acc(rows, e, c) or 0) for c in conds], w, label=e)
    ax.set_xticks(np.arange(len(conds)) + 0.4 - w / 2, conds, rotation=20)
    ax.set_ylabel("word accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax.set_title("Word accuracy by condition")
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(a["engine"] for a in result["attacks"]):
        pts = [(0.0, None)] + [(a["eps"] * 255, a["robust_word_acc"]) for a in result["attacks"]
                               if a["engine"] == name and a["attack"] == "pgd"]
        clean = next((a["clean_word_acc"] for a in result["attacks"] if a["engine"] == name), None)
        xs = [0.0] + [p[0] for p in pts[1:]]
        ys: list[Any] = [clean] + [p[1] for p in pts[1:]]
        mode = next(a["mode"] for a in result["attacks"] if a["engine"] == name)
        ax.plot(xs, [100 * y for y in ys], marker="o", label=f"{name} ({mode})")
    ax.set_xlabel("PGD L-inf eps (x/255)")
    ax.set_ylabel("robust word accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Robust word accuracy vs eps")
    if result["attacks"]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "robustness.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, hist in result["curves"].items():
        if hist:
            ep = [h["epoch"] for h in hist]
            axes[0].plot(ep, [h["loss"] for h in hist], marker=".", label=name)
            axes[1].plot(ep, [100 * h["val_word_acc"] for h in hist], marker=".", label=name)
    axes[0].set_title("training loss")
    axes[1].set_title("validation word accuracy (%)")
    for a in axes:
        a.set_xlabel("epoch")
        if any(result["curves"].values()):
            a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=110)
    plt.close(fig)


def _pct(v) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.2f}%"


def markdown(result: dict) -> str:
    rows, engines = result["rows"], [e["name"] for e in result["engines"]]
    conds = list(dict.fromkeys(r["condition"] for r in rows))
    s = result["suite"]
    md = [f"# Benchmark report\n\nSuite `{result['suite_path']}` (version {s['version']}, seed {s['seed']}; "
          f"{s['source']}). Lines per condition: "
          + ", ".join(f"{c} {s['conditions'][c]['lines']}" for c in conds) + "."]
    if result["limit"]:
        md.append(f"Only the first {result['limit']} lines of each condition were read.")
    for m in result["missing"]:
        md.append(f"- Not run: {m['engine']}: {m['why']}")
    md.append("\n## Word accuracy (no-text: hallucination rate, share of text-free crops read as text)\n")
    md.append("| engine | " + " | ".join(conds) + " |")
    md.append("|---|" + "---:|" * len(conds))
    for e in engines:
        cells = [_pct(_acc(rows, e, c, "hallucination_rate" if c == NO_TEXT else "word_acc")) for c in conds]
        md.append(f"| {e} | " + " | ".join(cells) + " |")
    md.append("\n## CER\n")
    md.append("| engine | " + " | ".join(c for c in conds if c != NO_TEXT) + " |")
    md.append("|---|" + "---:|" * len([c for c in conds if c != NO_TEXT]))
    for e in engines:
        md.append(f"| {e} | " + " | ".join(_pct(_acc(rows, e, c, "cer")) for c in conds if c != NO_TEXT) + " |")
    md.append("\n## Speed (clean lines, this machine)\n")
    md.append("| engine | lines | lines/s | ms/line | how it was run |")
    md.append("|---|---:|---:|---:|---|")
    for sp in result["speed"]:
        md.append(f"| {sp['engine']} | {sp['lines']} | {sp['lines_per_s']:.1f} | {sp['ms_per_line']:.2f} | "
                  f"{sp['how']} |")
    if result["attacks"]:
        md.append("\n## White-box attacks (our models, first lines of `clean`)\n")
        md.append("| engine | mode | attack | eps | lines | clean word acc | robust word acc | targeted success |")
        md.append("|---|---|---|---|---:|---:|---:|---:|")
        for a in result["attacks"]:
            md.append(f"| {a['engine']} | {a['mode']} | {a['attack']} | {a['eps_text']} | {a['lines']} | "
                      f"{_pct(a['clean_word_acc'])} | {_pct(a['robust_word_acc'])} | {_pct(a['targeted_success'])} |")
    md.append("\n## Most frequent character substitutions (truth -> read; * = a pair of the confusable table)\n")
    for e, items in result["confusions"].items():
        md.append(f"- {e}: " + (", ".join(f"`{c['truth']}`->`{c['read']}` x{c['count']}"
                                          + ("*" if c["confusable_pair"] else "")
                                          for c in items[:10]) or "none"))
    md.append("\n## The product's claims on this run\n")
    for c in result["claims"]:
        verdict = "met" if c["met"] else ("NOT met" if c["met"] is not None else "not measurable")
        figs = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in c["figures"].items())
        md.append(f"- {c['claim']}: **{verdict}** ({figs})")
    return "\n".join(md) + "\n"


def page(result: dict) -> str:
    """The HTML report: the Markdown tables rendered plainly, the plots and the gallery."""
    import re

    body = []
    table: list[str] = []

    def flush():
        if table:
            cells = [[c.strip() for c in r.strip("|").split("|")] for r in table if not re.match(r"^\|[-:|]+\|?$", r)]
            body.append("<table>" + "".join(
                "<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{html.escape(c)}</{'th' if i == 0 else 'td'}>"
                                 for c in row) + "</tr>" for i, row in enumerate(cells)) + "</table>")
            table.clear()

    for line in markdown(result).splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.strip():
            text = html.escape(line).replace("**", "")
            body.append(f"<p>{text}</p>")
    flush()
    body.append("<h2>Plots</h2>")
    for f, alt in (("accuracy.png", "word accuracy by condition"), ("robustness.png", "robust accuracy vs eps"),
                   ("training.png", "training curves")):
        body.append(f'<p><img src="{f}" alt="{alt}"></p>')
    if result["gallery"]:
        body.append("<h2>Misread lines with saliency maps</h2><p>Each image: the line as the model sees it; in red "
                    "the pixels whose gradient raises the score of what the model read; in blue those that lower "
                    "it.</p>")
        for g in result["gallery"]:
            body.append(f"<div class=g><img src=\"{g['image']}\"><br>{html.escape(g['engine'])}, {g['condition']}: "
                        f"truth <code>{html.escape(g['truth'])}</code>, "
                        f"read <code>{html.escape(g['read'])}</code></div>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
             ".g{margin:1em 0}code{background:#f3f3f3}")
    return (f"<!doctype html><meta charset=utf-8><title>ocr-robust benchmark</title><style>{style}</style>"
            + "\n".join(body))
