"""Export a training run for an OCR service.

Formats: ONNX (dynamic batch and width, opset ``OPSET``), TorchScript, and optionally an
int8 ONNX model for ONNX Runtime (``--quantize int8``: static QDQ quantisation of the
convolutions, calibrated on real training lines; ``int8-dynamic``: the older dynamic
quantisation of the matrix products only); always the weights as safetensors
and ``model.json`` (charset, input height, preprocessing, decoder settings, training mode,
version, the run's figures). A parity check against the PyTorch model runs at export time
for every format and fails the export loudly (``ExportError``) if it does not hold:

- fp32 formats (ONNX, TorchScript): every log-probability within ``PARITY_ATOL +
  PARITY_RTOL * |PyTorch's|`` (the ``numpy.allclose`` form) of PyTorch's, widened by PyTorch's
  own float32 rounding error there (its distance from a float64 forward pass), and the same
  decoded text, on line-like random inputs of several widths and on real sample lines;
- int8: decoded text identical on at least ``INT8_MIN_AGREEMENT`` of the real sample lines (int8
  changes logits by design, so the text is what is checked; the logit difference is
  reported), and word accuracy on those lines (their labels) at most ``INT8_MAX_DROP`` below
  PyTorch's (or ``INT8_NOISE_WORDS`` words, on a sample of fewer than about 700 words). Its
  accuracy on a whole suite is measured by ``ocr-robust bench --engine int8``.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .decoding import greedy_ids
from .errors import ExportError
from .images import (
    MAX_WIDTH,
    PIXEL_MAX,
    STRIDE,
    WIDTH_MULTIPLE,
    output_frames,
    pad_batch,
    resize_to_height,
)
from .runs import (
    INT8_FILE,
    META_FILE,
    ONNX_FILE,
    TORCHSCRIPT_FILE,
    WEIGHTS_FILE,
    load_run,
    load_torch_model,
    model_kind,
    read_meta,
    read_metrics,
    save_weights,
)

__all__ = ["OPSET", "PARITY_ATOL", "PARITY_RTOL", "INT8_MIN_AGREEMENT", "INT8_MAX_DROP", "FORMATS", "QUANTIZE",
           "CALIBRATION_LINES", "export", "quantize_int8", "read_sample_lines"]

OPSET = 17
# Allowed |logprob difference| between an fp32 export and PyTorch: PARITY_ATOL + PARITY_RTOL * |logprob|.
# The relative part is for unlikely classes: float32 kernels that sum in another order drift
# most there (1.5e-3 at a log-prob of -9 on a 340-step line, text identical), where it changes
# no probability that decoding uses (2.8e-4 at most on the demo model).
# A deep model's float32 reference is itself off by more than that: crnn-large's PyTorch
# log-probs were 5.8e-3 from a float64 pass on a 16-line batch of width 900, where ONNX Runtime
# was within 7.1e-4. So each element's tolerance also gets PyTorch's own |float32 - float64|:
# an export passes where it is within tolerance of PyTorch or of the exact result.
PARITY_ATOL = 1e-3
PARITY_RTOL = 1e-3
INT8_MIN_AGREEMENT = 0.90  # share of real sample lines int8 must read exactly as PyTorch does
INT8_MAX_DROP = 0.003  # word accuracy (0..1) int8 may lose against PyTorch on the labelled sample lines
INT8_NOISE_WORDS = 2  # ... or this many words, on a sample too small for 0.3 points to be a word
FORMATS = ("onnx", "torchscript", "all")
QUANTIZE = ("int8", "int8-dynamic")
CALIBRATION_LINES = 256  # real lines whose activations set the static int8 scales
# Static int8 quantises the convolutions (the FLOPs), and their ReLUs and max-pools so that the
# stack stays int8 between them: per tensor, activations uint8 and weights int8. Measured on
# pretrained/latin (benchmarks/RESULTS.md, issue 23): the fastest setting and within 0.05 points
# of fp32; per-channel weights, or quantising the classifier's matrix product too, were slower.
STATIC_OPS = ("Conv", "Relu", "MaxPool")


def read_sample_lines(sources, cfg: dict, n: int, height: int,
                      offset: float = 0.0) -> tuple[list[np.ndarray], list[str]]:
    """Up to ``n`` real line images and their texts from the first of ``sources`` (line
    stores; the first one is the user's and must open) that opens: every k-th line, from
    ``offset`` x k (another ``offset``: other lines of the same store). They are prepared as
    reading prepares them (the run's crop normalisation, then the resize), so the check
    compares the formats on the inputs they will get."""
    from .data.crop import normalise_crops
    from .data.store import open_store, read_grey

    for k, src in enumerate(sources):
        if not src:
            continue
        try:
            store = open_store(src)
        except Exception:
            if k == 0:
                raise
            continue
        step = max(1, len(store) // n)
        idx = list(range(min(int(offset * step), step - 1), len(store), step))[:n]
        images = normalise_crops([read_grey(store, i) for i in idx], cfg.get("crop", "none"))
        return [resize_to_height(im, height, MAX_WIDTH) for im in images], [store.text(i) for i in idx]
    return [], []


def _run_figures(run: Path) -> dict:
    """The run's own figures for model.json: last and best validation, and a benchmark
    table if one was written beside the run (``bench.json``)."""
    out: dict = {}
    history = read_metrics(run)
    if history:
        out["validation_last"] = history[-1]
        out["validation_best_word_acc"] = max(h.get("val_word_acc", 0.0) for h in history)
    bench = run / "bench.json"
    if bench.is_file():
        out["benchmark"] = json.loads(bench.read_text(encoding="utf-8"))
    return out


def export(run: str | Path, out: str | Path, fmt: str = "onnx", quantize: str | None = None,
           sample: str | None = None, sample_lines: int = 128, sample_widths=(24, 160, 640),
           calibration: str | None = None) -> dict:
    """Write the export folder; returns {"out", "files", "parity": {format: report}}.
    ``calibration``: the line store static int8 is calibrated on (default: the run's
    training data, else ``sample``), on other lines than the check's."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if quantize not in (None, *QUANTIZE):
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    run = Path(run)
    if model_kind(run) == "export":  # re-export a shipped model (other formats, int8)
        model, charset, desc = load_torch_model(run, "cpu")
        src_meta, _ = read_meta(run)
        cfg = {"mode": desc["mode"], "crop": desc["crop"]}
        figures = src_meta.get("figures", {})
    else:
        model, charset, cfg = load_run(run, "best", "cpu")
        figures = _run_figures(run)
    model.eval()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    height = model.cfg.height
    lines, texts = read_sample_lines((sample, cfg.get("val"), cfg.get("data")), cfg, sample_lines, height)
    if quantize and not lines:
        raise ExportError("the int8 parity check needs real line images: give --sample LINE_STORE "
                          "(the run's own data could not be opened)")
    calib: list[np.ndarray] = []
    if quantize == "int8":
        calib, _ = read_sample_lines((calibration, cfg.get("data"), sample, cfg.get("val")), cfg, CALIBRATION_LINES,
                                 height, offset=0.5)
    order = sorted(range(len(lines)), key=lambda i: lines[i].shape[1])  # as _parity_inputs batches them
    texts = [texts[i] for i in order]
    inputs, frames = _parity_inputs(height, sample_widths, lines)
    n_random = len(sample_widths)  # the first inputs are random line-like noise, the rest real lines
    with torch.no_grad():
        reference = [model(x).numpy() for x in inputs]
        exact = copy.deepcopy(model).double()
        slack = [np.abs(r - exact(x.double()).numpy()).astype(np.float32) for x, r in zip(inputs, reference)]
        del exact

    formats: dict[str, str] = {}
    parity: dict[str, dict] = {}
    if fmt in ("onnx", "all") or quantize:
        _export_onnx(model, out / ONNX_FILE, height)
        formats["onnx"] = ONNX_FILE
        parity["onnx"] = _check(_ort_runner(out / ONNX_FILE), inputs, reference, "ONNX", slack=slack, frames=frames)
    if fmt in ("torchscript", "all"):
        with warnings.catch_warnings():  # deprecated in favour of torch.export, still what services load
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.script(model)
            scripted.save(str(out / TORCHSCRIPT_FILE))
            loaded = torch.jit.load(str(out / TORCHSCRIPT_FILE), map_location="cpu")
        formats["torchscript"] = TORCHSCRIPT_FILE
        parity["torchscript"] = _check(_torch_runner(loaded), inputs, reference, "TorchScript", slack=slack,
                                        frames=frames)
    int8: dict = {}
    if quantize:
        def quantised(per_channel: bool) -> tuple[dict, dict]:
            done = quantize_int8(out / ONNX_FILE, out / INT8_FILE, calib if quantize == "int8" else None,
                                 per_channel=per_channel)
            runner = _ort_runner(out / INT8_FILE)
            checked = _check(runner, inputs[n_random:], reference[n_random:], "ONNX int8", int8=True,
                             frames=frames[n_random:])
            checked.update(_check_accuracy(runner, inputs[n_random:], reference[n_random:], frames[n_random:],
                                           texts, charset))
            return done, checked

        try:  # per-tensor weight scales first: as accurate and faster where they hold (int8_settings.py)
            int8, parity["onnx_int8"] = quantised(False)
        except ExportError as e:
            if quantize != "int8":
                raise
            # depthwise filters' ranges differ by channel, so one scale per tensor can fail them
            try:
                int8, parity["onnx_int8"] = quantised(True)
            except ExportError as e2:
                raise ExportError(f"{e}; with per-channel weight scales too: {e2}") from None
            int8["per_channel_because"] = str(e)
        formats["onnx_int8"] = INT8_FILE
    save_weights(model, out / WEIGHTS_FILE)
    meta = {
        "format": "ocr-robust-export", "version": __version__, "formats": formats, "onnx_opset": OPSET,
        "onnx": formats.get("onnx"), "weights": WEIGHTS_FILE, "charset": charset.chars, "charset_name": charset.name,
        "blank": 0,
        "input": {"layout": "N x 1 x H x W", "height": height, "channels": 1, "dtype": "float32",
                  "pixel_range": [0.0, PIXEL_MAX], "ink": "dark on light",
                  "resize": "to height keeping aspect ratio (INTER_AREA down, INTER_LINEAR up)",
                  "pad": f"right, with the line's background, to a multiple of {WIDTH_MULTIPLE}",
                  "normalisation": "inside the model: (x / 255 - 0.5) / 0.5",
                  "crop": cfg.get("crop", "none")},
        "output": {"layout": "T x N x C log-probabilities", "frames": f"T = W // {STRIDE}",
                   "classes": charset.num_classes},
        "decoder": {"method": "greedy", "beam": 8},
        "model": asdict(model.cfg), "training_mode": cfg.get("mode", "natural"),
        "figures": figures, "parity": parity,
    }
    if int8:
        meta["int8"] = int8
    (out / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return {"out": str(out), "files": sorted(p.name for p in out.iterdir()), "parity": parity}


def _export_onnx(model: torch.nn.Module, path: Path, height: int) -> None:
    dummy = torch.full((2, 1, height, 64), 255.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), str(path), input_names=["images"], output_names=["logprobs"],
                          dynamic_axes={"images": {0: "batch", 3: "width"}, "logprobs": {0: "frames", 1: "batch"}},
                          opset_version=OPSET, dynamo=False)


def quantize_int8(src: Path, dst: Path, calibration: list[np.ndarray] | None = None, per_channel: bool = False,
                  ops: tuple[str, ...] = STATIC_OPS) -> dict:
    """Quantise the ONNX model ``src`` to int8 at ``dst``; returns what was done (model.json's
    ``int8``). With ``calibration`` lines: static QDQ quantisation of ``ops`` (default the
    convolutions, which carry the FLOPs, with their ReLUs and max-pools; uint8 activations
    with MinMax ranges over the lines, int8 weights per tensor or ``per_channel``), after ONNX Runtime's shape inference
    and fusion pre-processing. Without: dynamic quantisation of the matrix products and the
    LSTM (the convolutions stay fp32)."""
    import logging
    import tempfile

    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer advises "pre-processing" on the root logger, every time
    try:
        if calibration is None:
            quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul", "Gemm", "LSTM"],
                             weight_type=QuantType.QInt8)
            return {"method": "dynamic", "ops": ["MatMul", "Gemm", "LSTM"]}
        if not calibration:
            raise ExportError("static int8 needs calibration lines: give --calibration LINE_STORE "
                              "(the run's own training data could not be opened)")
        class Lines(CalibrationDataReader):  # the calibration lines in batches of similar width
            def __init__(self, height: int):
                inputs, _ = _parity_inputs(height, (), calibration, 32)  # type: ignore[arg-type]
                self._it = iter([{"images": x.numpy()} for x in inputs])

            def get_next(self):
                return next(self._it, None)

        with tempfile.TemporaryDirectory() as tmp:
            pre = Path(tmp) / "pre.onnx"
            quant_pre_process(str(src), str(pre))
            quantize_static(str(pre), str(dst), Lines(_input_height(src)), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=list(ops), per_channel=per_channel,
                            calibrate_method=CalibrationMethod.MinMax)
        return {"method": "static QDQ", "ops": list(ops), "per_channel": per_channel, "activations": "uint8",
                "weights": "int8", "calibration": "MinMax", "calibration_lines": len(calibration)}
    finally:
        root.setLevel(level)


def _input_height(path: Path) -> int:
    import onnx

    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return int(dims[2].dim_value)


def _check_accuracy(runner, inputs, reference, frames, texts: list[str], charset) -> dict:
    """Word accuracy of PyTorch and of ``runner`` on the labelled sample lines; raises
    ``ExportError`` when the runner's is more than ``INT8_MAX_DROP`` lower."""
    from .evaluation.metrics import Scores

    ref_text, got_text = [], []
    for x, ref, lens in zip(inputs, reference, frames):
        got = runner(x)
        for j, n in enumerate(lens):
            ref_text.append(charset.decode(greedy_ids(ref[:n, j])))
            got_text.append(charset.decode(greedy_ids(got[:n, j])))
    if not texts or not any(t.strip() for t in texts):
        return {}
    ref_s, got_s = Scores().update(ref_text, texts), Scores().update(got_text, texts)
    lost = ref_s.words_matched - got_s.words_matched
    report = {"word_acc_pytorch": ref_s.word_acc, "word_acc": got_s.word_acc, "max_drop": INT8_MAX_DROP,
              "lines": len(texts), "words": ref_s.words, "words_lost": lost}
    if lost > max(INT8_MAX_DROP * ref_s.words, INT8_NOISE_WORDS):
        raise ExportError(f"ONNX int8 accuracy check failed: word accuracy {100 * got_s.word_acc:.2f}% on "
                          f"{len(texts)} sample lines against PyTorch's {100 * ref_s.word_acc:.2f}%, {lost} words "
                          f"fewer, more than {100 * INT8_MAX_DROP:.1f} points")
    return report


def _parity_inputs(height: int, widths, lines: list[np.ndarray], batch: int = 16) -> tuple[list[torch.Tensor],
                                                                                          list[list[int]]]:
    """Random line-like batches of the given widths, then the real lines in batches of
    ``batch`` similar widths (as reading batches them); with each line's own output frames."""
    g = torch.Generator().manual_seed(0)
    inputs = [255.0 - 255.0 * (torch.rand(3, 1, height, w, generator=g) > 0.85).float() for w in widths]
    frames = [[output_frames(w)] * 3 for w in widths]
    ordered = sorted(lines, key=lambda im: im.shape[1])
    for k in range(0, len(ordered), batch):
        x, w = pad_batch(ordered[k : k + batch])
        inputs.append(x)
        frames.append([output_frames(int(v)) for v in w])
    return inputs, frames


def _ort_runner(path: Path):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"images": x.numpy()})[0]


