"""Distilled soft labels (METHODS.md section 2, seed 001): teachers trained in
cross-validation folds label each training line with their per-frame posteriors, and the
student's loss mixes CTC on the true label with the KL divergence to them.

- :func:`fold_of`: a line's fold, from its index in the training store and the seed, the
  same in every process; a teacher of fold ``k`` (config ``fold: k/K``) trains on every line
  not in fold ``k``, so each line has one teacher that never saw it.
- :func:`prepare_teachers`: ``train --distill-folds K`` trains (or reuses, or resumes) the K
  teachers under ``OUT/teachers/fold-k`` with the student's own config, then names them in
  ``teachers``.
- :class:`Distiller`: loads the teachers and gives each batch its :class:`SoftTargets`: per
  line, the posteriors of its out-of-fold teacher at the temperature; teachers without a
  fold (``--teachers RUN...`` of plain runs) label every line with their mean.
- :class:`SoftTargets` ``.mix``: ``(1 - w) * CTC + w * T^2 * sum_frames KL(teacher_T ||
  student_T) / target length``, per line, the KL on the student's valid frames.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from ..errors import InputError
from ..losses import frame_kl

__all__ = ["fold_of", "parse_fold", "SoftTargets", "Distiller", "prepare_teachers", "teacher_dirs", "teacher_list"]


def fold_of(index: int, folds: int, seed: int) -> int:
    """The fold (0..folds-1) of the line at ``index`` of the training store."""
    return random.Random(seed * 1_000_003 + index).randrange(folds)


def parse_fold(value: str) -> tuple[int, int] | None:
    """``"k/K"`` -> (k, K); ``""`` -> None."""
    if not value:
        return None
    try:
        k, n = (int(v) for v in str(value).split("/"))
    except ValueError:
        raise ValueError(f"fold: expected K/N such as 0/3, got {value!r}") from None
    if not (n >= 2 and 0 <= k < n):
        raise ValueError(f"fold: expected 0 <= K < N and N >= 2, got {value!r}")
    return k, n


@dataclass
class SoftTargets:
    """A batch's teacher posteriors: ``logp`` T x N x C log-probabilities at ``temperature``."""

    logp: torch.Tensor
    temperature: float
    weight: float

    def mix(self, ctc: torch.Tensor, logp: torch.Tensor, widths: torch.Tensor, lengths: torch.Tensor,
            rows: torch.Tensor | None = None) -> torch.Tensor:
        """Per line ``(1 - w) * ctc + w * T^2 * KL / target length`` (``rows``: the lines
        ``logp`` holds, for a compacted batch)."""
        ref = self.logp if rows is None else self.logp[:, rows.to(self.logp.device)]
        student = F.log_softmax(logp.float() / self.temperature, dim=-1)
        kd = frame_kl(ref.to(logp.device), student, widths) * self.temperature ** 2
        kd = kd / lengths.to(logp.device).clamp(min=1).float()
        return (1 - self.weight) * ctc + self.weight * kd


def teacher_dirs(out: str | Path, folds: int) -> list[Path]:
    return [Path(out) / "teachers" / f"fold-{k}" for k in range(folds)]


def teacher_list(out: str | Path, folds: int) -> str:
    """``teachers`` as ``--distill-folds`` sets it: the fold teachers' folders."""
    return ",".join(str(p) for p in teacher_dirs(out, folds))


def _done(run: Path, epochs: int) -> bool:
    """A teacher run that finished: its metrics hold ``epochs`` epochs (or it stopped early
    by a rule, which its state records as complete)."""
    metrics = run / "metrics.jsonl"
    if not (run / "best.safetensors").is_file() or not metrics.is_file():
        return False
    lines = [x for x in metrics.read_text(encoding="utf-8").splitlines() if x.strip()]
    return len(lines) >= epochs or (run / "teacher.done").is_file()


