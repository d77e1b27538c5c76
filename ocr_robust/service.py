"""``ocr-robust serve``: a FastAPI OCR service around one exported (or trained) model.

The model is loaded once, at start-up. Line images from concurrent requests are batched
together (micro-batching: the first waiting request opens a batch, which closes after
``max_wait_ms`` or at ``max_batch_lines`` lines) and read by ``streams`` inference threads,
so that throughput grows with load while a lone request waits at most a few milliseconds.
With ONNX Runtime the default is one stream per core, each batch read on one thread: on a
small CPU two single-threaded batches at once read more lines per second than one batch on
two threads, and they leave the cores to the HTTP work between batches.

Endpoints: ``POST /v1/recognize`` (multipart, one or more ``images``: line images),
``POST /v1/pdf`` (multipart ``file``: a PDF; text per page and line, with boxes),
``GET /healthz``, ``GET /v1/model`` (the export's model.json). Limits (:class:`Limits`) on
body size and arrival time, image pixels (read from each image's header before decoding),
images and pixels per request, requests at once, PDF pages, each page's MuPDF work (in page
worker processes, killed at a deadline) and request time; every error, the framework's own
included, is a 4xx with a JSON body ``{"error": "..."}``, never a 500. The OpenAPI schema is
at ``/openapi.json``; ``/docs`` is Swagger UI, which loads its script from a CDN.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import __version__
from .errors import InputError, TooLarge
from .images import checked_size, decode_grey
from .pdf.read import DPI, PageReader
from .pdf.workers import PAGE_MEMORY_MB, PAGE_TIMEOUT_S, PageWorkers

__all__ = ["ENV_SETTINGS", "Limits", "Settings", "MicroBatcher", "ErrorBody", "ERROR_RESPONSES", "BodyLimit",
           "HeaderTimeoutProtocol", "create_app", "app_from_env", "serve"]

ENV_SETTINGS = "OCR_ROBUST_SERVE"  # JSON settings for worker processes (uvicorn --workers)


@dataclass
class Limits:
    """What one request may ask of the service; ``ocr-robust serve`` has a flag for each.

    Memory has a bound that holds under any concurrency: at most ``max_active`` requests hold
    their uploads in memory at once (``max_queued`` more wait their turn, their uploads spooled;
    beyond that 429 at once), each at most ``max_body_bytes``; the line images decoded and
    waiting to be read, of all requests together, take at most ``max_active_pixels`` (one byte
    a pixel; a request's share is known from its images' headers before any is decoded), plus
    one image being decoded (``max_image_pixels``, up to 8 bytes a pixel). A request's turn
    ends when its images are decoded and its uploads dropped, so that many small requests'
    lines can wait in the micro-batcher together; PDF page work runs in
    ``page_workers`` processes of at most ``page_memory_mb`` each. Bodies still arriving are
    streamed to the multipart parser, which spools files to disk, and are counted as they
    come: a body past ``max_body_bytes`` is cut off with 413 whatever its headers said."""

    max_body_bytes: int = 20 * 1024 * 1024
    max_images: int = 256  # line images per request
    max_image_pixels: int = 4_000_000  # per line image
    max_request_pixels: int = 16_000_000  # all the line images of one request together
    max_pdf_pages: int = 50
    max_page_pixels: int = 25_000_000  # a PDF page's raster at the requested dpi
    max_active: int = 4  # requests holding their uploads in memory (reading, checking, decoding them) at once
    max_active_pixels: int = 64_000_000  # decoded line images of all requests together, waiting or being read
    max_queued: int = 16  # requests waiting for their turn (their work's time runs); more get 429
    timeout_s: float = 60.0  # a request's work, once its body has arrived: then 504
    body_timeout_s: float = 10.0  # receiving the body (20 MB at 2 MB/s): a slower or stalled upload gets 408
    header_timeout_s: float = 10.0  # a connection that has not sent a request's headers by then is closed
    page_timeout_s: float = PAGE_TIMEOUT_S  # one PDF page's MuPDF work (pdf/workers.py): then the page fails
    page_workers: int = 2  # processes doing PDF page work
    page_memory_mb: int = PAGE_MEMORY_MB  # what each may allocate (beyond its start); past it the page fails

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                if f.name == "max_queued" and v == 0:
                    continue
                name = f.name.removesuffix("_s").replace("_", " ")
                raise ValueError(f"{name}: expected a positive number, got {v!r}")
        if self.max_active_pixels < self.max_request_pixels:
            raise ValueError(f"max active pixels ({self.max_active_pixels}) must be at least max request pixels "
                             f"({self.max_request_pixels}): a request at the limit could never be read")


@dataclass
class Settings:
    model: str
    engine: str = "auto"
    threads: int | None = None  # ONNX Runtime (or PyTorch) threads per batch (default: the library's)
    streams: int = 1  # batches read at once, each by its own inference thread
    max_batch_lines: int = 256
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
    """Collects line images from concurrent requests into batches, and reads up to
    ``streams`` batches at once, each on an inference thread of its own (the recognizer must
    allow concurrent calls: an ONNX Runtime session does; PyTorch takes ``streams=1``). While
    every stream is busy, waiting requests gather into the next batch."""

    def __init__(self, recognizer, max_lines: int = 64, max_wait_s: float = 0.005, streams: int = 1):
        if streams < 1:
            raise ValueError(f"streams: expected a positive number, got {streams!r}")
        self.recognizer, self.max_lines, self.max_wait_s, self.streams = recognizer, max_lines, max_wait_s, streams
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(streams, thread_name_prefix="ocr-infer")
        self.batches = 0
        self.lines = 0
        self._task: asyncio.Task | None = None
        self._reading: set[asyncio.Task] = set()

    def start(self) -> None:
        self._free = asyncio.Semaphore(self.streams)  # streams not reading a batch
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for t in list(self._reading):
            t.cancel()
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
            await self._free.acquire()  # a batch opens only when a stream can read it
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
                self._free.release()
                continue
            self.batches += 1
            task = loop.create_task(self._read(jobs, self.batches))
            self._reading.add(task)
            task.add_done_callback(self._reading.discard)

    async def _read(self, jobs: list[_Job], batch_id: int) -> None:
        """One batch on one stream; the stream is free again when it is read."""
        images = [im for j in jobs for im in j.images]
        info = {"id": batch_id, "requests": len(jobs), "lines": len(images)}
        try:
            reads = await asyncio.get_running_loop().run_in_executor(self.executor, self.recognizer.recognize, images)
        except Exception as e:  # an inference failure fails this batch's requests, not the service
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(e)
            return
        finally:
            self._free.release()
        self.lines += len(images)
        k = 0
        for j in jobs:
            if not j.future.done():
                j.future.set_result((reads[k : k + len(j.images)], info))
            k += len(j.images)


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class ErrorBody(BaseModel):
    """Every error the service returns, whatever its status."""

    error: str


_ERRORS = {400: "bad input: an unreadable image or PDF, a malformed request", 404: "no such path",
           405: "method not allowed", 408: "the body did not arrive within the body timeout",
           411: "a POST without Content-Length or chunked encoding", 413: "over a limit (body, images, pixels, pages)",
           422: "a missing or invalid field", 429: "busy: the most requests in progress; retry after a second",
           504: "the request's work took longer than the timeout"}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {k: {"model": ErrorBody, "description": v}
                                                    for k, v in _ERRORS.items()}


class BodyLimit:
    """Pure ASGI middleware for request bodies: a POST declares its length or is chunked (else
    411), a declared length over the limit gets 413 before anything is read, and the bytes that
    actually arrive are counted (413 when they pass the limit, whatever the headers said) and
    timed (408 when the whole body has not arrived within ``timeout_s``). The errors are
    raised as HTTPExceptions from ``receive``, so the app answers them in its one error shape."""

    def __init__(self, app, max_bytes: int, timeout_s: float = 30.0):
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        close = {"connection": "close"}
        if length is None and not chunked:
            return await _error(411, "Content-Length is required", close)(scope, receive, send)
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return await _error(400, "bad Content-Length", close)(scope, receive, send)
            if n > self.max_bytes:
                too_big = _error(413, f"body of {n} bytes exceeds the limit of {self.max_bytes}", close)
                return await too_big(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        got = 0

        async def counted():
            nonlocal got
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise TimeoutError
                msg = await asyncio.wait_for(receive(), left)
            except TimeoutError:
                raise HTTPException(408, f"the request body did not arrive within {self.timeout_s:g} s",
                                    headers=close) from None
            if msg["type"] == "http.request":
                got += len(msg.get("body", b""))
                if got > self.max_bytes:
                    raise HTTPException(413, f"body exceeds the limit of {self.max_bytes} bytes", headers=close)
            return msg

        await self.app(scope, counted, send)


class _Budget:
    """A count (pixels) that requests take a share of and give back, granted in arrival order:
    a request that does not fit waits, and so does every later one."""

    def __init__(self, total: int):
        self.total, self.used = total, 0
        self._waiting: deque[tuple[int, asyncio.Future]] = deque()

    async def take(self, n: int) -> None:
        if not self._waiting and self.used + n <= self.total:
            self.used += n
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiting.append((n, fut))
        try:
            await fut
        except asyncio.CancelledError:  # a timeout: give back a share granted meanwhile, else leave the line
            if fut.done() and not fut.cancelled():
                self.give(n)
            else:
                self._waiting.remove((n, fut))
                self._grant()
            raise

    def give(self, n: int) -> None:
        self.used -= n
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self.used + self._waiting[0][0] <= self.total:
            n, fut = self._waiting.popleft()
            if not fut.done():
                self.used += n
                fut.set_result(None)


class _Gate:
    """At most ``n`` requests decoded and read at once, at most ``queued`` more waiting for a
    turn (in arrival order); a request beyond both is refused at once with 429."""

    def __init__(self, n: int, queued: int):
        self.sem = asyncio.Semaphore(max(1, n))
        self.queued, self.waiting = max(0, queued), 0

    @asynccontextmanager
    async def __call__(self):
        if self.sem.locked() and self.waiting >= self.queued:
            raise HTTPException(429, f"busy: the service is reading the most requests it may, and {self.waiting} "
                                     "wait; retry shortly", headers={"retry-after": "1"})
        self.waiting += 1
        try:
            await self.sem.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self.sem.release()


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout: a connection that has not sent a whole
    request head within ``header_timeout_s`` of opening (or of its last response) is closed."""

    header_timeout_s = 10.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def _arm(self) -> None:
        handle = getattr(self, "_head_timer", None)
        if handle is not None:
            handle.cancel()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timeout)

    def _head_timeout(self) -> None:
        waiting = self.cycle is None or self.cycle.response_complete
        if waiting and not self.transport.is_closing():
            self.transport.close()


