"""The ``ocr-robust`` command."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import ExportError, InputError
from .inference import ENGINES, default_model

if TYPE_CHECKING:
    import numpy as np

__all__ = ["cmd_synth", "cmd_ingest", "cmd_convert", "cmd_models", "parse_options", "add_config_flags", "train_config",
           "cmd_train", "cmd_attack", "cmd_bench", "cmd_export", "IMAGE_EXTS", "cmd_recognize", "cmd_serve",
           "cmd_benchmark", "build_parser", "main"]


def _expand_pdfs(items: list[str]) -> list[str]:
    """PDF paths from files, folders (their *.pdf, recursively), glob patterns and ``@LIST``
    (a text file naming one PDF per line; relative paths are relative to the list)."""
    out: list[str] = []
    for item in items:
        if item.startswith("@"):
            lst = Path(item[1:])
            try:
                rows = lst.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise InputError(lst, f"cannot read the list of PDFs: {e}") from None
            out += [str(lst.parent / r.strip()) for r in rows if r.strip() and not r.startswith("#")]
            continue
        p = Path(item)
        if p.is_dir():
            out += sorted(str(f) for f in p.rglob("*") if f.suffix.lower() == ".pdf" and f.is_file())
        elif any(ch in item for ch in "*?[") and not p.exists():
            out += sorted(glob.glob(item, recursive=True))
        else:
            out.append(item)
    return out


def cmd_synth(a: argparse.Namespace) -> int:
    from .pdf.fonts import font_lists
    from .pdf.synth import SynthConfig, synthesize
    from .pdf.watermarks import style_lists

    if a.list:
        print("font lists:")
        for k, v in font_lists().items():
            print(f"  {k}: {', '.join(v)}")
        print("watermark style lists:")
        for k, v in style_lists().items():
            print(f"  {k}: {', '.join(v) or '(no watermarks)'}")
        return 0
    if not a.out:
        raise SystemExit("ocr-robust synth: --out is required")
    if a.engine:
        from .pdf.typeset import ENGINES, typeset_corpus

        engines = [e.strip() for e in a.engine.split(",") if e.strip()]
        bad = [e for e in engines if e not in ENGINES]
        if bad or not engines:
            raise SystemExit(f"ocr-robust synth: --engine {a.engine!r}: choose from {', '.join(ENGINES)}")
        if a.fonts not in ("train", "heldout"):
            raise SystemExit("ocr-robust synth --engine: --fonts is train or heldout (the engines' own typefaces)")
        try:
            t = typeset_corpus(a.out, engines, a.documents, a.seed, heldout=a.fonts == "heldout", progress=not a.quiet)
        except RuntimeError as e:
            raise SystemExit(f"ocr-robust synth: {e}") from None
        print(f"typeset {t['documents']} documents ({', '.join(engines)}) into {t['out']}; record in typeset.jsonl")
        for f in t["failed"]:
            print(f"  failed {f['file']} ({f['engine']}, {f['font']}): {f['reason']}", file=sys.stderr)
        return 0 if t["documents"] else 1
    s = synthesize(SynthConfig(out=a.out, pages=a.pages, seed=a.seed, fonts=a.fonts, watermarks=a.watermarks,
                               clean_fraction=a.clean_fraction, pages_per_doc=a.pages_per_doc, lang=a.lang),
                   progress=not a.quiet)
    print(f"wrote {s['pages']} pages ({s['lines']} text lines, {s['clean_pages']} without watermarks) "
          f"in {s['documents']} PDFs to {s['out']}; per-page record in manifest.jsonl")
    return 0


def cmd_ingest(a: argparse.Namespace) -> int:
    from .pdf.ingest import IngestConfig, format_summary, ingest

    pdfs = _expand_pdfs(a.pdfs)
    if not pdfs:
        raise InputError(" ".join(a.pdfs), "no PDF file found")
    if a.shard:
        from .pdf.select import shard_of

        pdfs = shard_of(pdfs, a.shard)
        if not pdfs:
            raise InputError(" ".join(a.pdfs), f"shard {a.shard} of these PDFs is empty: fewer PDFs than shards")
    cfg = IngestConfig(out=a.out, dpi=a.dpi, lmdb=a.lmdb, degrade=a.degrade or "", charset=a.charset, seed=a.seed,
                       workers=a.workers, margin=a.margin, max_page_pixels=a.max_page_pixels,
                       watermarks=a.watermarks or "", watermark_fraction=a.watermark_fraction, max_pages=a.max_pages,
                       page_timeout=a.page_timeout, backgrounds=a.backgrounds)
    s = ingest(pdfs, cfg, progress=not a.quiet)
    print(format_summary(s))
    if a.json:
        Path(a.json).write_text(json.dumps(s, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0 if s["lines"] > 0 else 1


def cmd_convert(a: argparse.Namespace) -> int:
    from .data.store import convert

    to_lmdb = {"lmdb": True, "folder": False, "auto": None}[a.to]
    s = convert(a.src, a.dst, to_lmdb)
    for p in s["problems"][:20]:
        print(f"skipped: {p}", file=sys.stderr)
    print(f"converted {s['samples']} samples from {s['src']} to {s['dst']} ({s['format']})"
          + (f"; {s['skipped']} bad lines skipped" if s["skipped"] else ""))
    return 0


def cmd_models(a: argparse.Namespace) -> int:
    from .charset import Charset
    from .models import REGISTRY, build_model, count_params, forward_flops

    n = Charset.load("latin").num_classes
    print(f"{'model':<18}{'params':>10}{'GFLOPs/line':>13}  backbone channels (block), head (32x256 line, latin)")
    for name, cfg in REGISTRY.items():
        m = build_model(name, num_classes=n)
        head = (f"BiLSTM {cfg.rnn_hidden} x {cfg.rnn_layers}" if cfg.head == "lstm"
                else f"{cfg.rnn_layers} temporal convs of {2 * cfg.rnn_hidden}")
        print(f"{name:<18}{count_params(m):>10,}{forward_flops(m, 256) / 1e9:>13.3f}  "
              f"{cfg.channels} ({cfg.block}), {head}")
    return 0


def parse_options(items: list[str] | None) -> dict:
    """``KEY=VALUE`` strings -> dict, values read as YAML scalars (``4``, ``0.5``, ``linf``,
    ``4/255`` stays a string and is parsed by the mode)."""
    import yaml

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--opt {item!r}: expected KEY=VALUE")
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError as e:  # a tag (!!python/...) or broken YAML: refused, never constructed
            raise ValueError(f"--opt {item!r}: not a plain YAML value ({str(e).splitlines()[0]})") from None
    return out


def _config_flags(cls) -> list[tuple[str, Any]]:
    """(flag, field) for every field of a config dataclass that has a flag: ``--FIELD-NAME``
    unless its metadata names another, none for ``flag: None``."""
    out = []
    for f in fields(cls):
        flag = f.metadata.get("flag", "")
        if flag is None:
            continue
        out.append((flag or "--" + f.name.replace("_", "-"), f))
    return out


def add_config_flags(parser: argparse.ArgumentParser, cls) -> None:
    """One flag per config field, typed from its annotation, with the field's help and
    default: the flags are built from the config, never mirrored by hand."""
    for flag, f in _config_flags(cls):
        kinds = {k.strip() for k in str(f.type).split("|")}
        default = f.default if f.default is not MISSING else None
        kw: dict[str, Any] = {"dest": f.name, "default": None,
                              "help": f"{f.metadata.get('help', '')} (default {default!r})".replace("%", "%%")}
        if "bool" in kinds:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            # a field that takes a number or a word (augment: 1.0 or patchgan:GEN) is parsed by the config
            kw["type"] = str if "str" in kinds else int if "int" in kinds else float if "float" in kinds else str
            kw["metavar"] = f.name.upper() if not f.metadata.get("choices") else None
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
        parser.add_argument(flag, **{k: v for k, v in kw.items() if v is not None or k == "default"})


def train_config(a: argparse.Namespace):
    """The run's TrainConfig: the defaults, then ``--config``, then the flags, then ``--opt``."""
    from .training.config import TrainConfig

    over = {f.name: getattr(a, f.name) for _, f in _config_flags(TrainConfig)}
    try:
        if a.config:
            cfg = TrainConfig.from_yaml(a.config, **over)
        else:
            cfg = TrainConfig(**{k: v for k, v in over.items() if v is not None})
        cfg = replace(cfg, mode_options={**cfg.mode_options, **parse_options(a.opt)})
    except ValueError as e:
        raise InputError(a.config or "ocr-robust train", str(e)) from None
    if not cfg.data:
        raise InputError("--data", "a line store to train on is required (--data or 'data:' in the config)")
    return cfg


