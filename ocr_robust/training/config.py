"""The training configuration: every field of a run, its default, and loading it from YAML.

The defaults live here only; ``ocr-robust train`` flags and YAML configs override them, and
the resolved config is written beside the run (``config.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from ..errors import InputError
from ..images import MAX_WIDTH

__all__ = ["TrainConfig"]


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
    schedule: str = "onecycle"  # onecycle (warm-up, cosine) | constant (lr throughout: fine-tuning, time budgets)
    grad_clip: float = 5.0
    augment: float = 1.0  # augmentation strength, 0 = off
    crop: str = "ink"  # crop normalisation in training and reading (data/crop.py); "none": crops as stored
    crop_jitter: float = 0.5  # training crops re-cut with random margins up to this x the ink height; 0 = off
    max_width: int = MAX_WIDTH  # the cap the Recognizer reads with, unless a config says otherwise
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bfloat16 mixed precision where the device has it natively (models.native_bf16)
    workers: int = 0
    time_limit_min: float | None = None  # stop after this many minutes (best/last kept)
    mode_options: dict = field(default_factory=dict)
    init_from: str | None = None  # start from the weights of a run or an export (fine-tuning)
    notext_rate: float | None = None  # no-text images per line in a batch; None: 0.05 realtime, else 0
    sampler: str = "auto"  # bucket | hard (hard-example sampling); auto: hard for realtime
    hard_extra: float = 0.25  # hard sampler: extra draws per epoch, as a share of the lines
    sortagrad: bool = False  # bucket sampler: the first epoch narrowest lines first (for training from scratch)
    # stop criteria (METHODS.md S8), besides the number of epochs; None = off
    stop_loss_patience: int | None = None  # epochs without the training loss improving
    stop_val_patience: int | None = None  # epochs without the validation word accuracy improving
    stop_min_delta: float = 1e-3  # what counts as an improvement for the two above
    stop_easy_share: float | None = None  # attack all validation lines each epoch; stop at this share read right
    val_attack: dict = field(default_factory=dict)  # settings of that attack (default: the mode's adversary)
    report_images: int = 16  # lines on each epoch's adversarial validation page (0 = no page)
    max_bad_steps: int = 20  # non-finite losses/gradients in a row that stop the run

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> TrainConfig:
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