def create_app(settings: Settings) -> FastAPI:
    from .inference import Recognizer
    from .runs import model_kind, read_meta

    lim = settings.limits
    state: dict = {}
    HeaderTimeoutProtocol.header_timeout_s = lim.header_timeout_s  # the protocol uvicorn runs this app with

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        rec = Recognizer(settings.model, engine=settings.engine, threads=settings.threads)
        if model_kind(settings.model) == "export":
            meta, _ = read_meta(settings.model)
        else:
            meta = {"format": "ocr-robust-run", "version": __version__, "charset": rec.charset.chars,
                    "input": {"height": rec.height}}
        batcher = MicroBatcher(rec, settings.max_batch_lines, settings.max_wait_ms / 1000, settings.streams)
        batcher.start()
        workers = PageWorkers(lim.page_workers, lim.page_timeout_s, memory_mb=lim.page_memory_mb)
        pages = PageReader(workers, max_page_pixels=lim.max_page_pixels)
        state.update(recognizer=rec, meta=meta, batcher=batcher, pages=pages, started=time.time())
        yield
        pages.workers.close()
        await batcher.stop()

    app = FastAPI(title="ocr-robust", version=__version__, lifespan=lifespan,
                  description="Robust OCR of text lines and PDFs with an ocr-robust model.")
    app.add_middleware(BodyLimit, max_bytes=lim.max_body_bytes, timeout_s=lim.body_timeout_s)
    gate = _Gate(lim.max_active, lim.max_queued)
    pixels = _Budget(lim.max_active_pixels)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's and Starlette's own (404, 405, multipart)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        parts = ["/".join(str(x) for x in e.get("loc", ())) + ": " + e.get("msg", "") for e in exc.errors()]
        return _error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError):
        return _error(413 if isinstance(exc, TooLarge) else 400, str(exc))

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
        img = decode_grey(data, name, lim.max_image_pixels)  # the size from the header first: TooLarge -> 413
        if min(img.shape) < 2:
            raise HTTPException(400, f"{name}: image is too small ({img.shape[1]}x{img.shape[0]})")
        return img

    @app.get("/healthz")
    async def healthz() -> dict:
        b = state["batcher"]
        return {"status": "ok", "engine": state["recognizer"].engine, "streams": b.streams,
                "uptime_s": round(time.time() - state["started"], 1),
                "batches": b.batches, "lines": b.lines, "queued": b.queue.qsize()}

    @app.get("/v1/model")
    async def model_info() -> dict:
        return state["meta"]

    @app.post("/v1/recognize", responses=ERROR_RESPONSES)
    async def recognize(images: list[UploadFile] = File(..., description="line images (PNG, JPEG, TIFF...)")) -> dict:
        """Read one or more line images; one result per image, in order."""
        if len(images) > lim.max_images:
            raise HTTPException(413, f"{len(images)} images exceed the limit of {lim.max_images} per request")

        async def decoded() -> tuple[list[np.ndarray], int]:
            """The images, decoded in the request's turn; their pixels stay taken from the budget."""
            async with gate():
                uploads = [(f.filename or f"image {k + 1}", await read_upload(f)) for k, f in enumerate(images)]
                total = 0
                for name, data in uploads:  # every size from its header before any decoding
                    w, h = checked_size(data, name, lim.max_image_pixels)  # InputError -> 400, TooLarge -> 413
                    total += w * h
                if total > lim.max_request_pixels:
                    raise HTTPException(413, f"{len(uploads)} images of {total} pixels together exceed the limit of "
                                             f"{lim.max_request_pixels} pixels per request")
                await pixels.take(total)
                try:
                    return await run_in_threadpool(lambda: [decode_line(data, name) for name, data in uploads]), total
                except BaseException:
                    pixels.give(total)
                    raise

        async def work():
            lines, total = await decoded()
            try:
                reads, batch = await state["batcher"].read(lines)
            finally:
                pixels.give(total)
            return {"lines": [{"name": f.filename, "text": d.text, "confidence": round(d.confidence, 4)}
                              for f, d in zip(images, reads)], "batch": batch}

        return await within_time(work())

    @app.post("/v1/pdf", responses=ERROR_RESPONSES)
    async def pdf(file: UploadFile = File(..., description="a PDF document"),
                  dpi: int = Query(DPI, ge=50, le=300, description="raster resolution of the pages")) -> dict:
        """Read every page of a PDF: per page its lines with text, confidence and box (PDF
        points); for pages with a text layer also the layer's own text (``layer_text``)."""
        from .pdf.read import fill

        async def work(t0: float):
            data = await read_upload(file)
            name = file.filename or "upload.pdf"
            if b"%PDF-" not in data[:1024]:
                raise InputError(name, "not a PDF (no %PDF- header)")
            left = lambda: lim.timeout_s - (time.monotonic() - t0)  # noqa: E731
            reader = state["pages"]
            with tempfile.TemporaryDirectory(prefix="ocr-robust-") as tmp:
                path = Path(tmp) / "upload.pdf"
                path.write_bytes(data)
                n = await run_in_threadpool(reader.open, path, name, left())  # InputError -> 400
                if n > lim.max_pdf_pages:
                    raise HTTPException(413, f"{name}: {n} pages exceed the limit of {lim.max_pdf_pages}")
                pages = []
                for pno in range(n):  # MuPDF's work in page workers, under a deadline: the loop stays free
                    reading, crops = await run_in_threadpool(reader.page, path, pno, left(), dpi)
                    reads, _ = await state["batcher"].read(crops)
                    pages.append(fill(reading, reads).as_dict())
            return {"file": name, "pages": pages}

        async def gated(t0: float):
            async with gate():
                return await work(t0)

        return await within_time(gated(time.monotonic()))

    return app


def app_from_env() -> FastAPI:
    """The app for uvicorn worker processes (``--workers N``), configured by the environment."""
    return create_app(Settings.from_json(os.environ[ENV_SETTINGS]))


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    import uvicorn

    if workers > 1:
        os.environ[ENV_SETTINGS] = json.dumps(asdict(settings))
        uvicorn.run("ocr_robust.service:app_from_env", factory=True, host=host, port=port, workers=workers,
                    timeout_graceful_shutdown=30, log_level="info", http=HeaderTimeoutProtocol)
    else:
        uvicorn.run(create_app(settings), host=host, port=port, timeout_graceful_shutdown=30, log_level="info",
                    http=HeaderTimeoutProtocol)
