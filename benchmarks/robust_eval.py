#!/usr/bin/env python3
"""Robust word accuracy a reviewer would accept (issue 20, section 1): strong white-box
attacks, a black-box check, a held-out targeted attack, on random real-document lines, with
95% bootstrap intervals.

    python benchmarks/robust_eval.py --models pretrained/latin [runs/x ...] \\
        [--suite benchmarks/work/real-suite] [--conditions clean,watermark,lowres-jpeg] [--lines 1000] \\
        [--quick] [--out benchmarks/results/robust-eval.json]

For every model and condition, the same ``--lines`` lines (a seeded sample of the suite's
clean line names, kept in every condition) are attacked with:

- APGD on the CTC loss, L-inf 4/255, 50 steps, 3 restarts (the headline: a line is robust
  only if no restart breaks a word);
- PGD, L-inf 4/255, 50 steps, 3 restarts, the worst iterate kept;
- APGD, L2 0.5, 50 steps, 3 restarts;
- the Square attack, L-inf 4/255 (black-box: no gradients; ``--square-lines`` of the lines,
  ``--square-queries`` queries), against gradient masking;
- the targeted confusable attack at 8/255 on the held-out pairs (``confusables:eval``);
- on the watermark condition, APGD confined to the watermark's pixels (FAWA-style: where
  a line differs from its clean copy) at L-inf 4/255 and 32/255, the threat closest to
  this product's use;
- an eps sweep of APGD (10 steps, 1 restart) from 1/255 to 32/255 on the clean lines: accuracy
  must fall to near 0, or the attack is broken.

``--parts`` runs some of these (``strong,confusable,confined,square,sweep``; ``apgd``: of
the strong attacks only the headline APGD L-inf 4/255); every row
records its wall-clock time. ``--quick`` is a smoke run (fewer lines and steps) to check the protocol, not a result.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_ingest import machine  # noqa: E402

from ocr_robust.evaluation.attacks import attack_store  # noqa: E402
from ocr_robust.evaluation.suite import load_suite, sample_store  # noqa: E402
from ocr_robust.runs import load_torch_model, pick_device  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--suite", default=str(HERE / "work" / "real-suite"))
    ap.add_argument("--conditions", default="clean,watermark,lowres-jpeg")
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--square-lines", type=int, default=200)
    ap.add_argument("--square-queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--parts", default="strong,confusable,confined,square,sweep")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 40 lines, 10 steps, 1 restart")
    ap.add_argument("--out", default=str(HERE / "results" / "robust-eval.json"))
    a = ap.parse_args()
    if a.quick:
        a.lines, a.steps, a.restarts, a.square_lines, a.square_queries = 40, 10, 1, 20, 100
    suite = Path(a.suite)
    desc = load_suite(suite)
    conds = [c for c in a.conditions.split(",") if c]
    missing = [c for c in conds if c not in desc["conditions"]]
    if missing:
        raise SystemExit(f"robust_eval.py: the suite has no condition {missing[0]!r}")
    device = pick_device(a.device)
    tmp = Path(tempfile.mkdtemp(prefix="robust-eval-"))
    names = sample_store(suite / "clean", tmp / "clean", None, a.lines, a.seed)
    stores = {"clean": tmp / "clean"}
    for c in conds:
        if c != "clean":
            sample_store(suite / c, tmp / c, names, 0, a.seed)
            stores[c] = tmp / c
    sq_names = names[: a.square_lines]
    result = {"machine": machine(), "suite": str(suite), "lines": len(names), "seed": a.seed, "quick": a.quick,
              "protocol": {"steps": a.steps, "restarts": a.restarts, "square_lines": len(sq_names),
                           "square_queries": a.square_queries}, "rows": []}
    out = Path(a.out)

    def row(model_name, cond, data, attack, eps, norm="linf", steps=a.steps, restarts=a.restarts, **kw):
        t0 = time.perf_counter()
        r = attack_store(model, charset, data, attack, eps, norm, steps, None, restarts, None, 32, a.seed, device,
                         crop=info["crop"], **kw)
        rec = {"model": model_name, "condition": cond, **{k: v for k, v in r.items() if k != "problems"},
               "wall_s": round(time.perf_counter() - t0, 1)}
        result["rows"].append(rec)
        ci = r["robust_word_acc_ci"]
        where = (f" (watermark pixels: {r['region_lines']} lines under one, clean "
                 f"{100 * r['region_clean_word_acc']:.2f}%, robust {100 * r['region_robust_word_acc']:.2f}%)"
                 if r["region_from"] else "")
        print(f"{model_name} {cond:<12} {attack:<10} {norm} {r['eps_text']:<7}{where} "
              f"robust {100 * r['robust_word_acc']:6.2f}% [{100 * ci[0]:.2f}, {100 * ci[1]:.2f}] "
              f"(clean {100 * r['clean_word_acc']:.2f}%, {rec['wall_s']} s)", flush=True)
        out.write_text(json.dumps(result, indent=2), encoding="utf-8")

    parts = set(a.parts.split(","))
    for m in a.models:
        model, charset, info = load_torch_model(m, device)
        for cond in ["clean", *[c for c in conds if c != "clean"]]:
            if "strong" in parts or "apgd" in parts:
                row(m, cond, stores[cond], "apgd", "4/255")
            if "strong" in parts:
                row(m, cond, stores[cond], "pgd", "4/255")
                row(m, cond, stores[cond], "apgd", "0.5", norm="l2")
            if "confusable" in parts:
                row(m, cond, stores[cond], "confusable", "8/255", steps=20, restarts=1)
        if "confined" in parts and "watermark" in stores:
            for e in ("4/255", "32/255"):  # the sample copies name their lines alike: clean is the unmarked copy
                row(m, "watermark", stores["watermark"], "apgd", e, region_from=stores["clean"])
        if "square" in parts:
            sq = tmp / "square"
            if not sq.exists():  # from the suite's store: the sample's copy names its lines anew
                sample_store(suite / "clean", sq, sq_names, 0, a.seed)
            row(m, "clean", sq, "square", "4/255", steps=a.square_queries, restarts=1)
        if "sweep" in parts:
            for e in ("1/255", "2/255", "4/255", "8/255", "16/255", "32/255"):
                row(m, "clean", stores["clean"], "apgd", e, steps=10, restarts=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