def cmd_train(a: argparse.Namespace) -> int:
    """``ocr-robust train``; under ``torchrun`` every process runs it, joined in one process
    group (``training/distributed.py``), and rank 0 writes and prints."""
    from .training import distributed

    cfg = train_config(a)
    w = distributed.init_from_env(cfg.device)
    try:
        return _train(a, cfg, w)
    finally:
        distributed.close()


def _train(a: argparse.Namespace, cfg, w) -> int:
    from .training import Trainer
    from .training.checkpoint import STATE_FILE, clear_run, run_files
    from .training.distill import prepare_teachers

    if a.resume and a.overwrite:
        raise InputError(cfg.out, "--resume continues the run and --overwrite starts it anew: choose one")
    existing = run_files(cfg.out)
    if existing and not (a.resume or a.overwrite):
        raise InputError(cfg.out, f"already holds a run ({', '.join(existing)}): --resume continues it, --overwrite "
                                  "starts it anew, or choose another --out")
    if a.resume and not (Path(cfg.out) / STATE_FILE).is_file():
        raise InputError(cfg.out, f"nothing to resume: no training state ({STATE_FILE}) in it; start without --resume")
    w.barrier()  # every rank has looked at the folder before rank 0 writes into it
    if a.overwrite and w.main:
        clear_run(cfg.out)
    w.barrier()
    cfg = prepare_teachers(cfg, progress=not a.quiet)  # --distill-folds: the fold teachers first
    trainer = Trainer(cfg, progress=not a.quiet)
    if w.main:
        for p in trainer.problems[:20]:
            print(f"skipped: {p}", file=sys.stderr)
        if trainer.problems:
            print(f"{len(trainer.problems)} lines skipped (see above)", file=sys.stderr)
        if w.size > 1:
            print(f"training on {w.size} processes ({trainer.device.type}), {cfg.batch_size} lines per batch on each; "
                  f"peak lr {trainer.lr:g} ({cfg.lr_scaling} scaling)")
    if a.resume and trainer.resume() and w.main:
        print(f"resuming {cfg.out} at epoch {trainer.epoch}")
    r = trainer.fit()
    if not w.main:
        return 0
    if r["stopped"].startswith(("signal", "stop file")):
        print(f"stopped by {r['stopped']} at epoch {trainer.epoch + 1}, batch {trainer.batch_in_epoch}; checkpoint "
              f"saved: continue with --resume")
        return 0
    if r["unreadable"]:
        print(f"{r['unreadable']} lines skipped: their images did not decode (see above)", file=sys.stderr)
    print(f"trained {r['epochs']} epochs ({r['steps']} steps, {r['seconds']:.0f} s, stopped by {r['stopped']}); "
          f"best validation word accuracy {100 * r['best_val_word_acc']:.2f}%; run in {cfg.out}")
    return 0


