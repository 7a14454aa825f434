"""The stages of a job, and the one table that says which runs for which status.

A stage is a plain function of the job (and what it may read of the store); it does its
work in the job's folders and hot folders and returns a Result. It never writes the
store: the worker commits the result in one transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from outputd import logs, states
from outputd.config import Config
from outputd.errors import StageError
from outputd.layout import Layout
from outputd.model import BY_DAEMON, Delivery, HistoryEntry, Job, Output, Result
from outputd.pipeline import assemble, cleanup, deliver, gate, remake, report, routing
from outputd.retry import RetryPolicy
from outputd.transports.base import Transport

if TYPE_CHECKING:
    from outputd.daemon.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobReads:
    """What a stage may read of the store (it never writes it)."""

    history: Callable[[str], list[HistoryEntry]]
    outputs: Callable[[str], list[Output]]
    deliveries: Callable[[str], list[Delivery]]
    paused: Callable[[], set[str]]  # the hot folders that are paused now


@dataclass(frozen=True)
class StageContext:
    """What the stages of one job work with, fixed for that job (a reload takes effect
    at the next job)."""

    config: Config
    layout: Layout
    reads: JobReads
    transport: Callable[[str], Transport]  # the transport of a hot folder, by name
    retry: RetryPolicy
    pdf_call: Callable[..., Any]  # PDF work by name, in the worker's sandboxed process
    late_file: Callable[[str, str], bool]  # (job id, path): keep an arrived late file
    stopping: threading.Event
    abort: threading.Event  # the stop grace time is over: cut copies short
    tick: Callable[[], None]  # the worker made progress (for the watchdog)
    metrics: Metrics | None = None

    def sources(self, job: Job) -> list[tuple[Path, str]]:
        """The job's source files with their roles: as they came, or the copy preflight's
        fix-ups mended (named in its report)."""
        kept = (job.preflight or {}).get("files") or []
        found = []
        for index, f in enumerate(job.ticket.files):
            path = self.layout.source_file(job.job_id, f.path)
            fixed = kept[index].get("fixed") if index < len(kept) else None
            if fixed:
                path = self.layout.fixed(job.job_id) / str(fixed)
            found.append((path, f.role))
        return found

    def refix(self, job: Job) -> Any:
        """Preflight the job's files again, as the route and profile say, mending copies
        where its fix-ups are on; the report."""
        originals = [self.layout.source_file(job.job_id, f.path) for f in job.ticket.files]
        return self.pdf_call(
            "preflight", [(path, path.name) for path in originals], job.ticket.product,
            self.config.limits.max_file_bytes, self.config.preflight,
            routing.route(self.config, job.ticket).profile, self.layout.fixed(job.job_id))

    def timed(self, stage: str, started: float) -> int:
        """Milliseconds since `started`, observed in the stage's metric."""
        seconds = time.monotonic() - started
        if self.metrics is not None:
            self.metrics.stage_seconds.labels(stage).observe(seconds)
        return int(seconds * 1000)


Stage = Callable[[StageContext, Job], Result]


def check(ctx: StageContext, job: Job) -> Result:
    """The gate, then (when the job may go on) preflight."""
    if job.status == states.ORDERED and job.created_at == job.updated_at:
        _note_submitted(ctx, job)
    missing = [f.path for f in job.ticket.files
               if not ctx.layout.source_file(job.job_id, f.path).exists()
               and not ctx.late_file(job.job_id, f.path)]
    waiting_since = None
    if job.status == states.AWAITING_DATA:
        waiting_since = next((h.at for h in reversed(ctx.reads.history(job.job_id))
                              if h.status == states.AWAITING_DATA), None)
    decision = gate.decide(job.ticket, job.approval, job.payment_status, time.time(), missing,
                           waiting_since, ctx.config.limits.awaiting_data_timeout_s)
    if decision.status is None:
        return _preflight(ctx, job)
    if decision.status == job.status:
        return Result(due_at=decision.due_at)
    return Result(decision.status, decision.message, due_at=decision.due_at)


