"""Saving and loading the generative models: safetensors weights with their config (a
dataclass, as JSON) in the file's metadata, written atomically; nothing is unpickled."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn as nn

from ..errors import InputError

__all__ = ["save_module", "load_module"]

M = TypeVar("M", bound=nn.Module)


def save_module(module: nn.Module, cfg: Any, path: Path, key: str) -> None:
    """``module``'s weights to ``path``, ``cfg`` (a dataclass) in the metadata under ``key``."""
    from safetensors.torch import save_file

    from ..runs import durable_replace

    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}, str(tmp),
              metadata={key: json.dumps(asdict(cfg))})
    durable_replace(tmp, path)


def load_module(path: str | Path, filename: str, key: str, build: Callable[[dict], M], what: str, how: str,
                device: str | torch.device = "cpu") -> M:
    """The module in ``path`` (a folder holding ``filename``, or the file), built by
    ``build(config dict)`` and in eval mode; one ``InputError`` naming the file otherwise."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    p = Path(path)
    f = p / filename if p.is_dir() else p
    if not f.is_file():
        raise InputError(p, f"not a {what}: no {filename} ({how})")
    try:
        with safe_open(str(f), "pt") as h:
            module = build(json.loads((h.metadata() or {})[key]))
        module.load_state_dict(load_file(str(f)))
    except Exception as e:
        raise InputError(f, f"cannot load the {what}: {e}") from None
    return module.to(device).eval()