def _generator_out(a: argparse.Namespace, weights: str, what: str) -> Path:
    """The folder a generator trains into: not one holding another model (unless
    --overwrite) or a recognizer's run."""
    from .training.checkpoint import run_files

    out = Path(a.out)
    if (out / weights).exists() and not a.overwrite:
        raise InputError(out, f"already holds a {what}: --overwrite trains it anew, or choose another --out")
    if run_files(out):
        raise InputError(out, f"holds a training run: give the {what} its own folder")
    return out


def _generator_loop(a: argparse.Namespace) -> dict:
    """The training-loop settings ``patchgan train`` and ``san train`` share."""
    return {"data": a.data, "out": a.out, "epochs": a.epochs, "steps_per_epoch": a.steps_per_epoch,
            "batch_size": a.batch_size, "lr": a.lr, "seed": a.seed, "device": a.device, "time_limit_min": a.time_limit}


def cmd_patchgan(a: argparse.Namespace) -> int:
    from .generative.patchgan import GENERATOR_FILE, PatchGANConfig, train_patchgan

    out = _generator_out(a, GENERATOR_FILE, "patch GAN")
    r = train_patchgan(PatchGANConfig(**_generator_loop(a), adv_weight=a.adv_weight), progress=not a.quiet)
    last = r["history"][-1]
    print(f"trained {len(r['history'])} epochs ({r['seconds']:.0f} s, stopped by {r['stopped']}): validation hole L1 "
          f"{last['val_hole_l1']:.4f} (the flat fill: {last['val_hole_l1_flat']:.4f}); generator and galleries in "
          f"{out}")
    return 0


def cmd_san(a: argparse.Namespace) -> int:
    from .generative.san import SAN_FILE, SANTrainConfig, train_san

    out = _generator_out(a, SAN_FILE, "SAN")
    r = train_san(SANTrainConfig(**_generator_loop(a), feature_model=a.feature_model or ""), progress=not a.quiet)
    last = r["history"][-1]
    floor = r["history"][0].get("fid_real_halves")
    print(f"trained {len(r['history'])} epochs ({r['seconds']:.0f} s, stopped by {r['stopped']}): FID-like distance "
          f"{last['fid']:.3f} (real against real: {floor:.3f}); SAN, galleries and fid.png in {out}")
    return 0


