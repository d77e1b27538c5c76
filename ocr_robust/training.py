"""The Trainer, training modes (pluggable strategies), checkpoints and validation.

A training mode is one object with ``step(model, batch, ctx) -> stats``: it computes the
gradients of the model's weights for one batch (it may run several forwards, as the
adversarial modes do); the Trainer then clips, steps the optimizer and the schedule. A new
mode is one new class registered in ``MODES``, never a branch in the loop.

A run folder holds ``config.yaml`` (the resolved config), ``charset.txt``, weights as
safetensors (``best.safetensors``, ``last.safetensors``), the resumable training state
``last.state.pt`` (optimizer, scheduler, RNG states, epoch; loaded with
``weights_only=True``), ``metrics.jsonl`` and TensorBoard scalars under ``tb/``.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from .augment import Augment
from .charset import Charset
from .data.dataset import BucketBatchSampler, LineDataset, collate
from .decoding import greedy_batch
from .errors import InputError
from .metrics import Scores
from .models import CRNN, build_model


@dataclass
class TrainConfig:
    data: str = ""
    out: str = "runs/run"
    val: str | None = None  # a separate validation store; else val_fraction of data
    val_fraction: float = 0.05
    model: str = "crnn-small"
    charset: str = "latin"
    mode: str = "natural"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.1  # share of steps warming up (one-cycle)
    grad_clip: float = 5.0
    augment: float = 1.0  # augmentation strength, 0 = off
    max_width: int = 1200
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision, CUDA only
    workers: int = 0
    time_limit_min: float | None = None  # stop after this many minutes (best/last kept)
    mode_options: dict = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> "TrainConfig":
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise InputError(path, f"cannot read the config: {e}") from None
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise InputError(path, f"unknown config keys: {', '.join(sorted(unknown))}")
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**raw)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def ctc_loss(logp: torch.Tensor, batch: dict) -> torch.Tensor:
    """Mean CTC loss per line (normalised by target length, as torch's 'mean')."""
    lengths = CRNN.output_lengths(batch["widths"]).to(logp.device)
    return F.ctc_loss(logp.float(), batch["targets"].to(logp.device), lengths, batch["target_lengths"].to(logp.device),
                      blank=0, reduction="mean", zero_infinity=True)


@dataclass
class StepContext:
    device: torch.device
    amp: bool
    epoch: int
    step: int
    charset: Charset
    options: dict[str, Any]


class TrainingMode(Protocol):
    name: str

    def step(self, model: CRNN, batch: dict, ctx: StepContext) -> dict[str, float]: ...


class NaturalMode:
    """Plain training: the baseline every defence is compared against."""

    name = "natural"

    def __init__(self, **options):
        if options:
            raise ValueError(f"natural mode takes no options, got {', '.join(options)}")

    def step(self, model: CRNN, batch: dict, ctx: StepContext) -> dict[str, float]:
        x = batch["images"].to(ctx.device, non_blocking=True)
        with torch.autocast(ctx.device.type, enabled=ctx.amp and ctx.device.type == "cuda"):
            logp = model(x)
        loss = ctc_loss(logp, batch)
        loss.backward()
        return {"loss": float(loss.detach())}


MODES: dict[str, type] = {"natural": NaturalMode}


def make_mode(name: str, options: dict) -> TrainingMode:
    if name not in MODES:
        raise ValueError(f"unknown training mode {name!r}; available: {', '.join(MODES)}")
    return MODES[name](**options)


@torch.no_grad()
def evaluate(model: CRNN, ds, charset: Charset, device: torch.device, batch_size: int = 64,
             progress: bool = False) -> Scores:
    """Greedy-decode every line of ``ds`` and score it."""
    was = model.training
    model.eval()
    widths = ds.widths() if hasattr(ds, "widths") else ds.dataset.widths()
    if isinstance(ds, Subset):
        widths = [widths[i] for i in ds.indices]
    loader = DataLoader(ds, batch_sampler=BucketBatchSampler(widths, batch_size, shuffle=False), collate_fn=collate)
    scores = Scores()
    for batch in tqdm(loader, desc="eval", leave=False, disable=not progress):
        logp = model(batch["images"].to(device)).float().cpu()
        preds = greedy_batch(logp, CRNN.output_lengths(batch["widths"]).tolist(), charset)
        scores.update([p.text for p in preds], batch["texts"])
    model.train(was)
    return scores


def save_weights(model: CRNN, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp),
              metadata={"model": json.dumps(asdict(model.cfg))})
    os.replace(tmp, path)


