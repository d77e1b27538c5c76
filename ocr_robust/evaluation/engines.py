"""OCR engines a benchmark compares, behind one interface: ``read(grey line images) -> texts``.

- :class:`OursEngine`: an ocr-robust run or export (ONNX Runtime for an export).
- :class:`TesseractEngine`: Tesseract 5 (Debian ``tesseract-ocr`` + ``tesseract-ocr-eng``),
  line mode ``--psm 7``, run the fastest fair way: one process over a list file of all the
  images (not a process per line).
- :class:`PPOCREngine`: PaddleOCR PP-OCRv4 recognition through ``rapidocr-onnxruntime==1.4.4``,
  whose wheel ships the ONNX models; recognition only (no detection, no angle classifier),
  with its own batching (6 lines per batch, sorted by aspect ratio).
- :class:`PPOCRv6Engine`: PP-OCRv6 small recognition, the ``PP-OCRv6_rec_small.onnx`` inside
  the ``rapidocr==3.10.0`` wheel (nothing is downloaded), called as its documentation says for
  recognition only: ``engine(img, use_det=False, use_cls=False, use_rec=True)``, one line per call.

``make anchors`` installs all three. Every engine's output goes through the same
normalisation before scoring (:func:`normalise_reading`).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..pdf.ingest import normalise_text

__all__ = ["ANCHORS", "normalise_reading", "Engine", "OursEngine", "TesseractEngine", "PPOCREngine", "PPOCRv6Engine",
           "anchor"]

ANCHORS = ("tesseract", "ppocr", "ppocrv6")


def normalise_reading(text: str) -> str:
    """NFKC (full-width forms to ASCII, as PP-OCR's Chinese charset emits them), then the
    ingestion's normalisation (ligatures, look-alike code points such as Greek mu -> micro
    sign, whitespace collapsed): the same for every engine."""
    return normalise_text(unicodedata.normalize("NFKC", text))


class Engine(Protocol):
    name: str
    kind: str  # "ours" | "anchor"
    how: str  # how it was run, for the report

    def read(self, images: Sequence[np.ndarray]) -> list[str]: ...


class OursEngine:
    kind = "ours"

    def __init__(self, path: str | Path, engine: str = "auto", name: str | None = None):
        from ..inference import Recognizer
        from ..runs import load_torch_model

        self.path = Path(path)
        self.rec = Recognizer(path, engine=engine)
        self.model, _, info = load_torch_model(path)  # for attacks and saliency maps
        self.mode = info["mode"]
        self.name = name or f"ours:{self.path.name}"
        runtime = {"onnx": "ONNX Runtime fp32", "int8": "ONNX Runtime int8", "torchscript": "TorchScript",
                   "torch": "PyTorch"}[self.rec.engine]
        self.how = f"ocr-robust ({self.mode} training), {runtime}, batches of 64 lines sorted by width, greedy decoding"

    def read(self, images: Sequence[np.ndarray]) -> list[str]:
        return [d.text for d in self.rec.recognize(list(images))] if len(images) else []


class TesseractEngine:
    kind = "anchor"
    name = "tesseract"

    def __init__(self, lang: str = "eng"):
        exe = shutil.which("tesseract")
        if exe is None:
            raise RuntimeError("tesseract is not installed (make anchors: Debian tesseract-ocr tesseract-ocr-eng)")
        langs = subprocess.run([exe, "--list-langs"], capture_output=True, text=True).stdout.split()
        if lang not in langs:
            raise RuntimeError(f"tesseract has no {lang!r} language data (Debian package tesseract-ocr-{lang})")
        self.exe, self.lang = exe, lang
        version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        self.how = (f"{version} (LSTM engine, {lang}), --psm 7 (one text line), one process over a list file of "
                    "all the images")

    def read(self, images: Sequence[np.ndarray]) -> list[str]:
        if not len(images):
            return []
        with tempfile.TemporaryDirectory(prefix="ocr-robust-tess-") as tmp:
            paths = []
            for k, im in enumerate(images):
                p = Path(tmp) / f"{k:06d}.png"
                cv2.imwrite(str(p), im)
                paths.append(str(p))
            lst = Path(tmp) / "list.txt"
            lst.write_text("\n".join(paths) + "\n", encoding="utf-8")
            r = subprocess.run([self.exe, str(lst), "stdout", "--psm", "7", "-l", self.lang],
                               capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"tesseract failed: {r.stderr.strip()[:300]}")
        parts = r.stdout.split("\f")  # one page (image) per form feed
        if len(parts) == len(images) + 1 and not parts[-1].strip():
            parts = parts[:-1]
        if len(parts) != len(images):
            raise RuntimeError(f"tesseract returned {len(parts)} pages for {len(images)} images")
        return [" ".join(p.split()) for p in parts]


class PPOCREngine:
    kind = "anchor"
    name = "pp-ocrv4"

    def __init__(self):
        if importlib.util.find_spec("rapidocr_onnxruntime") is None:
            raise RuntimeError("rapidocr-onnxruntime is not installed (make anchors)")
        from rapidocr_onnxruntime import RapidOCR

        self.ocr = RapidOCR()
        self.how = ("PP-OCRv4 recognition (ch_PP-OCRv4_rec ONNX model from rapidocr-onnxruntime 1.4.4, ONNX Runtime), "
                    "no detection or angle classifier, its own batching (6 lines sorted by aspect ratio)")

    def read(self, images: Sequence[np.ndarray]) -> list[str]:
        if not len(images):
            return []
        res, _ = self.ocr.text_rec([cv2.cvtColor(im, cv2.COLOR_GRAY2BGR) for im in images])
        return [t for t, _ in res]


class PPOCRv6Engine:
    kind = "anchor"
    name = "pp-ocrv6"

    def __init__(self):
        if importlib.util.find_spec("rapidocr") is None:
            raise RuntimeError("rapidocr 3.10.0 is not installed (make anchors)")
        import logging

        from rapidocr import RapidOCR

        self.ocr = RapidOCR(params={"Global.log_level": "warning"})
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        spec = importlib.util.find_spec("rapidocr")
        assert spec is not None and spec.origin is not None  # imported above: a regular package
        model = Path(spec.origin).parent / "models" / "PP-OCRv6_rec_small.onnx"
        if not model.is_file():
            raise RuntimeError(f"rapidocr has no {model.name} (expected inside the rapidocr==3.10.0 wheel)")
        self.how = ("PP-OCRv6 small recognition (PP-OCRv6_rec_small.onnx inside rapidocr 3.10.0, ONNX Runtime), "
                    "engine(img, use_det=False, use_cls=False, use_rec=True), one line per call")

    def read(self, images: Sequence[np.ndarray]) -> list[str]:
        out = []
        for im in images:
            r = self.ocr(cv2.cvtColor(im, cv2.COLOR_GRAY2BGR), use_det=False, use_cls=False, use_rec=True)
            txts = getattr(r, "txts", None)  # recognition-only output (rapidocr types it as a union of outputs)
            out.append(" ".join(txts) if txts else "")
        return out


def anchor(name: str) -> Engine:
    """An anchor engine by name; ``RuntimeError`` says what is missing when it is not installed."""
    if name == "tesseract":
        return TesseractEngine()
    if name in ("ppocr", "pp-ocrv4", "ppocrv4", "paddleocr"):
        return PPOCREngine()
    if name in ("ppocrv6", "pp-ocrv6"):
        return PPOCRv6Engine()
    raise ValueError(f"unknown engine {name!r}; anchors: {', '.join(ANCHORS)}")
