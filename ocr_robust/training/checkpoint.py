"""The resumable training state: one file (``last.state.pt``) renamed into place, read back
with ``torch.load(weights_only=True)`` (never code), and the RNG states inside it."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import cast

import numpy as np
import torch

from ..errors import InputError
from ..runs import METRICS_FILE, durable_replace

__all__ = ["STATE_FILE", "RUN_FILES", "run_files", "clear_run", "write_state", "read_state", "rng_state",
           "set_rng_state"]

STATE_FILE = "last.state.pt"
# what a run writes into its folder (Trainer): a folder holding any of these holds a run
RUN_FILES = ("config.yaml", "charset.txt", "best.safetensors", "last.safetensors", STATE_FILE, "last.state.tmp",
             METRICS_FILE, "tb", "adversarial", "STOP")


def run_files(out: str | Path) -> list[str]:
    """The run files already in ``out`` (none: a new or an unrelated folder)."""
    return [n for n in RUN_FILES if (Path(out) / n).exists()]


def clear_run(out: str | Path) -> None:
    """Delete a run's own files from ``out`` (``train --overwrite``); other files stay."""
    for n in run_files(out):
        f = Path(out) / n
        if f.is_dir():
            shutil.rmtree(f)
        else:
            f.unlink()


def write_state(out: Path, state: dict) -> None:
    tmp = out / "last.state.tmp"
    with open(tmp, "wb") as f:
        torch.save(state, f)
    durable_replace(tmp, out / STATE_FILE)


def read_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle with code in it, or a damaged file: never executed
        raise InputError(path, "refused: not a plain training state (weights-only loading failed: "
                               f"{str(e).splitlines()[0][:200]})") from None


def rng_state() -> dict:
    """torch, numpy and Python RNG states as tensors and plain numbers (weights-only loadable)."""
    _, keys, pos, has_gauss, cached = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())
    return {"rng_torch": torch.get_rng_state(),
            "rng_numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                          "has_gauss": int(has_gauss), "cached": float(cached)},
            "rng_python": list(random.getstate()[1])}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["rng_torch"])
    n = state["rng_numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), int(n["pos"]), int(n["has_gauss"]),
                         float(n["cached"])))
    random.setstate((3, tuple(int(v) for v in state["rng_python"]), None))