def _torch_runner(module):
    def run(x):
        with torch.no_grad():
            return module(x).numpy()
    return run


def _check(runner, inputs, reference, name: str, int8: bool = False, slack=None, frames=None) -> dict:
    """Compare a runner's log-probs and greedy text with PyTorch's on every input (the text of
    each line over its own ``frames``, as reading decodes it, not its padding). ``slack``:
    per input, PyTorch's own |float32 - float64| error, added to the tolerance."""
    worst, outside, same, total = 0.0, 0, 0, 0
    slack = slack if slack is not None else [0.0] * len(reference)
    frames = frames if frames is not None else [[r.shape[0]] * r.shape[1] for r in reference]
    for x, ref, own, lens in zip(inputs, reference, slack, frames):
        got = runner(x)
        if got.shape != ref.shape:
            raise ExportError(f"{name} output shape {got.shape} != PyTorch {ref.shape} at width {x.shape[-1]}")
        diff = np.abs(got - ref)
        worst = max(worst, float(diff.max()))
        outside += int((diff > PARITY_ATOL + PARITY_RTOL * np.abs(ref) + own).sum())
        for j in range(ref.shape[1]):
            same += greedy_ids(got[: lens[j], j]) == greedy_ids(ref[: lens[j], j])
            total += 1
    agreement = same / max(1, total)
    report = {"max_abs_diff": worst, "same_text": f"{same}/{total}", "agreement": agreement,
              "pytorch_fp32_error": max((float(np.max(o)) for o in slack), default=0.0)}
    if int8:
        report["min_agreement"] = INT8_MIN_AGREEMENT
        if agreement < INT8_MIN_AGREEMENT:
            raise ExportError(f"{name} parity failed: decoded text identical on {same}/{total} inputs "
                              f"({100 * agreement:.1f}%), needs {100 * INT8_MIN_AGREEMENT:.0f}%")
        return report
    report["tolerance"] = f"{PARITY_ATOL:g} + {PARITY_RTOL:g}*|logprob| + |PyTorch fp32 - fp64|"
    if outside or same != total:
        raise ExportError(f"{name} parity failed: {outside} log-probabilities differ by more than "
                          f"{report['tolerance']} (max |diff| {worst:.2e}), "
                          f"decoded text identical on {same}/{total} inputs")
    return report
