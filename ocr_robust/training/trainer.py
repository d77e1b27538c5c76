"""The Trainer: one loop over a run's epochs and batches that reads top to bottom, with
validation, checkpoints, resume, the schedule, stop criteria and logging in their own modules.

A run folder holds ``config.yaml`` (the resolved config), ``charset.txt``, weights as
safetensors (``best.safetensors``, ``last.safetensors``), the resumable training state
``last.state.pt`` (optimizer, scheduler, RNG states, epoch; loaded with
``weights_only=True``), ``metrics.jsonl`` and TensorBoard scalars under ``tb/``
(``runs.py`` reads them).
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
import yaml
from safetensors.torch import load_file
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from ..augment import Augment, parse_augment
from ..charset import Charset
from ..data.crop import CropJitter
from ..data.dataset import BucketBatchSampler, LineBatch, LineDataset, collate, split_for_world
from ..data.notext import add_notext, procedural_source
from ..data.sampler import HardExampleSampler
from ..errors import InputError
from ..evaluation.lines import evaluate
from ..evaluation.metrics import Scores
from ..generative.backgrounds import BackgroundComposite, SANBackgrounds
from ..generative.erase import EraseSpec, RegionDropout
from ..generative.patchgan import load_generator
from ..generative.san import load_san
from ..models import ModelConfig, build_model
from ..runs import METRICS_FILE, save_weights
from .checkpoint import STATE_FILE, read_state, rng_state, set_rng_state, write_state
from .config import TrainConfig
from .distill import Distiller, fold_of, parse_fold
from .distributed import broadcast_state, local_device, rank_seed, scaled_lr, world
from .modes import StepContext, make_mode
from .schedule import lr_factor, progress
from .stopping import STOP_FILE, StopRequests, plateau_reason

__all__ = ["FitResult", "Trainer", "seed_everything"]


@dataclass
class _Chain:
    """One transform applying ``steps`` in order (picklable for DataLoader workers)."""

    steps: list

    def __call__(self, img: np.ndarray) -> np.ndarray:
        for step in self.steps:
            img = step(img)
        return img


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class FitResult(TypedDict):
    """What :meth:`Trainer.fit` returns: epochs done, optimizer steps, the best validation word
    accuracy (0..1), what stopped the run (``epochs``, a stop rule, ``time limit``, ``signal
    ...``, ``stop file``), training seconds of this call, the per-epoch records (as in
    ``metrics.jsonl``), lines skipped as bad input when the stores were opened, lines skipped
    because their images did not decode when read, and non-finite steps skipped."""

    epochs: int
    steps: int
    best_val_word_acc: float
    stopped: str
    seconds: float
    history: list[dict[str, Any]]
    problems: int
    unreadable: int
    bad_steps: int


class Trainer:
    """Trains ``cfg.model`` in ``cfg.mode`` on ``cfg.data``; see :class:`TrainConfig`.

    Per batch: no-text images are appended (``notext_rate``), the mode computes the
    weights' gradient (``replays`` times for modes that replay a batch), the Trainer clips
    it, skips the step if it is not finite, and steps the optimizer and the schedule; the
    per-line losses go back to the hard-example sampler. A file named ``STOP`` in the run
    folder, SIGINT or SIGTERM end the run after the current step with a checkpoint from
    which ``resume()`` continues at the next batch.

    Under ``torchrun`` (a process group set up by ``distributed.init_from_env``) each rank
    trains on its share of every epoch's batches, the gradient is averaged over the ranks
    once per optimizer step, a stop asked on any rank stops all of them at the same step,
    and rank 0 alone writes the run folder; see ``training/distributed.py``.
    """

    def __init__(self, cfg: TrainConfig, progress: bool = True):
        self.cfg = cfg
        self.world = world()
        self.progress = progress and self.world.main
        self.out = Path(cfg.out)
        self.device = local_device(cfg.device, self.world)
        self.charset = Charset.load(cfg.charset)
        self.seed = rank_seed(cfg.seed, self.world.rank)  # what must differ between ranks draws from it
        seed_everything(cfg.seed)
        plan = parse_augment(cfg.augment)
        steps = ([CropJitter(cfg.crop_jitter)] if cfg.crop_jitter > 0 else []) + \
            ([Augment(plan.strength, seed=self.seed)] if plan.strength > 0 else [])
        aug = _Chain(steps) if steps else None
        full = LineDataset.open(cfg.data, self.charset, max_width=cfg.max_width, transform=aug, crop=cfg.crop)
        self.problems = list(full.problems)
        self.unreadable: list[str] = []  # lines whose images failed to decode during the run
        self.train_ds: LineDataset | Subset
        self.val_ds: LineDataset | Subset
        if cfg.val:
            self.train_ds = full
            self.val_ds = LineDataset.open(cfg.val, self.charset, max_width=cfg.max_width, crop=cfg.crop)
            self.problems += self.val_ds.problems
        else:
            order = list(range(len(full)))
            random.Random(cfg.seed).shuffle(order)
            n_val = max(1, int(len(order) * cfg.val_fraction))
            self.train_ds = Subset(full, sorted(order[n_val:]))
            val_full = LineDataset.open(cfg.data, self.charset, max_width=cfg.max_width, crop=cfg.crop)
            self.val_ds = Subset(val_full, sorted(order[:n_val]))
        fold = parse_fold(cfg.fold)
        if fold is not None:  # a fold teacher: every training line not in its fold
            kept = self.train_ds.indices if isinstance(self.train_ds, Subset) else range(len(full))
            self.train_ds = Subset(full, [i for i in kept if fold_of(i, fold[1], cfg.seed) != fold[0]])
        if len(self.train_ds) == 0:
            raise InputError(cfg.data, "no usable training lines")
        if len(self.train_ds) < self.world.size:
            raise InputError(cfg.data, f"{len(self.train_ds)} usable training lines: too few for {self.world.size} "
                                       "processes")
        widths = full.widths()
        if isinstance(self.train_ds, Subset):
            widths = [widths[i] for i in self.train_ds.indices]
            self._position: dict[int, int] | None = {idx: pos for pos, idx in enumerate(self.train_ds.indices)}
        else:
            self._position = None
        self.mode = make_mode(cfg.mode, cfg.mode_options)
        self.replays = int(self.mode.replays)
        kind = cfg.sampler if cfg.sampler != "auto" else self.mode.sampler
        self.sampler: HardExampleSampler | BucketBatchSampler
        if kind == "hard":
            self.sampler = HardExampleSampler(widths, cfg.batch_size, seed=cfg.seed, extra=cfg.hard_extra)
        elif kind == "bucket":
            self.sampler = BucketBatchSampler(widths, cfg.batch_size, shuffle=True, seed=cfg.seed,
                                              sortagrad=cfg.sortagrad and not cfg.init_from)
        else:
            raise ValueError(f"mode {cfg.mode!r} asks for sampler {kind!r}: bucket or hard")
        self.sampler.set_world(self.world.rank, self.world.size)
        self.notext_rate = cfg.notext_rate if cfg.notext_rate is not None else self.mode.notext_rate
        self.dropout: RegionDropout | None = None
        if plan.dropout is not None:
            gen = load_generator(plan.generator, self.device) if plan.generator else None
            self.dropout = RegionDropout(plan.dropout, EraseSpec(cfg.erase_p, cfg.erase_area, cfg.erase_aspect),  # type: ignore[arg-type]
                                         generator=gen)
        self.composite: BackgroundComposite | None = None
        if plan.background is not None:
            self.composite = BackgroundComposite(SANBackgrounds(load_san(plan.background, self.device)),
                                                 cfg.composite_p)
        self.notext_source: Callable[[np.random.Generator, int, int], np.ndarray] | None = None
        if cfg.notext_source.startswith("san:"):
            self.notext_source = SANBackgrounds(load_san(cfg.notext_source[4:], self.device)).notext
        else:
            self.notext_source = procedural_source(cfg.notext_source)
        if cfg.distill_folds and not cfg.teachers:
            raise InputError(cfg.out, "distill_folds: train the teachers first (prepare_teachers; `ocr-robust train` "
                                      "does it)")
        self.distiller = Distiller.load(cfg, self.charset, self.device) if cfg.teachers else None
        self.model = build_model(cfg.model, num_classes=self.charset.num_classes).to(self.device)
        if cfg.init_from:
            self._init_weights(cfg.init_from)
        if self.world.size > 1:  # rank 0's start on every rank; then each rank its own dropout masks
            broadcast_state(self.model, self.world)
            seed_everything(self.seed)
        self.lr = scaled_lr(cfg.lr, self.world.size, cfg.lr_scaling)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=cfg.weight_decay)
        total = max(4, cfg.epochs * len(self.sampler) * self.replays)
        self.total_steps = total
        self.train_seconds = 0.0  # time spent in training steps, over all sessions of the run
        self._seconds_base = 0.0
        self._session_t0: float | None = None
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, self._lr_factor)
        self.epoch = 0
        self.step = 0
        self.best = -1.0
        self.history: list[dict] = []
        self.batch_in_epoch = 0  # this rank's batches of the current epoch already done (a mid-epoch checkpoint)
        # the current epoch's batches not yet trained, all ranks' (rank r trains todo[r::world]); None: a new epoch
        self._todo: list[list[int]] | None = None
        self._todo_done = 0  # of them, this rank's batches done in this session
        self._elapsed = 0.0  # rank 0's training seconds at the last step, the same on every rank (lr over time)
        self.best_loss = math.inf
        self.since_loss = self.since_val = 0  # epochs without improvement
        self.bad_steps = 0  # non-finite steps skipped in total
        self._bad_in_row = 0  # non-finite steps in a row (fit() resets it)

    def _lr_factor(self, step: int) -> float:
        elapsed = None if self._session_t0 is None else self._seconds_base + time.perf_counter() - self._session_t0
        if self.world.size > 1 and elapsed is not None:  # one clock for all ranks, or their lr would differ
            elapsed = self._elapsed
        p = progress(step, self.total_steps, elapsed, self.cfg.time_limit_min)
        return lr_factor(p, self.cfg.schedule, self.cfg.warmup, self.total_steps)


    def _init_weights(self, path: str) -> None:
        from safetensors.torch import load_file as _load

        p = Path(path)
        weights = p if p.suffix == ".safetensors" else next(
            (q for q in (p / "best.safetensors", p / "model.safetensors") if q.is_file()), None)
        if weights is None or not weights.is_file():
            raise InputError(p, "init_from: expected a run folder, an export folder or a .safetensors file")
        self._check_architecture(weights)
        try:
            self.model.load_state_dict(_load(str(weights), device=str(self.device)))
        except Exception as e:
            raise InputError(weights, f"init_from: the weights do not fit model {self.cfg.model!r}: {e}") from None

    def _check_architecture(self, weights: Path) -> None:
        """Weights of another architecture can have the same tensor names and shapes (the
        stem's stride, say): compare the model config stored with them, and refuse a mismatch."""
        from safetensors import safe_open

        try:
            with safe_open(str(weights), "pt") as f:
                stored = json.loads((f.metadata() or {}).get("model", "null"))
        except Exception as e:
            raise InputError(weights, f"init_from: cannot read the weights: {e}") from None
        if not isinstance(stored, dict):
            return  # no stored config: the tensor shapes are all there is to check
        try:
            theirs = asdict(ModelConfig(**stored))
        except TypeError as e:
            raise InputError(weights, f"init_from: unreadable model config in the weights: {e}") from None
        mine = asdict(self.model.cfg)
        diff = [f"{k} {theirs[k]} (this run: {mine[k]})" for k in mine if k not in ("name", "dropout")
                and theirs[k] != mine[k]]
        if diff:
            raise InputError(weights, f"init_from: the weights are for another architecture than model "
                                      f"{self.cfg.model!r}: {'; '.join(diff)}")

    # --- checkpoints ----------------------------------------------------------------
    def _save_config(self) -> None:
        if not self.world.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        d = asdict(self.cfg)
        d["model_config"] = asdict(self.model.cfg)
        if self.world.size > 1:
            d["distributed"] = {"world_size": self.world.size, "peak_lr": self.lr}
        (self.out / "config.yaml").write_text(yaml.safe_dump(d, sort_keys=False, allow_unicode=True), encoding="utf-8")
        self.charset.save(self.out / "charset.txt")

    def _rank_state(self) -> dict:
        """What differs between ranks and must come back on resume: RNG states and the
        hard-example sampler's feedback (merged only at each epoch's start)."""
        out = rng_state()
        if isinstance(self.sampler, HardExampleSampler):
            out["sampler"] = self.sampler.state_dict()
        return out

    def _remaining(self) -> list[list[int]] | None:
        """The current epoch's batches not yet trained by any rank (None between epochs)."""
        if not self.batch_in_epoch or self._todo is None:
            return None
        return self._todo[self._todo_done * self.world.size:]

    def save(self, best: bool) -> None:
        """Write the checkpoint (rank 0; under torchrun every rank calls it, at the same step,
        and sends its RNG and sampler state)."""
        if self._session_t0 is not None:
            self.train_seconds = self._seconds_base + time.perf_counter() - self._session_t0
        ranks = self.world.gather(self._rank_state()) if self.world.size > 1 else None
        if not self.world.main:
            return
        save_weights(self.model, self.out / "last.safetensors")
        if best:
            save_weights(self.model, self.out / "best.safetensors")
        state = {  # one file, renamed into place: the weights inside it always match the rest
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "epoch": self.epoch, "step": self.step, "best": self.best, "history": json.dumps(self.history),
            "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
            "total_steps": self.total_steps, "train_seconds": self.train_seconds,
            **rng_state(),
            "batch_in_epoch": self.batch_in_epoch, "best_loss": self.best_loss, "since_loss": self.since_loss,
            "since_val": self.since_val, "bad_steps": self.bad_steps,
            "todo_batches": json.dumps(self._remaining()), "world_size": self.world.size,
        }
        if isinstance(self.sampler, HardExampleSampler):
            state["sampler"] = self.sampler.state_dict()
        if ranks is not None:
            state["ranks"] = ranks
        write_state(self.out, state)

    def resume(self) -> bool:
        state_path = self.out / STATE_FILE
        if not state_path.is_file():
            return False
        state = read_state(state_path)
        saved_world, size = int(state.get("world_size", 1)), self.world.size
        if saved_world != size:
            # another world size: each rank's share of an epoch changes, so the step count per
            # epoch does too; the schedule keeps the run's own length
            if self.world.main:
                print(f"resuming {self.out}, saved by {saved_world} process(es), on {size}: the data order changes "
                      f"from here (the rest of the epoch is split over {size}); the schedule keeps its "
                      f"{state.get('total_steps')} steps and the learning rate its scaling for {saved_world}",
                      file=sys.stderr, flush=True)
            self.total_steps = int(state.get("total_steps", self.total_steps))
        if int(state.get("total_steps", -1)) != self.total_steps:
            raise InputError(state_path, f"the run was scheduled for {state.get('total_steps')} steps, "
                                         f"this config for {self.total_steps}: resume with the run's own "
                                         "epochs and batch size")
        if "model" in state:
            self.model.load_state_dict(state["model"])
        else:  # a run saved before the weights moved into the state file
            self.model.load_state_dict(load_file(str(self.out / "last.safetensors"), device=str(self.device)))
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.epoch, self.step, self.best = int(state["epoch"]), int(state["step"]), float(state["best"])
        self.history = json.loads(state["history"])
        self.batch_in_epoch = int(state.get("batch_in_epoch", 0))
        todo = json.loads(state.get("todo_batches", "null"))
        if todo is None and "epoch_batches" in state:  # a state written before the ranks' shares
            old = json.loads(state["epoch_batches"])
            todo = old[self.batch_in_epoch:] if old is not None else None
        self._todo = split_for_world(todo, size) if todo is not None else None
        self._todo_done = 0
        self.best_loss = float(state.get("best_loss", math.inf))
        self.since_loss, self.since_val = int(state.get("since_loss", 0)), int(state.get("since_val", 0))
        self.bad_steps = int(state.get("bad_steps", 0))
        self.train_seconds = float(state.get("train_seconds", 0.0))
        ranks = state.get("ranks") or [{k: v for k, v in state.items() if k.startswith(("rng_", "sampler"))}]
        mine = ranks[self.world.rank] if self.world.rank < len(ranks) else None
        if isinstance(self.sampler, HardExampleSampler) and "sampler" in ranks[0]:
            if saved_world == size:
                self.sampler.load_state_dict(mine["sampler"])  # type: ignore[index]
            else:  # the saved ranks' feedback merged, as at an epoch's start
                self.sampler.load_state_dict(ranks[0]["sampler"])
                tables = [self.sampler.feedback_table(r["sampler"]) for r in ranks]
                self.sampler.merge(lambda _: torch.stack(tables).sum(0))
        if mine is not None:  # a rank the saved run did not have keeps its own seeded state
            set_rng_state(mine)
        return True

    def _count_unreadable(self, problems: list[str]) -> None:
        """Lines whose images failed to decode are skipped and reported; past
        ``max_unreadable`` of the training lines the store is too damaged to train on."""
        for p in problems:
            if len(self.unreadable) < 20:
                print(f"skipped: {p}", file=sys.stderr)
            self.unreadable.append(p)
        limit = self.cfg.max_unreadable * len(self.train_ds)
        if len(self.unreadable) > limit:
            raise InputError(self.cfg.data, f"{len(self.unreadable)} lines' images do not decode, more than "
                                            f"max_unreadable {self.cfg.max_unreadable:g} of the {len(self.train_ds)} "
                                            f"training lines; first: {self.unreadable[0]}")

    # --- loop -----------------------------------------------------------------------
    def _train_step(self, batch: LineBatch) -> dict[str, float]:
        """All replays of one batch: gradients from the mode, clip, a finite check, step."""
        stats: dict = {}
        feedback = isinstance(self.sampler, HardExampleSampler)
        for r in range(self.replays):
            ctx = StepContext(self.device, self.cfg.amp, self.epoch, self.step, self.charset, self.cfg.mode_options,
                              seed=self.seed, feedback=feedback and r == 0, replay=r)
            self.opt.zero_grad(set_to_none=True)
            out = self.mode.step(self.model, batch, ctx)
            if self.world.size > 1:
                out["loss"] = self._average_step(out["loss"])
            stats = {**out, **{k: v for k, v in stats.items() if k.startswith("sample_")}}
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            if not (math.isfinite(out["loss"]) and torch.isfinite(norm)):
                self.bad_steps += 1
                self._bad_in_row += 1
                self.opt.zero_grad(set_to_none=True)
                if self._bad_in_row >= self.cfg.max_bad_steps:
                    raise FloatingPointError(f"{self._bad_in_row} non-finite steps in a row (last at epoch "
                                             f"{self.epoch + 1}, batch {self.batch_in_epoch + 1}, lines "
                                             f"{batch['texts'][:3]}...): stopping; the last checkpoint is intact")
            else:
                self._bad_in_row = 0
                self.opt.step()
            self.sched.step()
        if isinstance(self.sampler, HardExampleSampler) and "sample_loss" in stats:  # feedback
            idx = batch["indices"].tolist()
            pos = [(self._position.get(i, -1) if self._position is not None else i) if i >= 0 else -1 for i in idx]
            self.sampler.update(pos, stats["sample_loss"], stats["sample_correct"])
        return {k: v for k, v in stats.items() if not k.startswith("sample_")}

    def _average_step(self, loss: float) -> float:
        """Under torchrun, the one all-reduce of an optimizer step: the gradients the mode
        accumulated (over all its inner steps), the BatchNorm running statistics, the loss
        and the training clock, averaged over the ranks in one flat buffer; returns the mean
        loss. Every rank then clips, checks and steps the same gradient."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        for p in params:
            if p.grad is None:  # a parameter this rank's step did not reach still takes part
                p.grad = torch.zeros_like(p)
        buffers = [b for b in self.model.buffers() if b.is_floating_point()]
        clock = torch.tensor([loss, self.training_seconds()], dtype=torch.float32, device=self.device)
        self.world.average([p.grad for p in params if p.grad is not None] + buffers + [clock])
        self._elapsed = float(clock[1])
        return float(clock[0])

    def _validate(self) -> Scores:
        """The validation scores, the same on every rank: each rank scores its share of the
        lines (``val_ranks: sharded``) or rank 0 scores all (``rank0``)."""
        if self.world.size == 1:
            return evaluate(self.model, self.val_ds, self.charset, self.device)
        if self.cfg.val_ranks == "sharded":
            part = evaluate(self.model, self.val_ds, self.charset, self.device,
                            shard=(self.world.rank, self.world.size))
            return Scores.merged(self.world.gather(part))
        return self.world.share(evaluate(self.model, self.val_ds, self.charset, self.device)
                                if self.world.main else None)

    def _agree(self, reason: str | None) -> str | None:
        """Under torchrun, the stop every rank takes after this step: the strongest any rank
        asks for (a signal, a STOP file, the time limit, a hook), so that all stop together."""
        if self.world.size == 1:
            return reason
        kinds = ("", "hook", "time limit", "stop file", "signal")
        mine = 0 if reason is None else next((k for k in range(4, 1, -1) if reason.startswith(kinds[k])), 1)
        agreed = self.world.max_int(mine)
        if agreed == mine:
            return reason
        return {1: "stopped on another rank", 2: "time limit", 3: "stop file on another rank",
                4: "signal on another rank"}.get(agreed)

    def _adversarial_validation(self, rec: dict) -> None:
        """Epoch end: attack validation lines with the mode's adversary (or a default
        targeted confusable attack); write the human-check page; the easy share."""
        full = self.cfg.stop_easy_share is not None
        if not full and self.cfg.report_images <= 0:
            return
        if not self.world.main:  # rank 0 attacks and writes the page; every rank gets its easy share
            if full:
                rec["val_easy_share"] = self.world.share(None)
            return
        from ..adversarial.confusion import TextConfuser
        from ..charset import ConfusableTable
        from ..evaluation.pages import attack_validation, write_page

        confuser = self.mode.confuser_for(self.charset) or TextConfuser(
            ConfusableTable.load("confusables", self.charset), self.charset)
        attack = {**self.mode.val_attack(), **self.cfg.val_attack}
        share, lines = attack_validation(self.model, self.val_ds, self.charset, confuser, self.device, attack,
                                         limit=None if full else self.cfg.report_images,
                                         keep=self.cfg.report_images, seed=f"{self.cfg.seed}:{self.epoch}")
        if full:
            rec["val_easy_share"] = self.world.share(share)
        if self.cfg.report_images > 0:
            write_page(lines, self.out / "adversarial" / f"epoch-{self.epoch:03d}",
                       f"{self.out.name}: validation lines under attack after epoch {self.epoch}",
                       share if full else None)

    def training_seconds(self) -> float:
        """Time spent training in this run so far (resumed sessions included, the pauses of
        ``fit``'s ``on_step`` hook left out)."""
        if self._session_t0 is None:
            return self.train_seconds
        return self._seconds_base + time.perf_counter() - self._session_t0

    def fit(self, max_epochs: int | None = None, on_step: Callable[[Trainer], str | None] | None = None) -> FitResult:
        """Train to ``cfg.epochs`` (or ``max_epochs`` more epochs in this call), or until a
        stop criterion, the time limit, a STOP file or a signal ends the run.

        ``on_step(trainer)``, when given, runs after every step; its time is not counted as
        training time (nor against the time limit), and a string it returns stops the run
        with that reason and a resumable checkpoint (benchmarks use it to measure the
        training time to a target accuracy)."""
        self._save_config()
        last_epoch = self.cfg.epochs if max_epochs is None else min(self.cfg.epochs, self.epoch + max_epochs)
        tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(self.out / "tb")) if self.world.main else None
        except ImportError:  # TensorBoard is optional
            pass
        t_start = self._session_t0 = time.perf_counter()
        self._seconds_base = self.train_seconds
        # the limit counts the run's whole training time, over resumed sessions too
        deadline = t_start + 60 * self.cfg.time_limit_min - self._seconds_base if self.cfg.time_limit_min else None
        stopped = None
        self._bad_in_row = 0
        stop_file = self.out / STOP_FILE
        self.model.train()
        with StopRequests() as requests:
            while self.epoch < last_epoch and not stopped:
                self.sampler.set_epoch(self.epoch)
                if self._todo is None:  # a new epoch: all ranks' batches, from one difficulty table
                    if isinstance(self.sampler, HardExampleSampler) and self.world.size > 1:
                        self.sampler.merge(self.world.sum_)
                    self._todo = split_for_world(self.sampler.batches(), self.world.size)
                self._todo_done = 0
                todo = self._todo[self.world.rank::self.world.size]
                # its own generator: a loader draws its worker seed from the global RNG otherwise,
                # and a resumed epoch (one more loader) would then train with other dropout masks
                loader = DataLoader(self.train_ds, batch_sampler=todo, collate_fn=collate, num_workers=self.cfg.workers,
                                    generator=torch.Generator().manual_seed(self.seed * 1000 + self.epoch))
                t0, lines, losses = time.perf_counter(), 0, []
                sums: dict[str, float] = {}
                bar = tqdm(loader, desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}", leave=False,
                           disable=not self.progress, total=len(todo))
                for batch in bar:
                    if batch["unreadable"]:
                        self._count_unreadable(batch["unreadable"])
                    if not batch["texts"]:  # every line of the batch unreadable: nothing to learn from
                        self.batch_in_epoch += 1
                        self._todo_done += 1
                        continue
                    if self.composite is not None:
                        batch = self.composite(batch, np.random.default_rng([self.seed, self.epoch, self.step, 13]))
                    if self.dropout is not None:
                        batch = self.dropout(batch, np.random.default_rng([self.seed, self.epoch, self.step, 11]))
                    if self.notext_rate > 0:
                        rng = np.random.default_rng([self.seed, self.epoch, self.step, 7])
                        batch = add_notext(batch, self.notext_rate, rng, self.notext_source)
                    if self.distiller is not None:  # the teachers label the batch as the student will see it
                        batch["soft"] = self.distiller(batch)
                    stats = self._train_step(batch)
                    self.step += 1
                    self.batch_in_epoch += 1
                    self._todo_done += 1
                    lines += len(batch["texts"])
                    losses.append(stats["loss"])
                    for k, v in stats.items():
                        sums[k] = sums.get(k, 0.0) + v
                    bar.set_postfix(loss=f"{stats['loss']:.3f}")
                    if tb:
                        for k, v in stats.items():
                            tb.add_scalar(f"train/{k}", v, self.step)
                    reason: str | None = None
                    if requests.signal or stop_file.exists():
                        reason = f"signal {requests.signal}" if requests.signal else f"stop file {stop_file}"
                    elif deadline and time.perf_counter() > deadline:
                        reason = "time limit"
                    elif on_step is not None:
                        t_hook = time.perf_counter()
                        reason = on_step(self)
                        paused = time.perf_counter() - t_hook
                        t0 += paused
                        self._session_t0 += paused
                        if deadline:
                            deadline += paused
                    stopped = self._agree(reason)  # under torchrun: every rank stops at the same step
                    if stopped:
                        break
                train_s = time.perf_counter() - t0
                if stopped and stopped != "time limit":
                    self.save(best=False)  # mid-epoch: resume() continues at the next batch
                    break
                self.batch_in_epoch, self._todo = 0, None
                val = self._validate()
                self.epoch += 1
                mean_loss = float(np.mean(losses)) if losses else math.nan
                rec: dict[str, Any] = {
                    "epoch": self.epoch, "step": self.step, "loss": mean_loss,
                    "val_word_acc": val.word_acc, "val_cer": val.cer, "val_line_acc": val.line_acc,
                    "train_lines_per_s": lines / train_s if train_s else 0.0, "epoch_seconds": train_s,
                    "lr": self.sched.get_last_lr()[0], "bad_steps": self.bad_steps}
                # the mode's own statistics, averaged over the epoch (adversary success, inner steps...)
                rec.update({f"train_{k}": v / len(losses) for k, v in sums.items() if k != "loss" and losses})
                self._adversarial_validation(rec)
                self.history.append(rec)
                is_best = val.word_acc > self.best
                self.since_val = 0 if val.word_acc > self.best + self.cfg.stop_min_delta else self.since_val + 1
                self.best = max(self.best, val.word_acc)
                self.since_loss = 0 if mean_loss < self.best_loss - self.cfg.stop_min_delta else self.since_loss + 1
                self.best_loss = min(self.best_loss, mean_loss) if math.isfinite(mean_loss) else self.best_loss
                stopped = stopped or plateau_reason(self.cfg, self.since_loss, self.since_val,
                                                    rec.get("val_easy_share"))
                self.save(best=is_best)
                if self.world.main:
                    with open(self.out / METRICS_FILE, "a", encoding="utf-8") as f:
                        f.write(json.dumps(rec) + "\n")
                if tb:
                    for k in ("val_word_acc", "val_cer", "val_line_acc", "loss", "train_lines_per_s", "val_easy_share"):
                        if k in rec:
                            tb.add_scalar(f"epoch/{k}", rec[k], self.epoch)
                if self.progress:
                    extra = f"  easy under attack {rec['val_easy_share']:.3f}" if "val_easy_share" in rec else ""
                    print(f"epoch {self.epoch}: loss {rec['loss']:.4f}  val word acc {val.word_acc:.4f}  "
                          f"CER {val.cer:.4f}  {rec['train_lines_per_s']:.0f} lines/s{extra}", flush=True)
        if tb:
            tb.close()
        self.train_seconds, self._session_t0 = self.training_seconds(), None
        return FitResult(epochs=self.epoch, steps=self.step, best_val_word_acc=self.best, stopped=stopped or "epochs",
                         seconds=time.perf_counter() - t_start, history=self.history, problems=len(self.problems),
                         unreadable=len(self.unreadable), bad_steps=self.bad_steps)
