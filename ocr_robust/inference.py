"""Reading lines with a trained model: from a run folder (PyTorch) or an export folder
(ONNX Runtime), with the same preprocessing and decoding either way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .charset import Charset
from .data.dataset import HEIGHT, pad_batch, resize_to_height
from .decoding import Decoded, decode
from .errors import InputError

ONNX_FILE, WEIGHTS_FILE, META_FILE = "model.onnx", "model.safetensors", "model.json"


def model_kind(path: str | Path) -> str:
    p = Path(path)
    if (p / META_FILE).is_file() and (p / ONNX_FILE).is_file():
        return "export"
    if (p / "config.yaml").is_file() and (p / "best.safetensors").is_file():
        return "run"
    raise InputError(p, "not a model: expected a training run (config.yaml + best.safetensors) "
                        "or an export folder (model.json + model.onnx)")


class Recognizer:
    """``recognize(images)`` -> one :class:`Decoded` per grey uint8 line image."""

    def __init__(self, path: str | Path, device: str = "auto", decoder: str = "greedy", beam: int = 8,
                 lexicon: set[str] | None = None, max_width: int | None = 2000):
        from .training import load_run, pick_device

        self.path = Path(path)
        self.kind = model_kind(path)
        self.decoder, self.beam, self.lexicon, self.max_width = decoder, beam, lexicon, max_width
        if self.kind == "run":
            self.device = pick_device(device)
            self.model, self.charset, self.config = load_run(path, "best", self.device)
            self.height = self.config["model_config"]["height"]
        else:
            import onnxruntime as ort

            try:
                self.meta = json.loads((self.path / META_FILE).read_text(encoding="utf-8"))
                self.charset = Charset(self.meta["charset"], name=self.meta.get("charset_name", "export"))
            except (ValueError, KeyError) as e:
                raise InputError(self.path / META_FILE, f"malformed model description: {e}") from None
            self.height = int(self.meta["input"]["height"])
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.session = ort.InferenceSession(str(self.path / self.meta.get("onnx", ONNX_FILE)), opts,
                                                providers=["CPUExecutionProvider"])

    def logprobs(self, batch: torch.Tensor) -> np.ndarray:
        """``N x 1 x H x W`` pixels 0..255 -> ``T x N x C`` log-probabilities."""
        if self.kind == "run":
            with torch.no_grad():
                return self.model(batch.to(self.device)).float().cpu().numpy()
        return self.session.run(None, {"images": batch.numpy()})[0]

    def recognize(self, images: Sequence[np.ndarray], batch_size: int = 64) -> list[Decoded]:
        resized = [resize_to_height(im, self.height, self.max_width) for im in images]
        order = sorted(range(len(resized)), key=lambda i: resized[i].shape[1])  # similar widths together
        out: list[Decoded | None] = [None] * len(resized)
        for k in range(0, len(order), batch_size):
            idx = order[k : k + batch_size]
            batch, widths = pad_batch([resized[i] for i in idx])
            lp = self.logprobs(batch)
            for j, i in enumerate(idx):
                frames = max(1, int(widths[j]) // 4)
                out[i] = decode(lp[:frames, j], self.charset, self.decoder, self.beam, self.lexicon)
        return out  # type: ignore[return-value]


def load_torch_model(path: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode, charset, description) from a run folder or an export folder;
    weights from safetensors only. Attacks need this: they differentiate the model."""
    from safetensors.torch import load_file

    from .models import build_model
    from .training import load_run

    p = Path(path)
    if model_kind(p) == "run":
        model, charset, cfg = load_run(p, "best", device)
        return model, charset, {"kind": "run", "mode": cfg.get("mode", "natural")}
    try:
        meta = json.loads((p / META_FILE).read_text(encoding="utf-8"))
        charset = Charset(meta["charset"], name=meta.get("charset_name", "export"))
        model = build_model(meta["model"])
        model.load_state_dict(load_file(str(p / meta.get("weights", WEIGHTS_FILE)), device="cpu"))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise InputError(p, f"cannot load the export's PyTorch weights: {e}") from None
    return model.to(device).eval(), charset, {"kind": "export", "mode": meta.get("training_mode", "natural")}


def read_image(path: str | Path) -> np.ndarray:
    from .data.dataset import decode_grey

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(p, f"cannot read: {e.strerror or e}") from None
    img = decode_grey(data, str(p))
    if img.shape[0] < 2 or img.shape[1] < 2:
        raise InputError(p, f"image is too small ({img.shape[1]}x{img.shape[0]})")
    return img


__all__ = ["Recognizer", "model_kind", "read_image", "load_torch_model", "HEIGHT"]
