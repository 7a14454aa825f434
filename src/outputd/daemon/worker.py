"""The worker: one claimed job through its stages, each result committed at once.

A job's way reads store → stage → store: the worker applies the job's pending events,
then looks up the stage for its status (pipeline.stages.STAGES), runs it, and commits
its Result in one transaction, until the job rests or waits for its time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from outputd import logs, notifications, states
from outputd.config import Config
from outputd.errors import OutputdError, RequestRefused
from outputd.layout import Layout
from outputd.model import BY_DAEMON, Event, Job, Result
from outputd.ops import rules
from outputd.pipeline import sandbox
from outputd.pipeline.stages import STAGES, JobReads, StageContext
from outputd.retry import RetryPolicy
from outputd.store import Store
from outputd.store.outbox import OutboxPolicy
from outputd.transports import TransportPool

if TYPE_CHECKING:
    from outputd.daemon.metrics import Metrics
    from outputd.daemon.systemd import Progress
    from outputd.pipeline.sandbox import PdfProcesses

log = logging.getLogger(__name__)
ERROR_BACKOFF_S = 30.0
IDLE_WAIT_S = 1.0


class Waker:
    """Wakes idle workers; a generation count means no wake-up is lost between a
    worker finding nothing to do and going to sleep."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        with self._cond:
            return self._generation

    def wake(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._generation != seen, timeout=timeout)


@dataclass(frozen=True)
class Runtime:
    """What a reload replaces, all at once behind one reference: the config and what is
    made from it. A job is worked under the runtime it started with."""

    config: Config
    transports: TransportPool
    retry: RetryPolicy
    owed: OutboxPolicy  # which notifications a status change owes

    @classmethod
    def build(cls, config: Config, previous: Runtime | None = None) -> Runtime:
        """The runtime for `config`; transports of hot folders that did not change are
        taken over from `previous`."""
        if previous is None:
            pool = TransportPool(config.hotfolders, sweep_older_than_s=config.store.lease_s)
        else:
            pool = previous.transports.for_hotfolders(config.hotfolders)
        return cls(config, pool, RetryPolicy(config.retry), notifications.policy(config.notify))


def _no_late_files(job_id: str, relative: str) -> bool:
    return False


@dataclass
class Services:
    """What the workers of a node share for its life; `runtime` is swapped by a reload."""

    runtime: Runtime
    store: Store
    layout: Layout
    stopping: threading.Event
    abort: threading.Event  # set when the stop grace time is over: cut copies short
    metrics: Metrics | None = None
    progress: Progress | None = None
    pdf: PdfProcesses | None = None  # None: PDF work runs in the worker's own thread
    late_file: Callable[[str, str], bool] = _no_late_files  # the intake's, in the daemon

    @property
    def config(self) -> Config:
        return self.runtime.config

    def pdf_call(self, name: str, *args: Any) -> Any:
        """Run PDF work in this worker's limited process, or inline without one."""
        if self.pdf is not None:
            return self.pdf.call(name, *args)
        return sandbox.functions()[name](*args)

    def tick(self) -> None:
        """The current worker made progress (for the service watchdog)."""
        if self.progress is not None:
            self.progress.tick(threading.current_thread().name)


