"""``ocr-robust serve``: a FastAPI OCR service around one exported (or trained) model.

The model is loaded once, at start-up. Line images from concurrent requests are batched
together (micro-batching: the first waiting request opens a batch, which closes after
``max_wait_ms`` or at ``max_batch_lines`` lines) and read by one inference thread, so that
throughput grows with load while a lone request waits at most a few milliseconds.

Endpoints: ``POST /v1/recognize`` (multipart, one or more ``images``: line images),
``POST /v1/pdf`` (multipart ``file``: a PDF; text per page and line, with boxes),
``GET /healthz``, ``GET /v1/model`` (the export's model.json). Limits on body size, image
pixels, images per request, PDF pages and request time; a bad request gets a 4xx with a
JSON body ``{"error": "..."}``, never a 500. The OpenAPI schema is at ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from . import __version__
from .data.store import image_size
from .errors import InputError
from .images import decode_grey
from .pdf.read import DPI

__all__ = ["ENV_SETTINGS", "Limits", "Settings", "MicroBatcher", "BodyLimit", "create_app", "app_from_env", "serve"]

ENV_SETTINGS = "OCR_ROBUST_SERVE"  # JSON settings for worker processes (uvicorn --workers)


@dataclass
class Limits:
    max_body_bytes: int = 20 * 1024 * 1024
    max_images: int = 256  # line images per request
    max_image_pixels: int = 4_000_000  # per line image
    max_pdf_pages: int = 50
    max_page_pixels: int = 25_000_000  # a PDF page's raster at the requested dpi
    timeout_s: float = 60.0  # whole request


@dataclass
class Settings:
    model: str
    engine: str = "auto"
    threads: int | None = None  # inference threads (default: the library's)
    max_batch_lines: int = 64
    max_wait_ms: float = 5.0
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        d = json.loads(text)
        d["limits"] = Limits(**d.get("limits", {}))
        return cls(**d)


class _Job:
    __slots__ = ("images", "future")

    def __init__(self, images: list[np.ndarray], future: asyncio.Future):
        self.images, self.future = images, future


class MicroBatcher:
    """Collects line images from concurrent requests into batches for one inference thread."""

    def __init__(self, recognizer, max_lines: int = 64, max_wait_s: float = 0.005):
        self.recognizer, self.max_lines, self.max_wait_s = recognizer, max_lines, max_wait_s
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="ocr-infer")
        self.batches = 0
        self.lines = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=True)

    async def read(self, images: list[np.ndarray]) -> tuple[list, dict]:
        """The readings of ``images`` and the batch that read them (id, requests, lines)."""
        if not images:
            return [], {"id": None, "requests": 0, "lines": 0}
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put(_Job(images, fut))
        return await fut

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            n = len(jobs[0].images)
            deadline = loop.time() + self.max_wait_s
            while n < self.max_lines:
                wait = deadline - loop.time()
                try:
                    job = self.queue.get_nowait() if wait <= 0 else await asyncio.wait_for(self.queue.get(), wait)
                except (TimeoutError, asyncio.QueueEmpty):
                    break
                jobs.append(job)
                n += len(job.images)
            jobs = [j for j in jobs if not j.future.done()]  # the client went away or timed out
            if not jobs:
                continue
            images = [im for j in jobs for im in j.images]
            self.batches += 1
            info = {"id": self.batches, "requests": len(jobs), "lines": len(images)}
            try:
                reads = await loop.run_in_executor(self.executor, self.recognizer.recognize, images)
            except Exception as e:  # an inference failure fails this batch's requests, not the service
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
                continue
            self.lines += len(images)
            k = 0
            for j in jobs:
                if not j.future.done():
                    j.future.set_result((reads[k : k + len(j.images)], info))
                k += len(j.images)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class BodyLimit:
    """Pure ASGI middleware: a POST must declare its length, and not more than the limit
    (413 before the body is read; 411 without Content-Length)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            if length is None:
                return await _error(411, "Content-Length is required")(scope, receive, send)
            try:
                n = int(length)
            except ValueError:
                return await _error(400, "bad Content-Length")(scope, receive, send)
            if n > self.max_bytes:
                too_big = _error(413, f"body of {n} bytes exceeds the limit of {self.max_bytes}")
                return await too_big(scope, receive, send)
        await self.app(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    from .inference import Recognizer
    from .runs import model_kind, read_meta

    lim = settings.limits
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        rec = Recognizer(settings.model, engine=settings.engine, threads=settings.threads)
        if model_kind(settings.model) == "export":
            meta, _ = read_meta(settings.model)
        else:
            meta = {"format": "ocr-robust-run", "version": __version__, "charset": rec.charset.chars,
                    "input": {"height": rec.height}}
        batcher = MicroBatcher(rec, settings.max_batch_lines, settings.max_wait_ms / 1000)
        batcher.start()
        state.update(recognizer=rec, meta=meta, batcher=batcher, started=time.time())
        yield
        await batcher.stop()

    app = FastAPI(title="ocr-robust", version=__version__, lifespan=lifespan,
                  description="Robust OCR of text lines and PDFs with an ocr-robust model.")
    app.add_middleware(BodyLimit, max_bytes=lim.max_body_bytes)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        parts = ["/".join(str(x) for x in e.get("loc", ())) + ": " + e.get("msg", "") for e in exc.errors()]
        return _error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError):
        return _error(400, str(exc))

    async def within_time(coro):
        try:
            return await asyncio.wait_for(coro, lim.timeout_s)
        except TimeoutError:
            raise HTTPException(504, f"request took longer than {lim.timeout_s:g} s") from None

    async def read_upload(f: UploadFile) -> bytes:
        data = await f.read()
        if not data:
            raise HTTPException(400, f"{f.filename or 'upload'}: empty file")
        return data

    def decode_line(data: bytes, name: str) -> np.ndarray:
        size = image_size(data)
        if size is not None and size[0] * size[1] > lim.max_image_pixels:
            raise HTTPException(413, f"{name}: image of {size[0]}x{size[1]} pixels exceeds the limit of "
                                     f"{lim.max_image_pixels} pixels")
        img = decode_grey(data, name)  # InputError -> 400
        if img.shape[0] * img.shape[1] > lim.max_image_pixels:
            raise HTTPException(413, f"{name}: image of {img.shape[1]}x{img.shape[0]} pixels exceeds the limit")
        if min(img.shape) < 2:
            raise HTTPException(400, f"{name}: image is too small ({img.shape[1]}x{img.shape[0]})")
        return img

    @app.get("/healthz")
    async def healthz() -> dict:
        b = state["batcher"]
        return {"status": "ok", "engine": state["recognizer"].engine,
                "uptime_s": round(time.time() - state["started"], 1),
                "batches": b.batches, "lines": b.lines, "queued": b.queue.qsize()}

    @app.get("/v1/model")
    async def model_info() -> dict:
        return state["meta"]

    @app.post("/v1/recognize")
    async def recognize(images: list[UploadFile] = File(..., description="line images (PNG, JPEG, TIFF...)")) -> dict:
        """Read one or more line images; one result per image, in order."""
        if len(images) > lim.max_images:
            raise HTTPException(413, f"{len(images)} images exceed the limit of {lim.max_images} per request")

        async def work():
            decoded = []
            for k, f in enumerate(images):
                name = f.filename or f"image {k + 1}"
                decoded.append(await run_in_threadpool(decode_line, await read_upload(f), name))
            reads, batch = await state["batcher"].read(decoded)
            return {"lines": [{"name": f.filename, "text": d.text, "confidence": round(d.confidence, 4)}
                              for f, d in zip(images, reads)], "batch": batch}

        return await within_time(work())

    @app.post("/v1/pdf")
    async def pdf(file: UploadFile = File(..., description="a PDF document"),
                  dpi: int = Query(DPI, ge=50, le=300, description="raster resolution of the pages")) -> dict:
        """Read every page of a PDF: per page its lines with text, confidence and box (PDF
        points); for pages with a text layer also the layer's own text (``layer_text``)."""
        from .pdf.read import fill, open_pdf, pdf_page_lines

        async def work():
            data = await read_upload(file)
            name = file.filename or "upload.pdf"
            doc = await run_in_threadpool(open_pdf, data, name)  # InputError -> 400
            try:
                if doc.page_count > lim.max_pdf_pages:
                    raise HTTPException(413, f"{name}: {doc.page_count} pages exceed the limit of {lim.max_pdf_pages}")
                pages = []
                for pno in range(doc.page_count):
                    reading, crops = await run_in_threadpool(pdf_page_lines, doc, pno, dpi, lim.max_page_pixels)
                    reads, _ = await state["batcher"].read(crops)
                    pages.append(fill(reading, reads).as_dict())
            finally:
                doc.close()
            return {"file": name, "pages": pages}

        return await within_time(work())

    return app


def app_from_env() -> FastAPI:
    """The app for uvicorn worker processes (``--workers N``), configured by the environment."""
    return create_app(Settings.from_json(os.environ[ENV_SETTINGS]))


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    import uvicorn

    if workers > 1:
        os.environ[ENV_SETTINGS] = json.dumps(asdict(settings))
        uvicorn.run("ocr_robust.service:app_from_env", factory=True, host=host, port=port, workers=workers,
                    timeout_graceful_shutdown=30, log_level="info")
    else:
        uvicorn.run(create_app(settings), host=host, port=port, timeout_graceful_shutdown=30, log_level="info")