def _note_submitted(ctx: StageContext, job: Job) -> None:
    """A job taken in by another process (`outputd submit`) is logged as accepted by
    the daemon that first looks at it, as its own intake logs the jobs it takes in."""
    first = ctx.reads.history(job.job_id)[:1]
    if first and first[0].by != BY_DAEMON:
        logs.event(log, logging.INFO, "job.accepted", job=job.job_id, order=job.order_id,
                   status=job.status, type=job.ticket.product.type,
                   files=len(job.ticket.files), by=first[0].by)


def _preflight(ctx: StageContext, job: Job) -> Result:
    started = time.monotonic()
    try:
        found = ctx.refix(job)
    except StageError as exc:
        failed = report.Report((report.error("limits", str(exc), "the job"),))
        return Result(states.VALIDATION_FAILED, str(exc), fields={"preflight": failed.as_json()},
                      level=logging.ERROR)
    timing = {"ms": ctx.timed("preflight", started)}
    if not found.ok:
        return Result(states.VALIDATION_FAILED, found.summary(),
                      fields={"preflight": found.as_json()}, level=logging.ERROR, log=timing)
    return Result(states.VALIDATION_FINISHED, found.summary(), due_at=time.time(),
                  fields={"preflight": found.as_json()}, log=timing)


def start_output(ctx: StageContext, job: Job) -> Result:
    """Mark that the print-ready file is being made (a crash in assembly shows there)."""
    return Result(states.OUTPUT_CREATION_STARTED, "making the print-ready file",
                  due_at=time.time())


def make_output(ctx: StageContext, job: Job) -> Result:
    """Assemble the print-ready file (or place a clean static file as it is)."""
    started = time.monotonic()
    try:
        outputs = _clean_static(ctx, job) or ctx.pdf_call(
            "assemble", job.ticket, ctx.sources(job), ctx.layout.outputs(job.job_id))
    except (StageError, OSError) as exc:
        return Result(states.OUTPUT_CREATION_FAILED, str(exc), level=logging.ERROR)
    names = ", ".join(o.name for o in outputs)
    timing = {"bytes": sum(o.bytes for o in outputs), "ms": ctx.timed("assemble", started)}
    return Result(states.OUTPUT_CREATED, f"made {names}", due_at=time.time(), outputs=outputs,
                  deliveries=[], log=timing)


def _clean_static(ctx: StageContext, job: Job) -> list[Output] | None:
    """A static file preflight found clean needs no PDF parsing to pass on: placed
    here, saving a round trip to the PDF process."""
    if job.ticket.product.type != "static":
        return None
    pages = report.clean_single_file_pages(job.preflight)
    if pages is None:
        return None
    source = ctx.sources(job)[0][0]
    known = None if source.parent == ctx.layout.fixed(job.job_id) else (
        ctx.layout.source_sha256(job.job_id).get(job.ticket.files[0].path))
    return [assemble.place_clean_static(job.ticket, source, ctx.layout.outputs(job.job_id),
                                        pages, known)]


def resume(ctx: StageContext, job: Job) -> Result:
    """A reopened job: what its earlier output left in hot folders, where the RIP has not
    taken it, is taken back (the history says so), then the gate and preflight."""
    if not ctx.reads.deliveries(job.job_id):
        return check(ctx, job)
    taken = remake.take_back(ctx, job)
    if taken.waiting is not None:
        return taken.waiting
    result = check(ctx, job)
    return replace(result, message=result.message + taken.said, deliveries=[])


# The stage for each status of states.WORKED; a job in any other status rests until an
# event moves it (and is never due meanwhile).
STAGES: dict[str, Stage] = {
    **dict.fromkeys(states.GATE, check),
    states.REOPENED: resume,
    states.VALIDATION_FINISHED: start_output,
    states.OUTPUT_CREATION_STARTED: make_output,
    **dict.fromkeys(states.DELIVERING, deliver.stage),
    states.RECREATION_REQUESTED: remake.delete_output,
    **dict.fromkeys(states.FINISHING, cleanup.stage),
}
if STAGES.keys() != states.WORKED:  # the store's "never due" rule reads states.WORKED
    raise RuntimeError(f"stages and states.WORKED disagree: {STAGES.keys() ^ states.WORKED}")
