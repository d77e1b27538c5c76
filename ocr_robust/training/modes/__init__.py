"""The training modes, one file each; importing this package registers them all in ``MODES``.

A new mode is one file here with one ``@register_mode`` class (see ``base.py``) and its
import below, plus a test."""

from . import fgsm_rs, free_at, natural, nsl, pgd_at, realtime, trades  # noqa: F401  (they register)
from .base import MODES, BoundedAttackMode, StepContext, TrainingMode, make_mode, register_mode

__all__ = ["MODES", "StepContext", "TrainingMode", "BoundedAttackMode", "make_mode", "register_mode"]