def load_run(run: str | Path, which: str = "best", device: str | torch.device = "cpu") -> tuple[CRNN, Charset, dict]:
    """Model, charset and config of a run folder (weights from safetensors only)."""
    run = Path(run)
    cfg_path, weights = run / "config.yaml", run / f"{which}.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise InputError(run, f"not a training run: expected config.yaml and {which}.safetensors in it")
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    charset = Charset.load(run / "charset.txt")
    model = build_model(cfg["model_config"])
    try:
        model.load_state_dict(load_file(str(weights), device="cpu"))
    except Exception as e:
        raise InputError(weights, f"weights do not fit the model in config.yaml: {e}") from None
    return model.to(device).eval(), charset, cfg


def _np_state() -> dict:
    _, keys, pos, has_gauss, cached = np.random.get_state()
    return {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
            "cached": float(cached)}


class Trainer:
    def __init__(self, cfg: TrainConfig, progress: bool = True):
        self.cfg = cfg
        self.progress = progress
        self.out = Path(cfg.out)
        self.device = pick_device(cfg.device)
        self.charset = Charset.load(cfg.charset)
        seed_everything(cfg.seed)
        aug = Augment(cfg.augment, seed=cfg.seed) if cfg.augment > 0 else None
        full = LineDataset.open(cfg.data, self.charset, max_width=cfg.max_width, transform=aug)
        self.problems = list(full.problems)
        if cfg.val:
            self.train_ds = full
            self.val_ds = LineDataset.open(cfg.val, self.charset, max_width=cfg.max_width)
            self.problems += self.val_ds.problems
        else:
            order = list(range(len(full)))
            random.Random(cfg.seed).shuffle(order)
            n_val = max(1, int(len(order) * cfg.val_fraction))
            self.train_ds = Subset(full, sorted(order[n_val:]))
            val_full = LineDataset.open(cfg.data, self.charset, max_width=cfg.max_width)
            self.val_ds = Subset(val_full, sorted(order[:n_val]))
        if len(self.train_ds) == 0:
            raise InputError(cfg.data, "no usable training lines")
        widths = full.widths()
        if isinstance(self.train_ds, Subset):
            widths = [widths[i] for i in self.train_ds.indices]
        self.sampler = BucketBatchSampler(widths, cfg.batch_size, shuffle=True, seed=cfg.seed)
        self.loader = DataLoader(self.train_ds, batch_sampler=self.sampler, collate_fn=collate,
                                 num_workers=cfg.workers, persistent_workers=cfg.workers > 0)
        self.model = build_model(cfg.model, num_classes=self.charset.num_classes).to(self.device)
        self.mode = make_mode(cfg.mode, cfg.mode_options)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = max(1, cfg.epochs * len(self.sampler))
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=cfg.lr, total_steps=total,
                                                         pct_start=cfg.warmup, anneal_strategy="cos")
        self.epoch = 0
        self.step = 0
        self.best = -1.0
        self.history: list[dict] = []

    # --- checkpoints ----------------------------------------------------------------
    def _save_config(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        d = asdict(self.cfg)
        d["model_config"] = asdict(self.model.cfg)
        (self.out / "config.yaml").write_text(yaml.safe_dump(d, sort_keys=False, allow_unicode=True), encoding="utf-8")
        self.charset.save(self.out / "charset.txt")

    def save(self, best: bool) -> None:
        save_weights(self.model, self.out / "last.safetensors")
        if best:
            save_weights(self.model, self.out / "best.safetensors")
        state = {
            "epoch": self.epoch, "step": self.step, "best": self.best, "history": json.dumps(self.history),
            "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
            "rng_torch": torch.get_rng_state(), "rng_numpy": _np_state(), "rng_python": list(random.getstate()[1]),
        }
        tmp = self.out / "last.state.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.out / "last.state.pt")

    def resume(self) -> bool:
        state_path = self.out / "last.state.pt"
        if not state_path.is_file():
            return False
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if state["scheduler"].get("total_steps") != self.sched.total_steps:
            raise InputError(state_path, f"the run was scheduled for {state['scheduler'].get('total_steps')} steps, "
                                         f"this config for {self.sched.total_steps}: resume with the run's own "
                                         "epochs and batch size")
        self.model.load_state_dict(load_file(str(self.out / "last.safetensors"), device=str(self.device)))
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.epoch, self.step, self.best = int(state["epoch"]), int(state["step"]), float(state["best"])
        self.history = json.loads(state["history"])
        torch.set_rng_state(state["rng_torch"])
        n = state["rng_numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), int(n["pos"]), int(n["has_gauss"]),
                             float(n["cached"])))
        random.setstate((3, tuple(int(v) for v in state["rng_python"]), None))
        return True

    # --- loop -----------------------------------------------------------------------
    def fit(self, max_epochs: int | None = None) -> dict:
        """Train to ``cfg.epochs`` (or ``max_epochs`` more epochs in this call)."""
        self._save_config()
        last_epoch = self.cfg.epochs if max_epochs is None else min(self.cfg.epochs, self.epoch + max_epochs)
        tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(self.out / "tb"))
        except ImportError:  # TensorBoard is optional
            pass
        t_start = time.perf_counter()
        deadline = t_start + 60 * self.cfg.time_limit_min if self.cfg.time_limit_min else None
        stopped = None
        self.model.train()
        while self.epoch < last_epoch and not stopped:
            self.sampler.set_epoch(self.epoch)
            t0, lines, losses = time.perf_counter(), 0, []
            bar = tqdm(self.loader, desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}", leave=False,
                       disable=not self.progress)
            for batch in bar:
                ctx = StepContext(self.device, self.cfg.amp, self.epoch, self.step, self.charset, self.cfg.mode_options)
                self.opt.zero_grad(set_to_none=True)
                stats = self.mode.step(self.model, batch, ctx)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
                self.opt.step()
                self.sched.step()
                self.step += 1
                lines += len(batch["texts"])
                losses.append(stats["loss"])
                bar.set_postfix(loss=f"{stats['loss']:.3f}")
                if tb:
                    for k, v in stats.items():
                        tb.add_scalar(f"train/{k}", v, self.step)
                if deadline and time.perf_counter() > deadline:
                    stopped = "time limit"
                    break
            train_s = time.perf_counter() - t0
            val = evaluate(self.model, self.val_ds, self.charset, self.device)
            self.epoch += 1
            rec = {"epoch": self.epoch, "step": self.step, "loss": float(np.mean(losses)) if losses else math.nan,
                   "val_word_acc": val.word_acc, "val_cer": val.cer, "val_line_acc": val.line_acc,
                   "train_lines_per_s": lines / train_s if train_s else 0.0, "epoch_seconds": train_s,
                   "lr": self.sched.get_last_lr()[0]}
            self.history.append(rec)
            is_best = val.word_acc > self.best
            if is_best:
                self.best = val.word_acc
            self.save(best=is_best)
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
            if tb:
                for k in ("val_word_acc", "val_cer", "val_line_acc", "loss", "train_lines_per_s"):
                    tb.add_scalar(f"epoch/{k}", rec[k], self.epoch)
            if self.progress:
                print(f"epoch {self.epoch}: loss {rec['loss']:.4f}  val word acc {val.word_acc:.4f}  "
                      f"CER {val.cer:.4f}  {rec['train_lines_per_s']:.0f} lines/s", flush=True)
        if tb:
            tb.close()
        return {"epochs": self.epoch, "steps": self.step, "best_val_word_acc": self.best, "stopped": stopped or "epochs",
                "seconds": time.perf_counter() - t_start, "history": self.history, "problems": len(self.problems)}