def cmd_attack(a: argparse.Namespace) -> int:
    from .evaluation.attacks import attack_store, format_rows
    from .runs import load_torch_model, pick_device

    device = pick_device(a.device)
    model, charset, info = load_torch_model(a.model, device)
    rows = []
    for d in a.data:
        for k, eps in enumerate(a.eps.split(",")):
            ex = Path(a.save_examples) / f"{Path(d).name}-{a.attack}-{k}" if a.save_examples else None
            rows.append(attack_store(model, charset, d, a.attack, eps.strip() or None, a.norm, a.steps, a.step_size,
                                     a.restarts, a.limit, a.batch_size, a.seed, device, ex, crop=info["crop"],
                                     confusables=a.confusables, region_from=a.region_from))
    for r in rows[:: max(1, len(a.eps.split(",")))]:  # once per data set
        for p in r["problems"][:20]:
            print(f"skipped: {p}", file=sys.stderr)
        if r["skipped"]:
            print(f"{r['data']}: {r['skipped']} lines skipped (see above)", file=sys.stderr)
    print(f"model {a.model} (trained {info['mode']}), white-box {a.attack}:")
    print(format_rows(rows))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    if a.save_examples:
        print(f"example pages: {a.save_examples}/*/index.html")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    a.model = a.model or str(default_model())
    from .evaluation.lines import bench, format_table

    rows = bench(a.model, a.data, batch_size=a.batch_size, decoder=a.decoder, engine=a.engine)
    print(format_table(rows))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    a.model = a.model or str(default_model())
    from .export import export

    r = export(a.model, a.out, a.format, quantize=a.quantize, sample=a.sample, calibration=a.calibration)
    print(f"exported {a.model} to {r['out']}: {', '.join(r['files'])}")
    for fmt, p in r["parity"].items():
        tol = f" (tolerance {p['tolerance']})" if "tolerance" in p else f" (needs {100 * p['min_agreement']:.0f}%)"
        print(f"  parity {fmt} vs PyTorch: max |logprob diff| {p['max_abs_diff']:.1e}, "
              f"same text on {p['same_text']} inputs{tol}")
        if "word_acc" in p:
            print(f"  accuracy {fmt}: {100 * p['word_acc']:.2f}% of the words of {p['lines']} sample lines, PyTorch "
                  f"{100 * p['word_acc_pytorch']:.2f}% (may lose at most {100 * p['max_drop']:.1f} points)")
    return 0


IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".pgm", ".pnm"}


def _expand_inputs(items: list[str]) -> list[str]:
    """Files as given; folders as their images and PDFs (sorted, recursively)."""
    out: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTS | {".pdf"})
        else:
            out.append(item)
    return out


def cmd_recognize(a: argparse.Namespace) -> int:
    a.model = a.model or str(default_model())
    from .inference import Recognizer, read_image
    from .pdf.read import PageReader, read_page_image

    rec = Recognizer(a.model, decoder=a.decoder, beam=a.beam, engine=a.engine,
                     lexicon=set(Path(a.lexicon).read_text(encoding="utf-8").split()) if a.lexicon else None)
    inputs = _expand_inputs(a.inputs)
    if not inputs:
        raise InputError(" ".join(a.inputs), "no image or PDF found")
    failed = 0
    results: list[dict] = []  # one per input, in order

    def fail(item: str, e: Exception) -> None:
        nonlocal failed
        print(f"ocr-robust recognize: {e}", file=sys.stderr)
        failed += 1

    lines: list[tuple[str, np.ndarray]] = []  # (path, image) of line images, read together in batches
    pdfs = PageReader(dpi=a.dpi, timeout_s=a.page_timeout)
    for item in inputs:
        is_pdf = item.lower().endswith(".pdf")
        try:
            if is_pdf:
                pages = [r.as_dict() for r in pdfs.read(rec, item)]
                for pg in pages:
                    if pg["error"]:
                        print(f"ocr-robust recognize: {item} p.{pg['page']}: skipped: {pg['error']}", file=sys.stderr)
                results.append({"file": item, "kind": "pdf", "pages": pages})
            elif a.pages:
                results.append({"file": item, "kind": "page",
                                "pages": [read_page_image(rec, read_image(item)).as_dict()]})
            else:
                lines.append((item, read_image(item)))
                results.append({"file": item, "kind": "line"})
        except InputError as e:
            fail(item, e)
    pdfs.close()
    reads = iter(rec.recognize([im for _, im in lines])) if lines else iter(())
    for r in results:
        if r["kind"] == "line":
            d = next(reads)
            r.update(text=d.text, confidence=round(d.confidence, 4))
    _print_readings(results, a.output)
    return 1 if failed else 0


