"""The training configuration: every field of a run, its default, and loading it from YAML.

The defaults live here only; ``ocr-robust train`` flags and YAML configs override them, and
the resolved config is written beside the run (``config.yaml``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from ..data.crop import CROP_MODES
from ..data.notext import procedural_source
from ..errors import InputError
from ..images import MAX_WIDTH
from .distributed import LR_SCALING
from .schedule import SCHEDULES

__all__ = ["TrainConfig"]


def _f(default, help: str, flag: str | None = "", choices: tuple[str, ...] | None = None, positive: bool = False):
    """A config field with its ``train`` help text, its flag where it is not ``--FIELD-NAME``
    (``None``: no flag), the values it takes where they are few, and whether it must be > 0."""
    return field(default=default, metadata={"help": help, "flag": flag, "choices": choices, "positive": positive})


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run. Frozen: derive a changed copy with
    ``dataclasses.replace``. Each field's ``metadata`` carries its ``help`` (and ``flag``, where
    the ``train`` flag is not the field's name); ``ocr-robust train`` builds its flags from them."""

    data: str = _f("", "training line store: a folder, an LMDB, NAME.txt listing stores, or stores joined by "
                       "commas (read as one)")
    out: str = _f("runs/run", "run folder")
    val: str | None = _f(None, "validation line store (default: a held-back share of --data)")
    val_fraction: float = _f(0.05, "share of --data held back for validation when --val is not given")
    model: str = _f("crnn-small", "a registered model (ocr-robust models): crnn-small, crnn-large, ...")
    charset: str = _f("latin", "a charset name (ocr_robust/charsets) or a charset file")
    mode: str = _f("natural", "training mode: natural, realtime, pgd-at, fgsm-rs, free-at, nsl, trades")
    epochs: int = _f(10, "epochs to train", positive=True)
    batch_size: int = _f(64, "lines per batch (per process under torchrun)", positive=True)
    lr: float = _f(2e-3, "peak learning rate (AdamW)", positive=True)
    weight_decay: float = _f(0.01, "AdamW weight decay")
    warmup: float = _f(0.1, "share of steps warming up (onecycle)")
    schedule: str = _f("onecycle", "onecycle (warm-up, cosine) or constant (fine-tuning, time budgets)",
                        choices=SCHEDULES)
    grad_clip: float = _f(5.0, "clip the gradient norm to this", positive=True)
    augment: float | str = _f(1.0, "augmentation: the classic strength (0: off), and/or region dropout: cutout "
                                   "(flat fill), cutout:noise, patchgan:GEN (a `patchgan train` folder); "
                                   "comma-separated, e.g. 1.0,patchgan:gen")
    composite_p: float = _f(0.5, "san:SAN augmentation: the probability a line gets a SAN background under it")
    notext_source: str = _f("procedural", "no-text images: procedural (noise, flat grey, shapes, watermark "
                                          "fragments), procedural:KIND,... (of ocr_robust.data.notext.KINDS, e.g. "
                                          "with rules) or san:SAN (a `san train` folder's backgrounds)")
    erase_p: float = _f(0.5, "region dropout: the probability a line gets a hole")
    erase_area: str = _f("0.02-0.1", "region dropout: the hole's area, a share of the line, LOW-HIGH")
    erase_aspect: str = _f("0.3-3.3", "region dropout: the hole's height/width, LOW-HIGH (log-uniform)")
    distill_folds: int = _f(0, "train this many teachers in cross-validation folds first (OUT/teachers) and "
                               "distil their out-of-fold posteriors into this run; 0: off")
    teachers: str = _f("", "teacher runs or exports to distil from, comma-separated (fold teachers: each line "
                           "from the one that never saw it; others: their mean)")
    distill_weight: float = _f(0.5, "the KL term's weight w: loss = (1 - w) CTC + w T^2 KL")
    distill_temperature: float = _f(2.0, "the distillation temperature T", positive=True)
    fold: str = _f("", "K/N: train on every line not in fold K of N (what --distill-folds gives each teacher)")
    crop: str = _f("ink", "crop normalisation in training and reading: ink, or none (crops as stored)",
                    choices=CROP_MODES)
    crop_jitter: float = _f(0.5, "re-cut training crops with random margins up to this x the ink height; 0: off")
    max_width: int = _f(MAX_WIDTH, "widest line in pixels; wider lines are squeezed", positive=True)
    seed: int = _f(0, "random seed")
    device: str = _f("auto", "auto, cpu, cuda or cuda:N")
    amp: bool = _f(True, "bfloat16 mixed precision where the device has it natively")
    workers: int = _f(0, "DataLoader worker processes")
    # under torchrun (training.distributed); batch_size is per rank
    lr_scaling: str = _f("sqrt", "under torchrun: the peak lr is lr x sqrt(processes) (sqrt), x processes "
                                 "(linear) or lr (none)", choices=LR_SCALING)
    val_ranks: str = _f("sharded", "under torchrun: validate a share of the lines on each rank (sharded) or all "
                                   "on rank 0 (rank0); the figures are the same", choices=("sharded", "rank0"))
    time_limit_min: float | None = _f(None, "stop after this many minutes, keeping best and last", flag="--time-limit")
    mode_options: dict = field(default_factory=dict, metadata={"flag": None})  # --opt KEY=VALUE
    init_from: str | None = _f(None, "start from the weights of this run or export (fine-tuning)", flag="--init")
    notext_rate: float | None = _f(None, "no-text images per line in a batch (default 0.05 realtime, else 0)")
    sampler: str = _f("auto", "bucket, hard (hard-example sampling) or auto (hard for realtime)",
                       choices=("auto", "bucket", "hard"))
    hard_extra: float = _f(0.25, "hard sampler: extra draws per epoch, as a share of the lines")
    sortagrad: bool = _f(False, "bucket sampler, training from scratch: the first epoch narrowest lines first")
    # stop criteria (METHODS.md S8), besides the number of epochs; None = off
    stop_loss_patience: int | None = _f(None, "stop after this many epochs without a lower training loss")
    stop_val_patience: int | None = _f(None, "stop after this many epochs without a better validation word accuracy")
    stop_min_delta: float = _f(1e-3, "what counts as an improvement for the two patience rules")
    stop_easy_share: float | None = _f(None, "attack all validation lines each epoch; stop at this share read right")
    val_attack: dict = field(default_factory=dict, metadata={"flag": None})
    report_images: int = _f(16, "lines on each epoch's adversarial validation page (0: none)")
    max_bad_steps: int = _f(20, "non-finite losses or gradients in a row that stop the run", positive=True)
    max_unreadable: float = _f(0.01, "share of the training lines whose images may fail to decode (each is "
                                     "skipped and reported) before the run stops")

    def __post_init__(self) -> None:
        """Every value of the type its field declares and among its choices: a config from
        YAML or ``--opt`` fails here with the field's name, not deep inside the run."""
        for f in fields(self):
            v = getattr(self, f.name)
            kinds = [k.strip() for k in str(f.type).split("|")]
            if v is None and "None" in kinds:
                continue
            if "float" in kinds and isinstance(v, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
                try:
                    v = float(v)
                except ValueError:
                    pass
                else:
                    object.__setattr__(self, f.name, v)
            ok = (("int" in kinds and isinstance(v, int) and not isinstance(v, bool))
                  or ("float" in kinds and isinstance(v, (int, float)) and not isinstance(v, bool))
                  or ("str" in kinds and isinstance(v, str)) or ("bool" in kinds and isinstance(v, bool))
                  or ("dict" in kinds and isinstance(v, dict)))
            if not ok:
                raise ValueError(f"{f.name}: expected {' or '.join(k for k in kinds if k != 'None')}, got {v!r}")
            if "float" in kinds and isinstance(v, (int, float)) and not math.isfinite(v):
                raise ValueError(f"{f.name}: expected a finite number, got {v!r}")
            if f.metadata.get("positive") and not v > 0:
                raise ValueError(f"{f.name}: expected a positive number, got {v!r}")
            choices = f.metadata.get("choices")
            if choices and v not in choices:
                raise ValueError(f"{f.name}: expected one of {', '.join(choices)}, got {v!r}")
        # the compound values, parsed here so that a bad one fails before the run starts
        from ..augment import parse_augment
        from ..generative.erase import EraseSpec
        from .distill import parse_fold, teacher_list

        parse_augment(self.augment)
        EraseSpec(self.erase_p, self.erase_area, self.erase_aspect)  # type: ignore[arg-type]
        parse_fold(self.fold)
        if self.notext_source == "procedural" or self.notext_source.startswith("procedural:"):
            procedural_source(self.notext_source)  # names the unknown kind
        elif not (self.notext_source.startswith("san:") and len(self.notext_source) > 4):
            raise ValueError(f"notext_source: procedural, procedural:KIND,... or san:SAN, got {self.notext_source!r}")
        if not 0 <= self.composite_p <= 1:
            raise ValueError(f"composite_p: expected 0..1, got {self.composite_p}")
        if self.distill_folds == 1 or self.distill_folds < 0:
            raise ValueError(f"distill_folds: 0 (off) or at least 2 folds, got {self.distill_folds}")
        if self.distill_folds and self.teachers and self.teachers != teacher_list(self.out, self.distill_folds):
            raise ValueError("distill_folds trains its own teachers: give teachers or distill_folds, not both")
        if not 0 <= self.distill_weight <= 1:
            raise ValueError(f"distill_weight: expected 0..1, got {self.distill_weight}")

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> TrainConfig:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise InputError(path, f"cannot read the config: {e}") from None
        if not isinstance(raw, dict):
            raise InputError(path, "the config must be a mapping of field: value")
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise InputError(path, f"unknown config keys: {', '.join(sorted(map(str, unknown)))}")
        raw.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**raw)
        except ValueError as e:
            raise InputError(path, str(e)) from None
