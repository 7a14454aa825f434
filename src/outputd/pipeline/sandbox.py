"""PDF work (preflight, assembly) in a pre-started process per worker, under limits.

One malicious or broken file must not stall or kill the daemon: each worker thread hands
its PDF work to a process of its own, started ahead of time, whose address space is
capped at `limits.job_memory_mb` and whose every call must answer within
`limits.job_timeout_s`. A process that breaks a limit, or dies, is killed and replaced,
and the job fails with that reason.
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from outputd import logs
from outputd.errors import StageError

log = logging.getLogger(__name__)
_CONTEXT = multiprocessing.get_context("spawn")  # a clean process: no daemon threads in it


class LimitBroken(StageError):
    """The PDF process broke a limit or died; the job fails with this reason."""


def functions() -> dict[str, Any]:
    """The PDF work a worker may ask for, by name."""
    from outputd.pipeline import assemble, jobsheet, preflight

    return {"preflight": preflight.run, "assemble": assemble.assemble,
            "job_sheet": jobsheet.make}


def _serve(conn: Connection, memory_mb: int) -> None:
    """The child: run calls until the pipe closes."""
    # Ctrl-C at a terminal reaches the whole process group; the daemon ends its PDF
    # processes itself, by closing their pipes, once its stop is under way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    work = functions()
    conn.send(("ready", None))
    while True:
        try:
            name, args = conn.recv()
        except EOFError:
            return
        try:
            result = ("ok", work[name](*args))
        except MemoryError:
            result = ("error", LimitBroken(
                f"the file needs more than limits.job_memory_mb = {memory_mb} MB"))
        except Exception as exc:  # returned to the worker, which decides what it means
            result = ("error", exc)
        try:
            conn.send(result)
        except (BrokenPipeError, EOFError, ConnectionResetError):
            return  # the worker is gone (the daemon stopped, or was killed): so are we
        except Exception as exc:  # an unpicklable result or exception
            try:
                conn.send(("error", StageError(f"{type(exc).__name__}: {exc}")))
            except OSError:
                return


class PdfProcess:
    """A pre-started process for one worker's PDF work."""

    def __init__(self, memory_mb: int, timeout_s: float, wait: bool = True) -> None:
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self._conn: Connection | None = None
        self._proc: Any = None
        self._ready = False
        self.start(wait)

    def start(self, wait: bool = True) -> None:
        """Start the process; with `wait`, return once it serves."""
        parent, child = _CONTEXT.Pipe()
        proc = _CONTEXT.Process(target=_serve, args=(child, self.memory_mb),
                                name="outputd-pdf", daemon=True)
        proc.start()
        child.close()
        self._conn, self._proc, self._ready = parent, proc, False
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        if self._ready:
            return
        assert self._conn is not None
        try:
            if not self._conn.poll(60):
                raise EOFError
            self._conn.recv()
        except (EOFError, OSError):
            self.close()
            raise StageError("the PDF process did not start") from None
        self._ready = True

    def _replace(self) -> None:
        self.close()
        self.start()

    def call(self, name: str, *args: Any) -> Any:
        """Run `name(*args)` in the process; raise LimitBroken when a limit is broken."""
        if self._conn is None or not self._proc.is_alive():
            self._replace()
        self.wait_ready()
        assert self._conn is not None
        started = time.monotonic()
        self._conn.send((name, args))
        if not self._conn.poll(self.timeout_s):
            logs.event(log, logging.ERROR, "pdf.timeout", work=name, limit_s=self.timeout_s)
            self._replace()
            raise LimitBroken(f"{name} took longer than limits.job_timeout_s = "
                              f"{self.timeout_s:g} s")
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError):
            self._proc.join(1)
            code = self._proc.exitcode
            logs.event(log, logging.ERROR, "pdf.died", work=name, exit_code=code)
            self._replace()
            raise LimitBroken(f"the PDF process died during {name} (exit code {code}); "
                              "the file may need more than limits.job_memory_mb = "
                              f"{self.memory_mb} MB") from None
        if kind == "error":
            if isinstance(value, LimitBroken):
                self._replace()  # a process that ran out of memory is not trusted again
            raise value
        logs.event(log, logging.DEBUG, "pdf.done", work=name,
                   ms=int((time.monotonic() - started) * 1000))
        return value

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
        self._conn = self._proc = None
        self._ready = False


class PdfProcesses:
    """A PdfProcess per worker thread: started ahead by the main thread (`prestart`), or
    else by the worker itself."""

    def __init__(self, memory_mb: int, timeout_s: float) -> None:
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._all: list[PdfProcess] = []
        self._spare: list[PdfProcess] = []
        self._lock = threading.Lock()

    def prestart(self, count: int) -> None:
        """Start `count` processes now, without waiting for them, with SIGINT set aside
        while they are made: they are born ignoring it, so that a Ctrl-C at a terminal
        while they start up prints no traceback from each. Main thread only."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            started = [PdfProcess(self.memory_mb, self.timeout_s, wait=False)
                       for _ in range(count)]
        finally:
            signal.signal(signal.SIGINT, previous)
        with self._lock:
            self._spare.extend(started)
            self._all.extend(started)

    def mine(self) -> PdfProcess:
        """This thread's process, serving."""
        process: PdfProcess | None = getattr(self._local, "process", None)
        if process is None:
            with self._lock:
                process = self._spare.pop() if self._spare else None
            if process is None:
                process = PdfProcess(self.memory_mb, self.timeout_s)
                with self._lock:
                    self._all.append(process)
            self._local.process = process
        process.wait_ready()
        return process

    def call(self, name: str, *args: Any) -> Any:
        return self.mine().call(name, *args)

    def close(self) -> None:
        with self._lock:
            for process in self._all:
                process.close()
            self._all.clear()
            self._spare.clear()
