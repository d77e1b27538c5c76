"""The benchmark's report: the product's claims checked against a run's figures, the plots,
``results.md`` and ``index.html`` (``ocr-robust benchmark run`` writes all of them)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, cast

import numpy as np

from .engines import Engine, OursEngine
from .suite import CONDITIONS, NO_TEXT, TIGHT

__all__ = ["DEGRADED", "claims", "plots", "markdown", "page"]

DEGRADED = [c.name for c in CONDITIONS if c.name != "clean"] + [TIGHT]


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
