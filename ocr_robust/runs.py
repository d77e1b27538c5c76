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
           "check_outputs", "durable_replace", "save_weights", "load_run", "model_kind", "read_meta",
           "load_torch_model", "read_metrics"]

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


def _plain_name(value, f: Path, key: str) -> str:
    """A file entry of model.json: a plain file name inside the export folder, never a path."""
    if not isinstance(value, str) or not value or value in (".", "..") or "/" in value or "\\" in value \
            or Path(value).name != value:
        raise InputError(f, f"file entry {key!r}: {value!r} is not a plain file name inside the export folder; "
                            "the export is refused")
    return value


def read_meta(path: str | Path) -> tuple[dict, Charset]:
    """An export's model.json and charset, checked: the input contract (a positive height),
    file entries that are plain names inside the folder; or one clear error naming the file."""
    f = Path(path) / META_FILE
    try:
        meta = json.loads(f.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        charset = Charset(meta["charset"], name=meta.get("charset_name", "export"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f, f"malformed model description: {type(e).__name__}: {e}") from None
    inp = meta.get("input")
    if not isinstance(inp, dict) or "height" not in inp:
        raise InputError(f, "malformed model description: no 'input' entry with the line height")
    height = inp["height"]
    if isinstance(height, bool) or not isinstance(height, int) or not 8 <= height <= 1024:
        raise InputError(f, f"malformed model description: input height {height!r} (expected 8 to 1024 pixels)")
    formats = meta.get("formats") or {"onnx": meta.get("onnx", ONNX_FILE)}
    if not isinstance(formats, dict):
        raise InputError(f, "malformed model description: 'formats' is not a mapping")
    meta["formats"] = {k: _plain_name(v, f, k) for k, v in formats.items()}
    meta["weights"] = _plain_name(meta.get("weights", WEIGHTS_FILE), f, "weights")
    return meta, charset


def load_torch_model(path: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode, charset, description) from a run folder or an export folder;
    weights from safetensors only. Attacks need this: they differentiate the model."""
    p = Path(path)
    if model_kind(p) == "run":
        model, charset, cfg = load_run(p, "best", device)
        return model, charset, {"kind": "run", "mode": cfg.get("mode", "natural"), "crop": cfg.get("crop", "none")}
    meta, charset = read_meta(p)
    weights = p / meta["weights"]
    try:
        model = build_model(meta["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(p / META_FILE, f"malformed model description: its 'model' builds no model ({e})") from None
    try:
        model.load_state_dict(load_file(str(weights), device="cpu"))
    except Exception as e:  # safetensors' own errors, a missing file, shapes that do not fit
        raise InputError(weights, f"cannot load the export's PyTorch weights ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
    check_outputs(model.cfg.num_classes, charset, p / META_FILE)
    return model.to(device).eval(), charset, {"kind": "export", "mode": meta.get("training_mode", "natural"),
                                              "crop": meta.get("input", {}).get("crop", "none")}


def check_outputs(classes: int | None, charset: Charset, where: Path) -> None:
    """A model's outputs and its charset agree (blank + one class per character)."""
    if classes is not None and classes != charset.num_classes:
        raise InputError(where, f"the model has {classes} output classes but its charset {charset.num_classes} "
                                "(blank + characters): they do not belong together")


def read_metrics(run: str | Path) -> list[dict]:
    """The per-epoch records of a run's ``metrics.jsonl`` (empty when it has none yet)."""
    f = Path(run) / METRICS_FILE
    if not f.is_file():
        return []
    return [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