def prepare_teachers(cfg, progress: bool = True):
    """``cfg`` with ``teachers`` set: with ``distill_folds`` K, the K fold teachers are
    trained first (a finished one is reused, an interrupted one resumed), each with the
    student's config except its folder, its fold and no distillation of its own."""
    from .distributed import world
    from .trainer import Trainer

    if not cfg.distill_folds:
        return cfg
    w = world()  # under torchrun every rank trains each teacher with the others; rank 0 writes
    progress = progress and w.main
    runs = teacher_dirs(cfg.out, cfg.distill_folds)
    for k, run in enumerate(runs):
        if _done(run, cfg.epochs):
            if progress:
                print(f"teacher {k + 1}/{cfg.distill_folds}: reusing {run}", flush=True)
            continue
        tcfg = replace(cfg, out=str(run), fold=f"{k}/{cfg.distill_folds}", distill_folds=0, teachers="")
        t = Trainer(tcfg, progress=progress)
        if progress:
            print(f"teacher {k + 1}/{cfg.distill_folds}: training {run} (every line not in fold {k})", flush=True)
        t.resume()
        r = t.fit()
        if r["stopped"].startswith(("signal", "stop file")):
            raise KeyboardInterrupt(f"teacher {run} stopped by {r['stopped']}: run the command again to continue")
        if w.main:
            (run / "teacher.done").write_text(r["stopped"] + "\n", encoding="utf-8")
        w.barrier()
    return replace(cfg, teachers=teacher_list(cfg.out, cfg.distill_folds))


class Distiller:
    """The teachers of a run and the soft targets they give a batch."""

    def __init__(self, teachers: list[torch.nn.Module], folds: list[int | None], n_folds: int | None, seed: int,
                 temperature: float, weight: float, device: torch.device):
        if temperature <= 0 or not 0 <= weight <= 1:
            raise ValueError(f"distillation needs a temperature > 0 and a weight in 0..1, got {temperature}, {weight}")
        self.teachers, self.folds, self.n_folds, self.seed = teachers, folds, n_folds, seed
        self.temperature, self.weight, self.device = temperature, weight, device

    @classmethod
    def load(cls, cfg, charset, device: torch.device) -> Distiller:
        """The teachers named in ``cfg.teachers`` (run or export folders). Fold teachers
        must cover every fold once, and have been trained on the student's data and seed."""
        from ..runs import load_torch_model

        paths = [p.strip() for p in cfg.teachers.split(",") if p.strip()]
        models, folds, n_folds = [], [], set()
        for p in paths:
            model, cs, _ = load_torch_model(p, device)
            if cs.chars != charset.chars:
                raise InputError(p, f"the teacher reads charset {cs.name!r}, the student {charset.name!r}: "
                                    "distillation needs the same classes")
            tcfg_path = Path(p) / "config.yaml"
            tcfg = yaml.safe_load(tcfg_path.read_text(encoding="utf-8")) if tcfg_path.is_file() else {}
            fold = parse_fold(str(tcfg.get("fold") or ""))
            if fold is not None and (tcfg.get("data") != cfg.data or int(tcfg.get("seed", -1)) != cfg.seed):
                raise InputError(p, f"a fold teacher of data {tcfg.get('data')!r}, seed {tcfg.get('seed')}: its "
                                    f"folds mean nothing for data {cfg.data!r}, seed {cfg.seed}")
            models.append(model)
            folds.append(None if fold is None else fold[0])
            if fold is not None:
                n_folds.add(fold[1])
        if not models:
            raise InputError("--teachers", "no teacher given")
        if any(f is not None for f in folds):
            if None in folds or len(n_folds) != 1 or sorted(folds) != list(range(next(iter(n_folds)))):  # type: ignore[type-var]
                raise InputError(cfg.teachers, f"fold teachers must be one per fold, all of the same K: got folds "
                                               f"{folds} of {sorted(n_folds)}")
        return cls(models, folds, next(iter(n_folds)) if n_folds else None, cfg.seed, cfg.distill_temperature,
                   cfg.distill_weight, device)

    @torch.no_grad()
    def __call__(self, batch) -> SoftTargets:
        x = batch["images"].to(self.device)
        n = x.shape[0]
        temp = self.temperature
        if self.n_folds is None:  # plain teachers: their mean posterior, every line
            probs = torch.stack([F.softmax(m(x).float() / temp, dim=-1) for m in self.teachers]).mean(0)
            return SoftTargets(probs.clamp(min=1e-12).log(), temp, self.weight)
        idx = batch["indices"].tolist()
        # a no-text image (index -1) was seen by no teacher: fold 0's teacher labels it
        fold = torch.tensor([fold_of(i, self.n_folds, self.seed) if i >= 0 else 0 for i in idx])
        out: torch.Tensor | None = None
        for model, f in zip(self.teachers, self.folds):
            rows = torch.eq(fold, int(f if f is not None else -1)).nonzero().flatten()
            if len(rows) == 0:
                continue
            logp = F.log_softmax(model(x[rows.to(self.device)]).float() / temp, dim=-1)
            if out is None:
                out = torch.zeros(logp.shape[0], n, logp.shape[2], device=self.device)
            out[:, rows.to(self.device)] = logp
        assert out is not None
        return SoftTargets(out, temp, self.weight)