def _print_readings(results: list[dict], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return
    if fmt == "tsv":
        print("file\tpage\tline\tx0\ty0\tx1\ty1\tconfidence\ttext")
    for r in results:
        if r["kind"] == "line":
            print(f"{r['file']}\t\t\t\t\t\t\t{r['confidence']:.3f}\t{r['text']}" if fmt == "tsv" else r["text"])
            continue
        for pg in r["pages"]:
            if fmt == "text" and len(results) + len(r["pages"]) > 2:
                print(f"==> {r['file']} page {pg['page']} <==")
            for k, ln in enumerate(pg["lines"], 1):
                if fmt == "tsv":
                    box = "\t".join(f"{v:g}" for v in ln["box"])
                    print(f"{r['file']}\t{pg['page']}\t{k}\t{box}\t{ln['confidence']:.3f}\t{ln['text']}")
                else:
                    print(ln["text"])


def serve_threads(engine: str, workers: int, threads: int | None, streams: int | None) -> tuple[int | None, int]:
    """Inference threads per batch and batches at once for each of ``workers`` processes: the
    worker processes share the cores. ONNX Runtime sessions take concurrent calls, so by default
    each of a worker's cores reads a batch on one thread (on 2 cores that reads more lines per
    second than one batch on 2 threads: RESULTS.md, "Every engine in one run"); PyTorch reads
    one batch at a time on all of a worker's cores."""
    for flag, v in (("--threads", threads), ("--streams", streams)):
        if v is not None and v < 1:
            raise SystemExit(f"ocr-robust serve: {flag}: expected a positive number, got {v}")
    cores = max(1, (os.cpu_count() or 1) // workers)
    if engine in ("onnx", "int8"):
        threads = threads or (max(1, cores // streams) if streams else 1)
        return threads, streams or max(1, cores // threads)
    if streams not in (None, 1):
        raise SystemExit(f"ocr-robust serve: --streams {streams} needs an ONNX Runtime engine (onnx or int8); "
                         f"the {engine} engine reads one batch at a time")
    return threads or (cores if workers > 1 else None), 1


def cmd_serve(a: argparse.Namespace) -> int:
    a.model = a.model or str(default_model())
    from .inference import Recognizer
    from .service import Limits, Settings, serve

    # a bad limit, a wrong path or a broken model file fails here, in one line, not inside the server
    over = {f.name: getattr(a, f.name) for f in fields(Limits) if f.name != "max_body_bytes"}
    limits = Limits(max_body_bytes=int(a.max_body_mb * 1024 * 1024), **over)
    engine = Recognizer(a.model, engine=a.engine).engine
    threads, streams = serve_threads(engine, a.workers, a.threads, a.streams)
    settings = Settings(model=a.model, engine=a.engine, threads=threads, streams=streams, max_batch_lines=a.max_batch,
                        max_wait_ms=a.max_wait_ms, limits=limits)
    serve(settings, a.host, a.port, a.workers)
    return 0


def cmd_benchmark(a: argparse.Namespace) -> int:
    if a.action == "build":
        from .evaluation.suite import build_suite

        if not a.out:
            raise SystemExit("ocr-robust benchmark build: --out is required")
        d = build_suite(a.out, pages=a.pages, seed=a.seed, from_pdf=_expand_pdfs(a.from_pdf) if a.from_pdf else None,
                        no_text=a.no_text, progress=not a.quiet, max_pages=a.max_pages, max_lines=a.max_lines,
                        conditions=a.conditions.split(",") if a.conditions else None)
        print(f"suite {a.out} (version {d['version']}, seed {d['seed']}; {d['source']}):")
        for name, c in d["conditions"].items():
            print(f"  {name:<17}{c['lines']:>6} lines  {c['what']}")
        return 0
    from .evaluation.benchmark import EPS, run_benchmark

    if not (a.suite and a.out and a.models):
        raise SystemExit("ocr-robust benchmark run: --suite, --models and --out are required")
    compare = [c.strip() for c in a.compare.split(",") if c.strip()] if a.compare else []
    r = run_benchmark(a.suite, a.models, compare, a.out, attack_lines=a.attack_lines, pgd_steps=a.pgd_steps,
                      limit=a.limit, eps=EPS, progress=not a.quiet,
                      conditions=[c.strip() for c in a.conditions.split(",") if c.strip()] if a.conditions else None)
    print((Path(a.out) / "results.md").read_text(encoding="utf-8"))
    print(f"report: {Path(a.out) / 'index.html'}")
    return 1 if r["missing"] and a.require_anchors else 0


def _generator_flags(s: argparse.ArgumentParser, data_help: str, out_help: str, lr: float) -> None:
    """The flags ``patchgan train`` and ``san train`` share."""
    s.add_argument("action", choices=["train"])
    s.add_argument("--data", required=True, help=data_help)
    s.add_argument("--out", required=True, help=out_help)
    s.add_argument("--epochs", type=int, default=5)
    s.add_argument("--steps-per-epoch", type=int, default=200, help="batches per epoch")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--lr", type=float, default=lr)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.add_argument("--time-limit", type=float, help="stop after this many minutes (the epoch's gallery is written)")
    s.add_argument("--overwrite", action="store_true")
    s.add_argument("--quiet", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    from .pdf.ingest import IngestConfig
    from .pdf.read import DPI

    ing = IngestConfig(out="")  # the ingest flags' defaults are the config's
    p = argparse.ArgumentParser(prog="ocr-robust", description="Robust OCR line recognizers for real documents.")
    p.add_argument("--version", action="version", version=f"ocr-robust {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write a synthetic, watermarked PDF corpus")
    s.add_argument("--out", help="output folder")
    s.add_argument("--pages", type=int, default=20)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--fonts", default="train", help="font faces and/or lists, comma-separated (see --list)")
    s.add_argument("--watermarks", default="train", help="watermark styles and/or lists, comma-separated (see --list)")
    s.add_argument("--clean-fraction", type=float, default=0.25, help="share of pages left without watermarks")
    s.add_argument("--engine", help="typeset documents with real engines instead: latex, office, html "
                                    "(comma-separated; make engines installs them); the PDFs are clean, "
                                    "ingest --watermarks paints them")
    s.add_argument("--documents", type=int, default=10, help="with --engine: documents per engine")
    s.add_argument("--pages-per-doc", type=int, default=5)
    s.add_argument("--lang", default="latin")
    s.add_argument("--list", action="store_true", help="list fonts, watermark styles and their named lists")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("ingest", help="crop labelled text lines out of born-digital PDFs")
    s.add_argument("pdfs", nargs="+", help="PDF files, folders, glob patterns or @LIST (a file naming PDFs)")
    s.add_argument("--out", required=True, help="output line store (folder, or LMDB with --lmdb)")
    s.add_argument("--dpi", type=int, default=ing.dpi)
    s.add_argument("--lmdb", action="store_true", help="write an LMDB store instead of labels.tsv + images")
    s.add_argument("--degrade", default="", help="page degradations, e.g. jpeg,blur or jpeg:30-50,downscale:0.5-0.7")
    s.add_argument("--charset", default=ing.charset, help="charset name or file; lines outside it are skipped")
    s.add_argument("--seed", type=int, default=ing.seed, help="seed for the degradations")
    s.add_argument("--workers", type=int, default=ing.workers, help="processes (default: one per CPU core)")
    s.add_argument("--margin", type=float, default=ing.margin, help="crop margin, fraction of the line height")
    s.add_argument("--max-page-pixels", type=int, default=ing.max_page_pixels,
                   help="refuse pages whose raster is larger")
    s.add_argument("--watermarks", default="", help="paint these watermark styles (names or lists: train, heldout, "
                                                   "all) on copies of the pages before rasterising")
    s.add_argument("--watermark-fraction", type=float, default=ing.watermark_fraction,
                   help="share of pages painted (with --watermarks)")
    s.add_argument("--max-pages", type=int, default=0, help="per PDF, ingest this many pages drawn by --seed (0: all)")
    s.add_argument("--page-timeout", type=float, default=ing.page_timeout,
                   help="seconds per page (and per PDF's opening); a page past it is reported and skipped")
    s.add_argument("--backgrounds", type=int, default=0,
                   help="write up to N text-free crops per page instead of its lines (empty labels): margins, gaps, "
                        "watermark strokes and stamps, for `san train`")
    s.add_argument("--shard", metavar="I/N", help="ingest only shard I of N (0 <= I < N): every N-th PDF of the "
                                                  "sorted list, from the I-th; train on the shards' stores together "
                                                  "with --data OUT0,OUT1,... or a stores.txt")
    s.add_argument("--json", help="also write the summary to this file (it is always in OUT/ingest.json)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("convert", help="convert a line store between folder and LMDB formats")
    s.add_argument("src")
    s.add_argument("dst")
    s.add_argument("--to", choices=["auto", "lmdb", "folder"], default="auto",
                   help="target format (auto: the other one)")
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser("models", help="list the registered models with parameters and FLOPs per line")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("train", help="train a recognizer on a line store",
                       description="Every TrainConfig field (ocr_robust/training/config.py) is a flag; flags "
                                   "override --config.")
    s.add_argument("--config", help="YAML with TrainConfig fields; command-line flags override it")
    s.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    s.add_argument("--overwrite", action="store_true", help="start the run in --out anew, deleting the old one's files")
    s.add_argument("--opt", action="append", metavar="KEY=VALUE",
                   help="a training-mode option, e.g. --opt norm=linf --opt eps=8/255 (repeatable)")
    s.add_argument("--quiet", action="store_true")
    from .training.config import TrainConfig

    add_config_flags(s, TrainConfig)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("patchgan", help="train the patch GAN that fills region dropout's holes (seed 001)")
    _generator_flags(s, "line store(s) whose images it learns (labels unused)",
                     "folder for generator.safetensors, patchgan.json and gallery/", lr=2e-4)
    s.add_argument("--adv-weight", type=float, default=0.01, help="the adversarial loss's weight beside the hole L1")
    s.set_defaults(func=cmd_patchgan)

    s = sub.add_parser("san", help="train SAN, the self-adversarial background generator (seed 002)")
    _generator_flags(s, "a store of text-free crops (ingest --backgrounds N writes one)",
                     "folder for san.safetensors, san.json, fid.png and gallery/", lr=1e-4)
    s.add_argument("--feature-model", help="the recognizer whose CNN gives the FID-like features (default: the "
                                           "shipped model)")
    s.set_defaults(func=cmd_san)

    s = sub.add_parser("attack", help="robust accuracy under white-box attacks (FGSM, PGD, targeted confusable)")
    s.add_argument("--model", required=True, help="a run folder or an export folder")
    s.add_argument("--data", nargs="+", required=True, help="line stores")
    from .adversarial.attacks import ATTACKS

    s.add_argument("--attack", default="pgd", choices=list(ATTACKS), help="a registered attack (adversarial/attacks/)")
    s.add_argument("--eps", default="4/255", help="budget(s) in 0..1 units, comma-separated: 1/255,2/255,4/255")
    s.add_argument("--norm", default="linf", choices=["linf", "l2"])
    s.add_argument("--steps", type=int, default=10)
    s.add_argument("--step-size", help="step size in 0..1 units (default: 2.5 eps / steps for PGD)")
    s.add_argument("--restarts", type=int, default=1, help="random restarts (a line broken by any counts as broken)")
    s.add_argument("--confusables", default="confusables:eval",
                   help="the table the confusable attack aims with (default: the pairs held out of training)")
    s.add_argument("--region-from", metavar="STORE",
                   help="confine the attack to the watermark: the pixels where each line differs from the "
                        "same-named line of STORE, the same lines without watermarks (pgd, apgd, fgsm)")
    s.add_argument("--limit", type=int, help="attack only the first N lines of each store")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.add_argument("--save-examples", help="folder for example pages (original, adversarial, perturbation)")
    s.add_argument("--json", help="write the rows as JSON too")
    s.set_defaults(func=cmd_attack)

    s = sub.add_parser("bench", help="word accuracy, CER, line accuracy and speed on line stores")
    s.add_argument("--model", help="a run folder or an export folder (default: the shipped pretrained/latin)")
    s.add_argument("--data", nargs="+", required=True, help="line stores (labels.tsv folders or LMDB)")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--decoder", default="greedy", choices=["greedy", "beam"])
    s.add_argument("--engine", default="auto", choices=list(ENGINES),
                   help="for an export: onnx, int8, torchscript or torch (auto: onnx)")
    s.add_argument("--json", help="write the rows as JSON too")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("export", help="export a run for a service (ONNX, TorchScript, int8; safetensors + model.json)")
    s.add_argument("--model", help="a run folder, or an export folder to export again (default: pretrained/latin)")
    s.add_argument("--out", required=True)
    s.add_argument("--format", default="onnx", choices=["onnx", "torchscript", "all"])
    s.add_argument("--quantize", choices=["int8", "int8-dynamic"],
                   help="also write an int8 ONNX model: int8, static quantisation of the convolutions calibrated on "
                        "real lines (the fast one); int8-dynamic, dynamic quantisation of the matrix products only")
    s.add_argument("--sample", help="line store for the parity check (default: the run's validation data)")
    s.add_argument("--calibration", help="line store static int8 is calibrated on (default: the run's training data, "
                                         "else --sample)")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("recognize", help="read line images, page images and PDFs")
    s.add_argument("--model", help="a run folder or an export folder (default: the shipped pretrained/latin)")
    s.add_argument("inputs", nargs="+", help="line images, PDFs, or folders of them")
    s.add_argument("--pages", action="store_true", help="images are whole pages: find their lines first")
    s.add_argument("--output", default="text", choices=["text", "tsv", "json"],
                   help="text: one line of text per line; tsv/json: with page, box and confidence")
    s.add_argument("--engine", default="auto", choices=list(ENGINES),
                   help="for an export: onnx, int8, torchscript or torch (auto: onnx)")
    s.add_argument("--dpi", type=int, default=DPI, help="raster resolution of PDF pages")
    s.add_argument("--page-timeout", type=float, default=ing.page_timeout,
                   help="seconds per PDF page; a page past it is reported and skipped")
    s.add_argument("--decoder", default="greedy", choices=["greedy", "beam"])
    s.add_argument("--beam", type=int, default=8)
    s.add_argument("--lexicon", help="word list (whitespace-separated) to bias beam decoding")
    s.set_defaults(func=cmd_recognize)

    s = sub.add_parser("benchmark", help="build test suites; run engines and anchors on them into a report")
    s.add_argument("action", choices=["build", "run"])
    s.add_argument("--out", help="build: the suite folder; run: the report folder")
    s.add_argument("--pages", type=int, default=12, help="build: synthetic pages per condition")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--from-pdf", nargs="+", help="build: make the conditions from these PDFs (files or folders)")
    s.add_argument("--no-text", type=int, default=400, help="build: text-free crops in the no-text set")
    s.add_argument("--max-pages", type=int, default=0, help="build --from-pdf: pages per PDF, drawn by --seed (0: all)")
    s.add_argument("--max-lines", type=int, default=0, help="build --from-pdf: lines per condition, a seeded sample "
                                                           "(the same lines in every condition; 0: all)")
    s.add_argument("--suite", help="run: a suite built with `benchmark build`")
    s.add_argument("--models", nargs="+", help="run: our models (export folders, or run folders)")
    s.add_argument("--compare", default="tesseract,ppocr", help="run: anchors, comma-separated ('' for none)")
    s.add_argument("--require-anchors", action="store_true", help="run: exit 1 when an anchor is not installed")
    s.add_argument("--attack-lines", type=int, default=200, help="run: clean lines attacked per model (0: none)")
    s.add_argument("--pgd-steps", type=int, default=10)
    s.add_argument("--limit", type=int, help="run: read only the first N lines of each condition")
    s.add_argument("--conditions", help="only these conditions, comma-separated (build: of the suite's six, "
                   "clean always built; run: of the suite's; default: all)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_benchmark)

    s = sub.add_parser("serve", help="HTTP OCR service (FastAPI): /v1/recognize, /v1/pdf, /healthz, /v1/model")
    s.add_argument("--model", help="an export folder (or a run folder; default: the shipped pretrained/latin)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1, help="server processes, each with its own model")
    s.add_argument("--engine", default="auto", choices=list(ENGINES))
    s.add_argument("--threads", type=int, help="inference threads per batch (default: 1 with ONNX Runtime; the cores / "
                                               "workers with PyTorch)")
    s.add_argument("--streams", type=int, help="batches read at once per worker (default: with ONNX Runtime the "
                                               "cores / workers / threads; 1 with PyTorch)")
    s.add_argument("--max-batch", type=int, default=256, help="lines per micro-batch")
    s.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a micro-batch waits to fill")
    from .service import Limits

    lim = Limits()  # the limits' defaults are the dataclass's (service.Limits says what each bounds)
    s.add_argument("--max-body-mb", type=float, default=lim.max_body_bytes / 2**20, help="request body")
    s.add_argument("--max-images", type=int, default=lim.max_images, help="line images per request")
    s.add_argument("--max-image-pixels", type=int, default=lim.max_image_pixels, help="pixels per line image")
    s.add_argument("--max-request-pixels", type=int, default=lim.max_request_pixels,
                   help="pixels of all the line images of one request")
    s.add_argument("--max-pdf-pages", type=int, default=lim.max_pdf_pages)
    s.add_argument("--max-page-pixels", type=int, default=lim.max_page_pixels, help="a PDF page's raster")
    s.add_argument("--max-active", type=int, default=lim.max_active,
                   help="requests holding their uploads (reading and decoding them) at once")
    s.add_argument("--max-active-pixels", type=int, default=lim.max_active_pixels,
                   help="decoded line images of all requests together, waiting for or in a micro-batch")
    s.add_argument("--max-queued", type=int, default=lim.max_queued,
                   help="requests waiting for their turn; more get 429")
    s.add_argument("--timeout", dest="timeout_s", type=float, default=lim.timeout_s,
                   help="seconds of a request's work, after its body arrived (then 504)")
    s.add_argument("--body-timeout", dest="body_timeout_s", type=float, default=lim.body_timeout_s,
                   help="seconds for a request body to arrive (then 408)")
    s.add_argument("--header-timeout", dest="header_timeout_s", type=float, default=lim.header_timeout_s,
                   help="seconds for a request's headers to arrive (then the connection is closed)")
    s.add_argument("--page-timeout", dest="page_timeout_s", type=float, default=lim.page_timeout_s,
                   help="seconds of one PDF page's MuPDF work (then the page fails)")
    s.add_argument("--page-workers", type=int, default=lim.page_workers, help="processes doing PDF page work")
    s.add_argument("--page-memory-mb", type=int, default=lim.page_memory_mb,
                   help="memory each page process may allocate; past it the page fails")
    s.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as e:
        print(f"ocr-robust {args.command}: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"ocr-robust {args.command}: {e}", file=sys.stderr)
        return 2
    except (ExportError, FloatingPointError) as e:  # FloatingPointError: training's non-finite steps in a row
        print(f"ocr-robust {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ocr-robust {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
