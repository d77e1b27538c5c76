"""Reading lines with a trained model: from a run folder (PyTorch) or an export folder
(ONNX Runtime), with the same preprocessing and decoding either way."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .data.crop import is_blank, normalise_crops
from .decoding import Decoded, decode, greedy_batch
from .errors import InputError
from .images import MAX_WIDTH, output_frames, pad_batch, resize_to_height
from .runs import META_FILE, check_outputs, load_torch_model, model_kind, pick_device, read_meta

ENGINES = ("auto", "onnx", "int8", "torchscript", "torch")
# The shipped default model (benchmarks/train_latin.sh makes it), package data so a wheel carries
# it (the repository's pretrained/ links here); OCR_ROBUST_MODEL points elsewhere.
DEFAULT_MODEL = Path(__file__).resolve().parent / "pretrained" / "latin"
# Padded pixels per batch when reading (benchmarks/RESULTS.md, issue 23): 64 lines of 256 px, 32 px high
BATCH_PIXELS = 64 * 256 * 32


def default_model() -> Path:
    """The model commands use when ``--model`` is omitted, or one error saying what to do."""
    import os

    p = Path(os.environ.get("OCR_ROBUST_MODEL") or DEFAULT_MODEL)
    if not (p / META_FILE).is_file():
        raise InputError(p, "no default model here: pass --model (a run or an export folder), set OCR_ROBUST_MODEL, "
                            "or make one with benchmarks/train_latin.sh")
    return p


class Recognizer:
    """``recognize(images)`` -> one :class:`Decoded` per grey uint8 line image.

    ``engine``: for an export folder ``onnx`` (ONNX Runtime fp32), ``int8`` (the quantised
    ONNX model), ``torchscript`` or ``torch`` (PyTorch from the safetensors weights); ``auto``
    picks ONNX Runtime when the export has it. A run folder is read with PyTorch.
    """

    def __init__(self, path: str | Path, device: str = "auto", decoder: str = "greedy", beam: int = 8,
                 lexicon: set[str] | None = None, max_width: int | None = MAX_WIDTH, engine: str = "auto",
                 threads: int | None = None):
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        self.path = Path(path)
        self.kind = model_kind(path)
        self.decoder, self.beam, self.lexicon, self.max_width = decoder, beam, lexicon, max_width
        self._run = None  # callable: N x 1 x H x W tensor -> T x N x C numpy
        if self.kind == "run":
            if engine not in ("auto", "torch"):
                raise InputError(self.path, f"engine {engine!r} needs an export folder (ocr-robust export); "
                                            "a run folder is read with PyTorch")
            self.engine = "torch"
            self.device = pick_device(device)
            self.model, self.charset, desc = load_torch_model(path, self.device)
            self.height = self.model.cfg.height
            self.crop = desc["crop"]
            return
        self.meta, self.charset = read_meta(self.path)
        self.height = int(self.meta["input"]["height"])
        self.crop = self.meta["input"].get("crop", "none")  # exports before crop normalisation: none
        formats = self.meta["formats"]
        if engine == "auto":  # never TorchScript: it is code, read only when asked for by name
            engine = "onnx" if "onnx" in formats else "torch"
        self.engine = engine
        key = {"onnx": "onnx", "int8": "onnx_int8", "torchscript": "torchscript"}.get(engine)
        if key is not None and (key not in formats or not (self.path / formats[key]).is_file()):
            raise InputError(self.path, f"this export has no {engine} model (it has: {', '.join(formats) or 'none'}); "
                                        f"export it with --format all{' --quantize int8' if engine == 'int8' else ''}")
        if engine in ("onnx", "int8"):
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if threads:
                opts.intra_op_num_threads = threads
            onnx_file = self.path / formats[key]
            try:
                self.session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
            except Exception as e:  # ONNX Runtime's own errors: garbage, empty or truncated files
                msg = str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
                raise InputError(onnx_file, f"not a readable ONNX model ({msg})") from None
            out = self.session.get_outputs()[0].shape
            check_outputs(out[-1] if out and isinstance(out[-1], int) else None, self.charset, self.path / META_FILE)
            self._run = lambda x: self.session.run(None, {"images": x.numpy()})[0]
        else:
            self.device = pick_device(device)
            if engine == "torchscript":
                ts_file = self.path / formats[key]
                try:  # TorchScript is code: for trusted exports only (README), and only when asked for
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", DeprecationWarning)
                        self.model = torch.jit.load(str(ts_file), map_location=self.device).eval()
                except Exception as e:
                    raise InputError(ts_file, f"not a readable TorchScript model ({type(e).__name__})") from None
            else:
                self.model, _, _ = load_torch_model(path, self.device)

    def logprobs(self, batch: torch.Tensor) -> np.ndarray:
        """``N x 1 x H x W`` pixels 0..255 -> ``T x N x C`` log-probabilities."""
        if self._run is not None:
            return self._run(batch)
        with torch.no_grad():
            return self.model(batch.to(self.device)).float().cpu().numpy()

    def recognize(self, images: Sequence[np.ndarray], batch_size: int = 64,
                  batch_pixels: int | None = BATCH_PIXELS) -> list[Decoded]:
        """Read the lines, in batches of similar width: at most ``batch_size`` lines and, on
        top, at most ``batch_pixels`` padded pixels (so a batch of wide lines holds fewer of
        them; ``None``: lines only)."""
        images = list(images)
        # a crop without contrast holds no ink, so no text: read as empty without the model
        # (a network asked to read blank paper may well answer "1" or ".")
        out: list[Decoded | None] = [Decoded("", 1.0) if is_blank(im) else None for im in images]
        ink = [i for i, d in enumerate(out) if d is None]
        resized = [resize_to_height(im, self.height, self.max_width)
                   for im in normalise_crops([images[i] for i in ink], self.crop)]
        for pos in width_batches([im.shape[1] for im in resized], self.height, batch_size, batch_pixels):
            idx = [ink[k] for k in pos]
            batch, widths = pad_batch([resized[k] for k in pos])
            lp = self.logprobs(batch)
            frames = [output_frames(int(w)) for w in widths]
            if self.decoder == "greedy" and not self.lexicon:
                reads = greedy_batch(lp, frames, self.charset)
            else:
                reads = [decode(lp[:f, j], self.charset, self.decoder, self.beam, self.lexicon)
                         for j, f in enumerate(frames)]
            for i, r in zip(idx, reads):
                out[i] = r
        return out  # type: ignore[return-value]



def width_batches(widths: Sequence[int], height: int, batch_size: int, batch_pixels: int | None) -> list[list[int]]:
    """Indices of lines in batches for reading: sorted by width, each batch at most
    ``batch_size`` lines and ``batch_pixels`` padded pixels (its widest line x its lines x
    ``height``; a line wider than the budget gets a batch of its own)."""
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    out: list[list[int]] = []
    cur: list[int] = []
    for i in order:  # ascending: the line being added is the batch's widest
        if cur and (len(cur) >= batch_size or
                    (batch_pixels is not None and (len(cur) + 1) * widths[i] * height > batch_pixels)):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


def read_image(path: str | Path) -> np.ndarray:
    from .images import decode_grey

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(p, f"cannot read: {e.strerror or e}") from None
    img = decode_grey(data, str(p))
    if img.shape[0] < 2 or img.shape[1] < 2:
        raise InputError(p, f"image is too small ({img.shape[1]}x{img.shape[0]})")
    return img


__all__ = ["Recognizer", "read_image", "default_model", "DEFAULT_MODEL", "ENGINES", "BATCH_PIXELS", "width_batches"]
