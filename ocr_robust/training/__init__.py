"""Training: the config, the Trainer and its parts, and the training modes (one file each):
``config.py`` (TrainConfig: every field, its default, YAML loading), ``trainer.py``
(Trainer.fit, the loop), ``schedule.py`` (the learning rate), ``checkpoint.py``
(the resumable state), ``stopping.py`` (signals, the STOP file, plateaus) and ``modes/``
(natural, realtime and the defences it is compared with)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import TrainConfig

if TYPE_CHECKING:
    from .modes import MODES, StepContext, TrainingMode, make_mode, register_mode
    from .trainer import Trainer, seed_everything

__all__ = ["TrainConfig", "Trainer", "seed_everything", "MODES", "StepContext", "TrainingMode",
           "make_mode", "register_mode"]

_LAZY = {"Trainer": "trainer", "seed_everything": "trainer", "MODES": "modes", "StepContext": "modes",
         "TrainingMode": "modes", "make_mode": "modes", "register_mode": "modes"}


def __getattr__(name: str) -> Any:
    """The Trainer and the modes load torch; they are imported on first use, so that the
    command line can build its ``train`` flags from :class:`TrainConfig` without it."""
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