class Worker:
    """Runs one job as far as it can go now."""

    def __init__(self, services: Services) -> None:
        self.s = services
        store = services.store
        self.reads = JobReads(store.jobs.history, store.deliveries.outputs,
                              store.deliveries.of, store.hotfolders.paused)

    def serve(self, owner: str, waker: Waker, low_space: Callable[[], str | None]) -> None:
        """Claim jobs and process them until the node stops; sleep while there is no
        work (or no disk space), until woken."""
        s = self.s
        name = threading.current_thread().name
        while not s.stopping.is_set():
            seen = waker.generation
            if low_space():
                waker.wait(seen, IDLE_WAIT_S)
                continue
            try:
                job = s.store.claims.take(owner, s.config.store.lease_s)
            except Exception:
                log.exception("worker.claim_failed")
                s.stopping.wait(IDLE_WAIT_S)
                continue
            if job is None:
                waker.wait(seen, IDLE_WAIT_S)
                continue
            if s.progress:
                s.progress.busy(name)
            try:
                self.work(job, owner)
            finally:
                if s.progress:
                    s.progress.idle(name)

    def work(self, job: Job, owner: str) -> None:
        """Process a job claimed by `owner`, then release it. A crash puts the job off
        for a while; a claim that found nothing to do is a bug, said loudly (its release
        leaves no claim-log row, and empties a due time its status may not have)."""
        s = self.s
        worked = True
        try:
            worked = self.process(job)
        except Exception:
            log.exception("job.crashed", extra={
                "fields": {**job.log_context(), "retry_in_s": ERROR_BACKOFF_S}})
            s.store.jobs.update(job.job_id, due_at=time.time() + ERROR_BACKOFF_S)
        finally:
            s.store.claims.release(job.job_id, owner, worked)
        if not worked:
            if s.metrics is not None:
                s.metrics.idle_claims.inc()
            logs.event(log, logging.ERROR, "job.idle_claim", **job.log_context(),
                       due_at=job.due_at, reason="claimed with nothing to do")

    def process(self, job: Job) -> bool:
        """Apply the job's pending events, then run its stages as far as it can go now;
        whether there was anything to do."""
        runtime = self.s.runtime
        worked = False
        for event in self.s.store.events.pending(job.job_id):
            job = self._commit(job, self._apply(job, event), runtime)
            worked = True
        ctx = self._context(runtime)
        while True:
            stage = STAGES.get(job.status)
            if stage is None or job.due_at is None or job.due_at > time.time():
                return worked  # resting, or waiting for its time
            worked = True
            if self.s.stopping.is_set():
                return worked  # the next start goes on from here
            try:
                result = stage(ctx, job)
            except OutputdError as exc:
                logs.event(log, logging.ERROR, "job.error", **job.log_context(), error=str(exc))
                self._commit(job, Result(due_at=time.time() + ERROR_BACKOFF_S), runtime)
                return worked
            job = self._commit(job, result, runtime)

    def _context(self, runtime: Runtime) -> StageContext:
        s = self.s
        return StageContext(runtime.config, s.layout, self.reads, runtime.transports.get,
                            runtime.retry, s.pdf_call, s.late_file, s.stopping, s.abort,
                            s.tick, s.metrics)

    def _commit(self, job: Job, result: Result, runtime: Runtime) -> Job:
        """Save `result` in one transaction; log a status change in one line."""
        saved = self.s.store.jobs.save(job, result, runtime.owed)
        if result.status is None:
            return saved
        self.s.tick()
        if result.note:
            logs.event(log, logging.INFO, "job.noted", **job.log_context(),
                       noted=result.status, by=result.by, message=result.message)
            return saved
        if self.s.metrics is not None:
            self.s.metrics.status_changes.labels(result.status).inc()
        logs.event(log, result.level, "job.status", job=job.job_id, order=job.order_id,
                   status=result.status, previous=job.status, by=result.by,
                   message=result.message, **result.log)
        return saved

    def _apply(self, job: Job, event: Event) -> Result:
        """What a recorded event does to the job now (the job may have moved on since it
        was checked and recorded): a Result that also marks the event applied."""
        store = self.s.store
        final = event.event in rules.FINAL_EVENTS and job.status == states.CLEAN_UP
        if rules.already_so(job, event.event, store.jobs.history(job.job_id) if final else None):
            logs.event(log, logging.INFO, "event.already", **job.log_context(),
                       event=event.event, by=event.by)  # sent twice before it was applied
            return Result(event_id=event.id)
        try:
            history = store.jobs.history(job.job_id) if event.event == "release" else None
            plan = rules.plan(job, event.event, history)
            if event.event == "reopen" and not self.s.layout.sources_kept(job.job_id):
                raise RequestRefused(f"job {job.job_id}: its sources are no longer kept")
        except RequestRefused as exc:
            logs.event(log, logging.WARNING, "event.refused", **job.log_context(),
                       event=event.event, by=event.by, reason=str(exc))
            return Result(event_id=event.id)
        message = event.message or rules.default_message(event.event)
        by = event.by or BY_DAEMON
        if plan.note:
            return Result(plan.status, message, by, fields=plan.fields, note=True,
                          renotify=event.event == "renotify", event_id=event.id)
        deliveries = None  # recreate and reopen keep them: the old files are taken back first
        if event.event == "retry":  # what was delivered stays so; the rest goes again
            deliveries = [
                d if d.state == states.DELIVERED
                else replace(d, state=states.DELIVERY_PENDING, attempts=0,
                             next_attempt_at=None, permanent=False)
                for d in store.deliveries.of(job.job_id)
            ]
        return Result(plan.status, message, by, due_at=time.time(), fields=plan.fields,
                      deliveries=deliveries, event_id=event.id)
