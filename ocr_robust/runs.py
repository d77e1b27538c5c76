"""The run and export folder formats: what training writes and reading loads.

A **run folder** (``ocr-robust train --out``) holds ``config.yaml`` (the resolved
TrainConfig plus ``model_config``), ``charset.txt``, weights as safetensors
(``best.safetensors``, ``last.safetensors``), the resumable state ``last.state.pt`` and
``metrics.jsonl`` (one JSON object per epoch). An **export folder** (``ocr-robust export``)
holds ``model.json`` (model config, charset, input contract, formats, figures) and the
weights as ``model.safetensors``, ``model.onnx``, ``model.int8.onnx``, ``model.ts``.
Weights are read from safetensors only: untrusted files never run code.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from .charset import Charset
from .errors import InputError
from .models import CRNN, build_model

__all__ = ["ONNX_FILE", "WEIGHTS_FILE", "META_FILE", "INT8_FILE", "TORCHSCRIPT_FILE", "METRICS_FILE", "pick_device",
           "durable_replace", "save_weights", "load_run", "model_kind", "read_meta", "load_torch_model",
           "read_metrics"]

ONNX_FILE, WEIGHTS_FILE, META_FILE = "model.onnx", "model.safetensors", "model.json"
INT8_FILE, TORCHSCRIPT_FILE = "model.int8.onnx", "model.ts"
METRICS_FILE = "metrics.jsonl"


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def durable_replace(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` over ``path`` after its bytes are on disk, then make the rename durable."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # a platform without directory handles
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_weights(model: CRNN, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp),
              metadata={"model": json.dumps(asdict(model.cfg))})
    durable_replace(tmp, path)


def load_run(run: str | Path, which: str = "best", device: str | torch.device = "cpu") -> tuple[CRNN, Charset, dict]:
    """Model, charset and config of a run folder (weights from safetensors only)."""
    run = Path(run)
    cfg_path, weights = run / "config.yaml", run / f"{which}.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise InputError(run, f"not a training run: expected config.yaml and {which}.safetensors in it")
    try:
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
        model = build_model(cfg["model_config"])
    except (OSError, yaml.YAMLError, TypeError, KeyError, ValueError) as e:
        raise InputError(cfg_path, f"not a usable run config (its model_config builds no model: {e})") from None
    charset = Charset.load(run / "charset.txt")
    try:
        model.load_state_dict(load_file(str(weights), device="cpu"))
    except Exception as e:
        raise InputError(weights, "cannot load: not safetensors weights that fit the model in config.yaml "
                                  f"({e})") from None
    return model.to(device).eval(), charset, cfg


def model_kind(path: str | Path) -> str:
    p = Path(path)
    if (p / META_FILE).is_file() and any((p / f).is_file() for f in (ONNX_FILE, TORCHSCRIPT_FILE, WEIGHTS_FILE)):
        return "export"
    if (p / "config.yaml").is_file() and (p / "best.safetensors").is_file():
        return "run"
    raise InputError(p, "not a model: expected a training run (config.yaml + best.safetensors) "
                        "or an export folder (model.json + model.onnx)")


def read_meta(path: str | Path) -> tuple[dict, Charset]:
    """An export's model.json and charset, or one clear error naming the file."""
    f = Path(path) / META_FILE
    try:
        meta = json.loads(f.read_text(encoding="utf-8"))
        return meta, Charset(meta["charset"], name=meta.get("charset_name", "export"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f, f"malformed model description: {e}") from None


def load_torch_model(path: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode, charset, description) from a run folder or an export folder;
    weights from safetensors only. Attacks need this: they differentiate the model."""
    p = Path(path)
    if model_kind(p) == "run":
        model, charset, cfg = load_run(p, "best", device)
        return model, charset, {"kind": "run", "mode": cfg.get("mode", "natural"), "crop": cfg.get("crop", "none")}
    meta, charset = read_meta(p)
    try:
        model = build_model(meta["model"])
        model.load_state_dict(load_file(str(p / meta.get("weights", WEIGHTS_FILE)), device="cpu"))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise InputError(p, f"cannot load the export's PyTorch weights: {e}") from None
    return model.to(device).eval(), charset, {"kind": "export", "mode": meta.get("training_mode", "natural"),
                                              "crop": meta.get("input", {}).get("crop", "none")}


def read_metrics(run: str | Path) -> list[dict]:
    """The per-epoch records of a run's ``metrics.jsonl`` (empty when it has none yet)."""
    f = Path(run) / METRICS_FILE
    if not f.is_file():
        return []
    return [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
