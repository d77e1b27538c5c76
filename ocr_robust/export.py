"""Export a training run for an OCR service: ONNX (dynamic batch and width), the weights as
safetensors, and ``model.json`` (charset, preprocessing, decoder, provenance). A parity
check against PyTorch runs at export time and fails the export loudly if it does not hold.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .data.dataset import PIXEL_MAX, WIDTH_MULTIPLE
from .inference import META_FILE, ONNX_FILE, WEIGHTS_FILE
from .training import load_run, save_weights

OPSET = 17
PARITY_ATOL = 1e-3  # max |logprob difference| allowed between ONNX Runtime and PyTorch


class ExportError(RuntimeError):
    pass


def export(run: str | Path, out: str | Path, fmt: str = "onnx", sample_widths=(24, 160, 640)) -> dict:
    if fmt != "onnx":
        raise ValueError(f"format {fmt!r}: only 'onnx' is available so far")
    model, charset, cfg = load_run(run, "best", "cpu")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    height = model.cfg.height
    dummy = torch.full((2, 1, height, 64), 255.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), str(out / ONNX_FILE), input_names=["images"], output_names=["logprobs"],
                          dynamic_axes={"images": {0: "batch", 3: "width"}, "logprobs": {0: "frames", 1: "batch"}},
                          opset_version=OPSET, dynamo=False)
    save_weights(model, out / WEIGHTS_FILE)
    history = []
    metrics = Path(run) / "metrics.jsonl"
    if metrics.is_file():
        history = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
    meta = {
        "format": "ocr-robust-export", "version": __version__, "onnx": ONNX_FILE, "opset": OPSET,
        "weights": WEIGHTS_FILE, "charset": charset.chars, "charset_name": charset.name, "blank": 0,
        "input": {"layout": "N x 1 x H x W", "height": height, "channels": 1, "dtype": "float32",
                  "pixel_range": [0.0, PIXEL_MAX], "ink": "dark on light",
                  "resize": "to height keeping aspect ratio (INTER_AREA down, INTER_LINEAR up)",
                  "pad": f"right, with the line's background, to a multiple of {WIDTH_MULTIPLE}",
                  "normalisation": "inside the model: (x / 255 - 0.5) / 0.5"},
        "output": {"layout": "T x N x C log-probabilities", "frames": "T = W // 4", "classes": charset.num_classes},
        "decoder": {"method": "greedy", "beam": 8},
        "model": asdict(model.cfg), "training_mode": cfg.get("mode", "natural"),
        "validation": history[-1] if history else None,
    }
    parity = check_parity(model, out / ONNX_FILE, height, sample_widths)
    meta["parity"] = parity
    (out / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return {"out": str(out), "files": sorted(p.name for p in out.iterdir()), "parity": parity}


def check_parity(model, onnx_path: Path, height: int, widths=(24, 160, 640), seed: int = 0) -> dict:
    """Logits within PARITY_ATOL and identical greedy paths on random line-like inputs."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(seed)
    worst, same = 0.0, True
    for w in widths:
        x = 255.0 - 255.0 * (torch.rand(3, 1, height, w, generator=g) > 0.85).float()
        with torch.no_grad():
            ref = model(x).numpy()
        got = sess.run(None, {"images": x.numpy()})[0]
        if got.shape != ref.shape:
            raise ExportError(f"ONNX output shape {got.shape} != PyTorch {ref.shape} at width {w}")
        worst = max(worst, float(np.abs(got - ref).max()))
        same &= bool((got.argmax(-1) == ref.argmax(-1)).all())
    if worst > PARITY_ATOL or not same:
        raise ExportError(f"ONNX/PyTorch parity failed: max |diff| {worst:.2e} (tolerance {PARITY_ATOL}), "
                          f"same greedy path: {same}")
    return {"max_abs_diff": worst, "tolerance": PARITY_ATOL, "same_greedy_path": same, "widths": list(widths)}

