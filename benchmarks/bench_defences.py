"""Training modes compared: the realtime adversary against natural training and the
baseline defences, on the same data, the same model, the same starting weights and the
same wall-clock budget (issues: realtime adversarial training; 20, the realtime adversary
pays off).

Each mode fine-tunes the same start (``--init``, by default the shipped natural model
``pretrained/latin``) for ``--minutes`` of training on real-document training lines
(``--data``, by default ``data/ft/stores.txt``: pages of the corpus's training split, clean,
watermarked and low-resolution), once per ``--seeds``, in its own process (so peak memory
is its own), then is measured on the real-document suite (``--suite``, test documents
only), with 95% bootstrap intervals over lines:

- clean, watermark and lowres-jpeg word accuracy (every line of each condition);
- robust word accuracy under APGD (L-inf 4/255, ``--apgd-steps`` steps, ``--restarts``)
  on a seeded sample of ``--attack-lines`` clean lines (the same lines for every mode);
- the targeted confusable attack's success rate on the held-out pairs (8/255, 20 steps);
- cost: training lines per second and trained images per second (every image whose loss
  reaches the weights counts: each realtime inner step, TRADES's and NSL's two images, each
  Free-AT replay), peak memory growth, each as a ratio to natural training.

    .venv/bin/python benchmarks/bench_defences.py --minutes 4 --seeds 0,1

Writes ``benchmarks/results/defences.json`` and prints a Markdown table. ``--cost`` measures
only the cost, on the same batches for every mode (no time budget, no LMDB pages read
during the measurement): seconds per batch and peak resident-memory growth.

``--target ACC`` measures the training cost to a target instead (issue: benchmark suite):
each mode trains from the same ``--init`` until its word accuracy on the run's validation
split reaches ``ACC`` (checked every ``--check-seconds`` of training time; the checks are
not counted) or ``--minutes`` run out. It reports the training seconds to the target,
seconds per epoch and peak memory growth, each as a ratio to natural training::

    .venv/bin/python benchmarks/bench_defences.py --target 0.75 --init RUN --minutes 6 \
        --json benchmarks/results/defences-to-target.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# name in the table: (mode, mode options)
ROWS = {
    "natural": ("natural", {}),
    "realtime": ("realtime", {}),  # the default preset: L-inf 8/255, signed steps of 4/255, 2 inner steps
    "realtime (3 steps)": ("realtime", {"max_inner_steps": 3}),
    "realtime (seed preset)": ("realtime", {"preset": "seed"}),
    "realtime (L-inf 4/255, 3 steps)": ("realtime", {"eps": "4/255", "adv_lr": "2/255", "max_inner_steps": 3}),
    # a random start (FGSM-RS's, N-FGSM's noise): the first inner step trains on a noisy line
    "realtime (L-inf 4/255 random start)": ("realtime", {"eps": "4/255", "start": "4/255", "adv_lr": "5/255"}),
    "realtime (L-inf 4/255 random start 3 steps)": ("realtime", {"eps": "4/255", "start": "4/255",
                                                                   "adv_lr": "2/255", "max_inner_steps": 3}),
    # a confused label far from the truth (a substitution for every 3rd character, up to 20):
    # descending L2 then moves the reading away from the truth almost everywhere on the line
    "realtime (L-inf 4/255 random start many confusions)": ("realtime", {"eps": "4/255", "start": "4/255",
                                                                          "adv_lr": "5/255", "confuse_rate": 0.33,
                                                                          "max_subs": 20}),
    # a low-frequency adversary (a coarse grid of 8 x 8 px cells, upsampled): it can change the
    # line's shade smoothly, as stains, uneven scans and watermark tints do, not draw strokes
    "realtime (low-frequency 16/255)": ("realtime", {"basis": "lowfreq", "cell": 8, "eps": "16/255",
                                                     "adv_lr": "16/255"}),
    "realtime (low-frequency 32/255)": ("realtime", {"basis": "lowfreq", "cell": 8, "eps": "32/255",
                                                     "adv_lr": "32/255"}),
    "pgd-at": ("pgd-at", {"eps": "4/255", "steps": 5}),
    "free-at": ("free-at", {"eps": "4/255", "replays": 4}),
    "fgsm-rs": ("fgsm-rs", {"eps": "4/255"}),
    "nsl": ("nsl", {}),
    "trades": ("trades", {"eps": "4/255", "steps": 5}),
}


def images_per_line(mode: str, opts: dict, history: list[dict]) -> float:
    """Images each line of a batch gives the weights: every realtime inner step (its mean
    over the run), TRADES's and NSL's clean and adversarial image, each Free-AT replay."""
    if mode == "realtime":
        steps = sum(x.get("train_inner_steps", 1.0) * x["epoch_seconds"] for x in history)
        return steps / max(1e-9, sum(x["epoch_seconds"] for x in history))
    if mode in ("trades", "nsl"):
        return 2.0
    if mode == "free-at":
        return float(opts.get("replays", 4))
    return 1.0


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def train_one(args) -> None:
    """Child process: train one mode, print a JSON line with its training figures."""
    import torch

    from ocr_robust.training import Trainer
    from ocr_robust.training.checkpoint import clear_run

    mode, opts = ROWS[args.one]
    torch.set_num_threads(args.threads)
    cfg = _config(args, args.one, mode, opts)
    clear_run(cfg.out)  # a row measured again starts anew
    t = Trainer(cfg, progress=False)
    base = rss_mb()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    r = t.fit()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    h = r["history"]
    lines_per_s = (sum(x["train_lines_per_s"] * x["epoch_seconds"] for x in h)
                   / max(1e-9, sum(x["epoch_seconds"] for x in h)))
    out = {"row": args.one, "seed": args.seed, "mode": mode, "options": opts, "run": cfg.out, "epochs_run": len(h),
           "steps": r["steps"], "train_lines_per_s": lines_per_s,
           "train_images_per_s": lines_per_s * images_per_line(mode, opts, h),
           "train_seconds": sum(x["epoch_seconds"] for x in h),
           "peak_rss_growth_mb": max(0.0, peak - base), "peak_rss_mb": peak,
           "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
           "adv_success": h[-1].get("train_adv_success") if h else None,
           "inner_steps": h[-1].get("train_inner_steps") if h else None}
    print("RESULT " + json.dumps(out), flush=True)


def cost_one(args) -> None:
    """Child process: one mode's cost on the same batches as every other mode: seconds per
    batch (after 2 warm-up batches) and peak resident memory growth over the steps."""
    import torch
    from torch.utils.data import DataLoader

    from ocr_robust.data.dataset import collate
    from ocr_robust.training import TrainConfig, Trainer

    mode, opts = ROWS[args.cost_one]
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(data=args.data, out=str(Path(args.work) / "cost"), mode=mode, mode_options=opts, epochs=1,
                      batch_size=32, lr=args.lr, schedule="constant", seed=0, init_from=args.init, augment=0.0,
                      notext_rate=0.0, sampler="bucket", report_images=0)
    t = Trainer(cfg, progress=False)
    batches = list(DataLoader(t.train_ds, batch_sampler=t.sampler.batches()[: args.cost_batches + 2],
                              collate_fn=collate))
    t.model.train()
    t._train_step(batches[0])
    t._train_step(batches[1])
    base = rss_mb()
    t0 = time.perf_counter()
    per_line = []
    for b in batches[2:]:
        stats = t._train_step(b)
        per_line.append(float(stats.get("inner_steps", 1.0)) if mode == "realtime" else
                        images_per_line(mode, opts, []))
    dt = (time.perf_counter() - t0) / (len(batches) - 2)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = sum(len(b["texts"]) for b in batches[2:]) / (len(batches) - 2)
    images = lines * sum(per_line) / len(per_line)
    print("RESULT " + json.dumps({"row": args.cost_one, "seconds_per_batch": dt, "lines_per_batch": lines,
                                  "images_per_batch": images, "seconds_per_image": dt / images,
                                  "peak_rss_growth_mb": max(0.0, peak - base),
                                  "batches": len(batches) - 2}), flush=True)


def target_one(args) -> None:
    """Child process: train one mode from ``--init`` until the validation word accuracy
    reaches ``--target`` or ``--minutes`` of training run out; print the curve."""
    import torch

    from ocr_robust.evaluation.lines import evaluate
    from ocr_robust.training import Trainer

    mode, opts = ROWS[args.target_one]
    torch.set_num_threads(args.threads)
    # no human-check page: its attacks would count as training time
    cfg = dataclasses.replace(_config(args, args.target_one, mode, opts), report_images=0)
    t = Trainer(cfg, progress=False)
    curve: list[tuple[float, int, float]] = []  # (training seconds, step, validation word accuracy)
    next_check = [args.check_seconds]

    def check(tr: Trainer) -> str | None:
        s = tr.training_seconds()
        if s < next_check[0]:
            return None
        next_check[0] = s + args.check_seconds
        acc = evaluate(tr.model, tr.val_ds, tr.charset, tr.device).word_acc
        tr.model.train()
        curve.append((s, tr.step, acc))
        return "target reached" if acc >= args.target else None

    start = evaluate(t.model, t.val_ds, t.charset, t.device).word_acc
    base = rss_mb()
    r = t.fit(on_step=check)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = t.training_seconds()
    lines = t.step * cfg.batch_size  # batches are full but for each epoch's last
    reached = next((c for c in curve if c[2] >= args.target), None)
    print("RESULT " + json.dumps({
        "row": args.target_one, "mode": mode, "options": opts, "target": args.target, "start_val_word_acc": start,
        "seconds_to_target": reached[0] if reached else None, "steps_to_target": reached[1] if reached else None,
        "final_val_word_acc": curve[-1][2] if curve else start, "train_seconds": seconds, "steps": t.step,
        "seconds_per_epoch": seconds * len(t.train_ds) / max(lines, 1), "train_lines_per_s": lines / max(seconds, 1e-9),
        "peak_rss_growth_mb": max(0.0, peak - base), "curve": curve, "stopped": r["stopped"]}), flush=True)


def _config(args, row: str, mode: str, opts: dict):
    from ocr_robust.training import TrainConfig

    name = row.replace(" ", "_").replace("/", "-").replace("(", "").replace(")", "")
    return TrainConfig(data=args.data, out=str(Path(args.work) / f"{name}-s{args.seed}"),
                       model="crnn-small", mode=mode, mode_options=opts, epochs=args.epochs, batch_size=32,
                       lr=args.lr, schedule="constant", seed=args.seed, init_from=args.init,
                       time_limit_min=args.minutes, notext_rate=0.05,
                       sampler="hard" if mode == "realtime" else "bucket", report_images=0)


def format_target_table(rows: list[dict]) -> str:
    nat = next((r for r in rows if r["mode"] == "natural"), None)

    def ratio(k, r):
        return f"{r[k] / nat[k]:.2f}x" if nat and nat.get(k) and r.get(k) is not None else "n/a"

    def to_ratio(r):  # not reached: the training time is a lower bound of the time to the target
        if r["seconds_to_target"] is None and nat and nat.get("seconds_to_target"):
            return f"> {r['train_seconds'] / nat['seconds_to_target']:.2f}x"
        return ratio("seconds_to_target", r)

    out = ["| mode | start | time to target (s) | vs natural | s/epoch | vs natural | peak memory growth (MB) "
           "| vs natural | accuracy at the end |", "|" + "---|" * 9]
    for r in rows:
        to = (f"{r['seconds_to_target']:.0f}" if r["seconds_to_target"] is not None
              else f"not reached in {r['train_seconds']:.0f}")
        out.append(f"| {r['row']} | {100 * r['start_val_word_acc']:.2f}% | {to} | {to_ratio(r)} | "
                   f"{r['seconds_per_epoch']:.0f} | {ratio('seconds_per_epoch', r)} | {r['peak_rss_growth_mb']:.0f} | "
                   f"{ratio('peak_rss_growth_mb', r)} | {100 * r['final_val_word_acc']:.2f}% |")
    return "\n".join(out)


def run_child(name: str, args, flag: str) -> dict:
    cmd = [sys.executable, __file__, flag, name] + [x for k, v in vars(args).items()
                                                  if k not in ("one", "cost_one", "target_one", "rows", "json", "cost",
                                                               "seeds", "append", "measure_init")
                                                  and v is not None
                                                  and v is not False for x in (f"--{k.replace('_', '-')}", str(v))]
    return child_result(cmd, name)


def child_result(cmd: list[str], name: str) -> dict:
    """Run a child process of a benchmark; the JSON of its ``RESULT`` line (or exit, with
    the end of its output, when it has none)."""
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        print(p.stdout[-2000:], p.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"{name}: child failed")
    return json.loads(line[7:])


CONDITIONS = ("clean", "watermark", "lowres-jpeg")


def attack_sample(args) -> Path:
    """The clean lines every mode is attacked on: a seeded sample of the suite's clean
    condition, made once per work folder."""
    from ocr_robust.evaluation.suite import sample_store

    dst = Path(args.work) / f"attack-lines-{args.attack_lines}"
    if not (dst / "labels.tsv").exists():
        sample_store(Path(args.suite) / "clean", dst, None, args.attack_lines, 0)
    return dst


def measure(row: dict, args) -> dict:
    import torch

    from ocr_robust.data.dataset import LineDataset
    from ocr_robust.evaluation.attacks import attack_store
    from ocr_robust.evaluation.lines import evaluate
    from ocr_robust.runs import load_torch_model

    torch.set_num_threads(args.threads)
    model, charset, info = load_torch_model(row["run"])
    for c in CONDITIONS:
        s = evaluate(model, LineDataset.open(Path(args.suite) / c, charset, crop=info["crop"]), charset,
                     torch.device("cpu"))
        row[f"{c}_word_acc"], row[f"{c}_ci"], row[f"{c}_lines"] = s.word_acc, s.word_acc_ci(), s.lines
    lines = attack_sample(args)
    t0 = time.perf_counter()
    a = attack_store(model, charset, lines, "apgd", "4/255", steps=args.apgd_steps, restarts=args.restarts,
                     crop=info["crop"])
    row.update(apgd_4=a["robust_word_acc"], apgd_4_ci=a["robust_word_acc_ci"], attack_lines=a["lines"],
               attack_clean_word_acc=a["clean_word_acc"], apgd_seconds=time.perf_counter() - t0)
    t = attack_store(model, charset, lines, "confusable", "8/255", steps=20, step_size="1/255", crop=info["crop"])
    row["targeted_success"] = t["targeted_success"]
    return row


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", default="pretrained/latin")
    ap.add_argument("--data", default="data/ft/stores.txt")
    ap.add_argument("--suite", default="benchmarks/work/real-suite")
    ap.add_argument("--minutes", type=float, default=3.0, help="training budget per mode")
    ap.add_argument("--epochs", type=int, default=2, help="schedule length (the budget usually ends it first)")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seeds", default="0", help="training seeds, comma-separated: each row is trained once per seed")
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attack-lines", type=int, default=300)
    ap.add_argument("--apgd-steps", type=int, default=50)
    ap.add_argument("--restarts", type=int, default=1)
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--work", default="benchmarks/work/defences")
    ap.add_argument("--json", default="benchmarks/results/defences.json")
    ap.add_argument("--cost", action="store_true",
                    help="only the cost: seconds per batch and peak memory growth on the same batches for every mode")
    ap.add_argument("--cost-batches", type=int, default=10)
    ap.add_argument("--append", action="store_true", help="add the rows to those already in --json")
    ap.add_argument("--measure-init", action="store_true", help="also measure --init itself (no training)")
    ap.add_argument("--target", type=float,
                    help="measure the training time to this validation word accuracy (0..1) instead")
    ap.add_argument("--check-seconds", type=float, default=15.0, help="--target: validate every this many seconds")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--cost-one", help=argparse.SUPPRESS)
    ap.add_argument("--target-one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        train_one(args)
        return 0
    if args.cost_one:
        cost_one(args)
        return 0
    if args.target_one:
        target_one(args)
        return 0
    if args.target is not None:
        rows = []
        for name in args.rows.split(","):
            rows.append(run_child(name, args, "--target-one"))
            print(f"{name}: {json.dumps({k: v for k, v in rows[-1].items() if k != 'curve'})}", flush=True)
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2), encoding="utf-8")
        print(format_target_table(rows))
        return 0
    if args.cost:
        rows = [run_child(name, args, "--cost-one") for name in args.rows.split(",")]
        nat = next((r for r in rows if r["row"] == "natural"), rows[0])
        print("| mode | s/batch | vs natural | peak memory growth (MB) | vs natural |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['row']} | {r['seconds_per_batch']:.3f} | "
                  f"{r['seconds_per_batch'] / nat['seconds_per_batch']:.2f}x | "
                  f"{r['peak_rss_growth_mb']:.0f} | "
                  f"{r['peak_rss_growth_mb'] / max(nat['peak_rss_growth_mb'], 1e-9):.2f}x |")
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2), encoding="utf-8")
        return 0
    compare(args, measure, lambda name: run_child(name, args, "--one"), format_table, mode="none")
    return 0


def compare(args, measure, train, table, **start) -> None:
    """A comparison's main loop, shared by the bench_* scripts: the rows already in
    ``args.json`` kept with ``--append`` (a second part of the same comparison),
    ``--measure-init``'s row (the start itself, measured by the same protocol, with the
    ``start`` fields), then :func:`sweep` over ``train(name)`` (a child's row) measured by
    ``measure(row, args)``, and ``table(rows)`` printed."""
    out = Path(args.json)
    rows = json.loads(out.read_text(encoding="utf-8"))["rows"] if out.exists() and args.append else []
    t0 = time.perf_counter()
    if args.measure_init:
        rows.append(measure({"row": "start (no training)", "seed": None, "run": args.init, **start}, args))
        print(f"start: {json.dumps(rows[-1])}", flush=True)
    sweep(args, rows, out, lambda name: measure(train(name), args), t0)
    print(table(rows))


def sweep(args, rows: list[dict], out: Path, one, t0: float) -> None:
    """Every row of ``args.rows`` for every seed of ``args.seeds`` (``args.seed`` set for
    each), measured by ``one(name)``; ``out`` rewritten after each, so a stopped sweep keeps
    the rows it has."""
    for seed in [int(x) for x in args.seeds.split(",") if x]:
        args.seed = seed
        for name in [x for x in args.rows.split(",") if x]:
            row = one(name)
            rows.append(row)
            print(f"{name} seed {seed}: done ({time.perf_counter() - t0:.0f} s) {json.dumps(row)}", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2), encoding="utf-8")


def format_table(rows: list[dict]) -> str:
    """One line per row and seed, then per row the mean over seeds; ratios to natural's mean."""
    def p(v):
        return f"{100 * v:.2f}%"

    def ci(r, k):
        lo, hi = r[f"{k}_ci"]
        return f"{p(r[k if k == 'apgd_4' else f'{k}_word_acc'])} [{100 * lo:.1f}, {100 * hi:.1f}]"

    nat = [r for r in rows if r["mode"] == "natural"]
    nat_img = sum(r["train_images_per_s"] for r in nat) / len(nat) if nat else float("nan")
    nat_mem = sum(r["peak_rss_growth_mb"] for r in nat) / len(nat) if nat else float("nan")
    head = ("| mode | seed | clean | watermark | lowres-jpeg | APGD-50 4/255 | targeted hit | lines/s | images/s "
            "| time per image vs natural | peak memory vs natural |")
    out = [head, "|" + "---|" * 11]
    for r in rows:
        cost = ("| - | - | - | - |" if r["mode"] == "none" else
                f"| {r['train_lines_per_s']:.0f} | {r['train_images_per_s']:.0f} | "
                f"{nat_img / r['train_images_per_s']:.2f}x | {r['peak_rss_growth_mb'] / nat_mem:.2f}x |")
        out.append(f"| {r['row']} | {r['seed'] if r['seed'] is not None else '-'} | {ci(r, 'clean')} | "
                   f"{ci(r, 'watermark')} | {ci(r, 'lowres-jpeg')} | {ci(r, 'apgd_4')} | "
                   f"{p(r['targeted_success'])} {cost}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
