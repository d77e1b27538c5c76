"""Page work under a deadline: MuPDF's opening, text extraction and rendering run in child
processes, each task with a deadline after which its process is killed.

MuPDF holds the GIL while it works, so a hostile page (form XObjects that draw each other
10^9 times, a few KB of PDF) would freeze the calling process: no thread, signal handler or
event loop runs until it returns. A child process can always be stopped. A task that runs
past its deadline raises :class:`PageTimeout` (its process is killed and a fresh one takes the
next task); a child that dies (a crash inside MuPDF) raises :class:`PageCrash`; the caller
reports the page as failed and keeps the others. Each process may also add at most
``memory_mb`` to its address space (``RLIMIT_AS``), so that page work has a memory bound.

Children come from a ``forkserver`` (Linux; ``spawn`` elsewhere) that has the PDF modules
loaded, so a fresh child after a kill costs milliseconds, not the second a spawned
interpreter takes, and no child is forked from a process whose threads (OpenCV, torch,
uvicorn) hold locks.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["PAGE_TIMEOUT_S", "PAGE_MEMORY_MB", "PageTimeout", "PageCrash", "PageWorkers"]

PAGE_TIMEOUT_S = 60.0  # per page task; a normal page takes well under a second at 150 dpi
PAGE_MEMORY_MB = 1024  # address space a page process may add to what it starts with; past it, allocations fail


class PageTimeout(Exception):
    """A page task ran past its deadline; its process was killed."""

    def __init__(self, seconds: float):
        super().__init__(f"took longer than {seconds:g} s")
        self.seconds = seconds


class PageCrash(Exception):
    """The child process died during a page task (a crash inside MuPDF, or killed)."""


def _context() -> mp.context.BaseContext:
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["ocr_robust.pdf.ingest", "ocr_robust.pdf.read"])
        return ctx
    return mp.get_context("spawn")


def _limit_memory(mb: int) -> None:
    """Cap this process's address space at what it holds now plus ``mb`` (a page that asks
    for more fails with MemoryError inside MuPDF's or NumPy's allocation, and is reported)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            now = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (now + mb * 2**20, now + mb * 2**20))
    except (OSError, StopIteration, ValueError, ImportError):  # not Linux: no cap, the deadline still holds
        pass


def _child(conn: Connection, initializer: Callable[[], None] | None, memory_mb: int | None) -> None:
    if memory_mb:
        _limit_memory(memory_mb)
    if initializer is not None:
        initializer()
    conn.send("ready")  # the deadlines count from here: starting a process is not the page's time
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send((True, fn(*args)))
        except Exception as e:  # the task's own failure goes back to the caller, the child lives on
            conn.send((False, f"{type(e).__name__}: {e}".strip()))


START_TIMEOUT_S = 120.0  # a page process that is not ready by then (a machine out of memory) fails the task


class _Proc:
    def __init__(self, ctx, initializer, memory_mb):
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(target=_child, args=(child_conn, initializer, memory_mb), daemon=True)
        self.proc.start()
        child_conn.close()
        try:
            ready = self.conn.poll(START_TIMEOUT_S) and self.conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.kill()
            raise PageCrash(f"the page process did not start within {START_TIMEOUT_S:g} s")

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.join(5)
        except Exception:
            pass
        self.conn.close()


class PageWorkers:
    """``processes`` child processes that run page tasks, ``fn(*args)`` with ``fn`` a
    module-level function (it is sent by name), each under a deadline. Thread-safe: up to
    ``processes`` tasks run at once, others wait for a free child. Use as a context manager,
    or call :meth:`close`."""

    def __init__(self, processes: int = 1, timeout_s: float = PAGE_TIMEOUT_S,
                 initializer: Callable[[], None] | None = None, memory_mb: int | None = PAGE_MEMORY_MB):
        if not timeout_s > 0:
            raise ValueError(f"page timeout must be positive, got {timeout_s}")
        self.initializer, self.timeout_s, self.memory_mb = initializer, float(timeout_s), memory_mb
        self.processes = max(1, int(processes))
        self._ctx = _context()
        self._idle: queue.Queue[_Proc | None] = queue.Queue()
        for _ in range(self.processes):
            self._idle.put(None)  # started on first use
        self._busy: set[_Proc] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.killed = 0  # children killed at a deadline

    def run(self, fn: Callable[..., Any], *args: Any, timeout_s: float | None = None) -> Any:
        """``fn(*args)`` in a child, within ``timeout_s`` (at most the workers' own); raises
        PageTimeout, PageCrash, or RuntimeError with the task's own error message."""
        limit = self.timeout_s if timeout_s is None else min(self.timeout_s, timeout_s)
        proc = self._idle.get()
        try:
            if self._closed:
                raise PageCrash("the page workers are closed")
            if proc is None or not proc.proc.is_alive():
                proc = _Proc(self._ctx, self.initializer, self.memory_mb)
            with self._lock:
                self._busy.add(proc)
            t0 = time.monotonic()
            try:
                proc.conn.send((fn, args))
                if not proc.conn.poll(max(0.0, limit)):
                    proc.kill()
                    self.killed += 1
                    proc = None
                    raise PageTimeout(limit)
                ok, value = proc.conn.recv()
            except (EOFError, OSError) as e:
                if proc is not None:
                    proc.kill()
                proc = None
                why = "the page workers were closed" if self._closed else "the page process died"
                raise PageCrash(f"{why} after {time.monotonic() - t0:.1f} s ({type(e).__name__})") from None
            if not ok:
                raise RuntimeError(value)
            return value
        finally:
            with self._lock:
                self._busy = {p for p in self._busy if p is not proc and p.proc.is_alive()}
            self._idle.put(proc)

    def map(self, fn: Callable[..., Any], arg_tuples: Iterable[tuple], on_error: Callable[[tuple, Exception], Any]
            ) -> Iterator[Any]:
        """``fn(*args)`` for each of ``arg_tuples``, in order, ``processes`` at a time; a task
        that times out, crashes or fails gives ``on_error(args, exception)`` instead."""
        def one(args):
            try:
                return self.run(fn, *args)
            except (PageTimeout, PageCrash, RuntimeError) as e:
                return on_error(args, e)

        with ThreadPoolExecutor(self.processes, thread_name_prefix="page") as ex:
            yield from ex.map(one, arg_tuples)

    def close(self) -> None:
        """Kill every child, busy or idle (a task waiting on one raises PageCrash)."""
        self._closed = True
        with self._lock:
            busy = list(self._busy)
        for p in busy:
            p.kill()
        while True:
            try:
                idle = self._idle.get_nowait()
            except queue.Empty:
                break
            if idle is not None:
                idle.kill()
        for _ in range(self.processes):
            self._idle.put(None)

    def __enter__(self) -> PageWorkers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
