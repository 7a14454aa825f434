"""Drives one claimed job through its stages, applying pending events first.

Stages are plain functions (gate, preflight, assemble, deliver); this module turns their
results into status changes, each committed with its history entry before the next step.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from outputd import logs, states
from outputd.config import Config
from outputd.errors import (
    ConfigError,
    DeliveryError,
    OutputdError,
    OutputFailed,
    RequestRefused,
    StageError,
)
from outputd.layout import Layout
from outputd.model import BY_DAEMON, Delivery, Event, Job, Output
from outputd.ops import rules as events
from outputd.pipeline import assemble, deliver, gate, preflight
from outputd.pipeline.routing import route
from outputd.retry import RetryPolicy
from outputd.store import SqlStore
from outputd.transports import TransportPool
from outputd.transports.base import CopyControl, part_name

if TYPE_CHECKING:
    from outputd.daemon.metrics import Metrics
    from outputd.daemon.systemd import Progress
    from outputd.pipeline.sandbox import PdfProcesses

log = logging.getLogger(__name__)
ERROR_BACKOFF_S = 30.0


@dataclass
class Services:
    """What a worker needs: config, store, folders, transports, and the stop signals."""

    config: Config
    store: SqlStore
    layout: Layout
    transports: TransportPool
    stopping: threading.Event
    abort: threading.Event  # set when the stop grace time is over: cut copies short
    metrics: Metrics | None = None
    progress: Progress | None = None
    pdf: PdfProcesses | None = None  # None: PDF work runs in the worker's own thread

    def pdf_call(self, name: str, *args: Any) -> Any:
        """Run PDF work in this worker's limited process, or inline without one."""
        if self.pdf is not None:
            return self.pdf.call(name, *args)
        work: dict[str, Callable[..., Any]] = {
            "preflight": preflight.run, "assemble": assemble.assemble}
        return work[name](*args)

    def tick(self) -> None:
        """The current worker made progress (for the service watchdog)."""
        if self.progress is not None:
            self.progress.tick(threading.current_thread().name)

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.config.retry)


class Runner:
    """Runs one job as far as it can go now."""

    def __init__(self, services: Services) -> None:
        self.s = services

    def process(self, job: Job) -> None:
        for event in self.s.store.pending_events(job.job_id):
            job = self._apply(job, event)
        while not self.s.stopping.is_set():
            stage = self._stage_for(job)
            if stage is None or job.due_at is None or job.due_at > time.time():
                return  # resting, or waiting for its time
            try:
                job = stage(job)
            except OutputdError as exc:
                logs.event(log, logging.ERROR, "job.error", **job.log_context(), error=str(exc))
                self.s.store.update_job(job.job_id, due_at=time.time() + ERROR_BACKOFF_S)
                return

    def _stage_for(self, job: Job) -> Callable[[Job], Job] | None:
        if job.status in states.GATE:
            return self._gate
        if job.status in (states.VALIDATION_FINISHED, states.OUTPUT_CREATION_STARTED):
            return self._assemble
        if job.status in (states.OUTPUT_CREATED, states.COPY_FAILED):
            return self._deliver
        if job.status == states.RECREATION_REQUESTED:
            return self._delete_output
        if job.status in states.FINISHING:
            return self._clean_up
        return None

    # -- status bookkeeping --------------------------------------------------

    def _move(self, job: Job, status: str, message: str, *, by: str = BY_DAEMON,
              due_at: float | None = None, level: int = logging.INFO,
              log_fields: Mapping[str, object] | None = None, **fields: Any) -> Job:
        """Change the job's status (with `fields` and, in the same transaction, its
        outputs and deliveries where given) and log the change in one line."""
        moved = self.s.store.transition(job.job_id, status, message, by, due_at=due_at,
                                        job=job, **fields)
        if self.s.metrics is not None:
            self.s.metrics.status_changes.labels(status).inc()
        self.s.tick()
        logs.event(log, level, "job.status", job=job.job_id, order=job.order_id, status=status,
                   previous=job.status, by=by, message=message, **(log_fields or {}))
        return moved

    def _apply(self, job: Job, event: Event) -> Job:
        final = event.event in events.FINAL_EVENTS and job.status == states.CLEAN_UP
        if events.already_so(job, event.event,
                             self.s.store.history(job.job_id) if final else None):
            logs.event(log, logging.INFO, "event.already", **job.log_context(),
                       event=event.event, by=event.by)  # sent twice before it was applied
            self.s.store.finish_event(event.id)
            return job
        try:
            history = self.s.store.history(job.job_id) if event.event == "release" else None
            plan = events.plan(job, event.event, history)
            if event.event == "reopen" and not self.s.layout.sources_kept(job.job_id):
                raise RequestRefused(f"job {job.job_id}: its sources are no longer kept")
        except RequestRefused as exc:
            logs.event(log, logging.WARNING, "event.refused", **job.log_context(),
                       event=event.event, by=event.by, reason=str(exc))
            self.s.store.finish_event(event.id)
            return job
        if event.event in ("recreate", "reopen", "retry"):
            self._reset_deliveries(job, clear=event.event != "retry")
        message = event.message or events.default_message(event.event)
        if plan.note:
            self.s.store.note(job.job_id, plan.status, message, event.by or BY_DAEMON,
                              **plan.fields)
            if event.event == "renotify":
                self.s.store.enqueue(job.job_id, job.status, message)
            logs.event(log, logging.INFO, "job.noted", **job.log_context(), noted=plan.status,
                       by=event.by, message=message)
            self.s.store.finish_event(event.id)
            return self.s.store.get_job(job.job_id)
        job = self._move(job, plan.status, message, by=event.by or BY_DAEMON,
                         due_at=time.time(), **plan.fields)
        self.s.store.finish_event(event.id)
        return job

    def _reset_deliveries(self, job: Job, clear: bool) -> None:
        if clear:
            self.s.store.set_deliveries(job.job_id, [])
            return
        self.s.store.set_deliveries(job.job_id, [
            d if d.state == states.DELIVERED
            else replace(d, state=states.DELIVERY_PENDING, attempts=0, next_attempt_at=None,
                         permanent=False)
            for d in self.s.store.deliveries(job.job_id)
        ])

    # -- stages --------------------------------------------------------------

    def _sources(self, job: Job) -> list[tuple[Path, str]]:
        return [(self.s.layout.source_file(job.job_id, f.path), f.role) for f in job.ticket.files]

    def _gate(self, job: Job) -> Job:
        if job.status == states.ORDERED and job.created_at == job.updated_at:
            self._note_submitted(job)
        now = time.time()
        missing = self._collect_late_files(job)
        waiting_since = None
        if job.status == states.AWAITING_DATA:
            waiting_since = next(
                (h.at for h in reversed(self.s.store.history(job.job_id))
                 if h.status == states.AWAITING_DATA), None,
            )
        decision = gate.decide(
            job.ticket, job.approval, job.payment_status, now, missing, waiting_since,
            self.s.config.limits.awaiting_data_timeout_s,
        )
        if decision.status is None:
            return self._preflight(job)
        if decision.status == job.status:
            self.s.store.update_job(job.job_id, due_at=decision.due_at)
            return job.evolve(due_at=decision.due_at)
        return self._move(job, decision.status, decision.message, due_at=decision.due_at)

    def _note_submitted(self, job: Job) -> None:
        """A job taken in by another process (`outputd submit`) is logged as accepted by
        the daemon that first looks at it, as its own intake logs the jobs it takes in."""
        first = self.s.store.history(job.job_id)[:1]
        if first and first[0].by != BY_DAEMON:
            logs.event(log, logging.INFO, "job.accepted", job=job.job_id, order=job.order_id,
                       status=job.status, type=job.ticket.product.type,
                       files=len(job.ticket.files), by=first[0].by)

    def _collect_late_files(self, job: Job) -> list[str]:
        """Move files that have arrived in the intake since; return those still missing."""
        from outputd.intake.accept import take_late_file

        missing = []
        for f in job.ticket.files:
            target = self.s.layout.source_file(job.job_id, f.path)
            if not target.exists() and not take_late_file(self.s.layout, job.job_id, f.path):
                missing.append(f.path)
        return missing

    def _preflight(self, job: Job) -> Job:
        started = time.monotonic()
        try:
            report = self.s.pdf_call(
                "preflight", [(path, Path(path).name) for path, _ in self._sources(job)],
                job.ticket.product, self.s.config.limits.max_file_bytes,
                self.s.config.preflight)
        except StageError as exc:
            failed = preflight.Report((preflight.error("limits", str(exc), "the job"),))
            return self._move(job, states.VALIDATION_FAILED, str(exc),
                              preflight=failed.as_json(), level=logging.ERROR)
        timing = {"ms": self._timed("preflight", started)}
        if not report.ok:
            return self._move(job, states.VALIDATION_FAILED, report.summary(),
                              preflight=report.as_json(), level=logging.ERROR,
                              log_fields=timing)
        return self._move(job, states.VALIDATION_FINISHED, report.summary(),
                          due_at=time.time(), preflight=report.as_json(), log_fields=timing)

    def _assemble(self, job: Job) -> Job:
        if job.status != states.OUTPUT_CREATION_STARTED:
            job = self._move(job, states.OUTPUT_CREATION_STARTED, "making the print-ready file",
                             due_at=time.time())
        started = time.monotonic()
        try:
            outputs = self._clean_static(job) or self.s.pdf_call(
                "assemble", job.ticket, self._sources(job), self.s.layout.outputs(job.job_id))
        except (StageError, OSError) as exc:
            return self._move(job, states.OUTPUT_CREATION_FAILED, str(exc), level=logging.ERROR)
        names = ", ".join(o.name for o in outputs)
        timing = {"bytes": sum(o.bytes for o in outputs), "ms": self._timed("assemble", started)}
        return self._move(job, states.OUTPUT_CREATED, f"made {names}", due_at=time.time(),
                          outputs=outputs, deliveries=[], log_fields=timing)

    def _local_outputs(self, job: Job) -> dict[str, Output]:
        """The job's outputs, made again here when this node took the job over from
        another whose working folder it cannot see."""
        outputs = self.s.store.outputs(job.job_id)
        if all(Path(o.path).exists() for o in outputs):
            return {o.name: o for o in outputs}
        logs.event(log, logging.INFO, "output.rebuild", **job.log_context(),
                   reason="the working folder is not on this node")
        try:
            outputs = self.s.pdf_call("assemble", job.ticket, self._sources(job),
                                      self.s.layout.outputs(job.job_id))
        except StageError as exc:
            raise StageError(f"job {job.job_id}: cannot rebuild its output here: {exc}") \
                from exc
        self.s.store.set_outputs(job.job_id, outputs)
        return {o.name: o for o in outputs}

    def _clean_static(self, job: Job) -> list[Output] | None:
        """A static file preflight found clean needs no PDF parsing to pass on: placed
        here, saving a round trip to the PDF process."""
        files = (job.preflight or {}).get("files") or []
        if job.ticket.product.type != "static" or len(files) != 1:
            return None
        facts = files[0]
        if facts.get("resave", True) or not facts.get("pages"):
            return None
        source = self._sources(job)[0][0]
        known = self.s.layout.source_sha256(job.job_id).get(job.ticket.files[0].path)
        return [assemble.place_clean_static(job.ticket, source,
                                            self.s.layout.outputs(job.job_id),
                                            int(facts["pages"]), known)]

    def _deliver(self, job: Job) -> Job:
        store = self.s.store
        deliveries = store.deliveries(job.job_id)
        outputs = self._local_outputs(job)
        if not deliveries:
            where = route(self.s.config, job.ticket)
            if where.skip_reason is not None:
                return self._move(job, states.COPY_SKIPPED, where.skip_reason)
            try:
                deliveries = deliver.plan(where.to, list(outputs.values()), job.ticket,
                                          self.s.config.hotfolders)
            except OutputFailed as exc:  # two outputs to one path: nothing is sent
                return self._move(job, states.COPY_FAILED, f"{exc}; an operator must fix "
                                  "the config and retry (outputd retry)", level=logging.ERROR)
            store.set_deliveries(job.job_id, deliveries)
        paused = {name for name, st in store.hotfolder_states().items() if st["paused"]}
        tried_and_failed = interrupted = False
        results: list[Delivery] = []
        for d in deliveries:
            if not self._ready_to_send(d, results, paused):
                results.append(d)
                continue
            if self.s.stopping.is_set():
                interrupted = True
                results.append(d)
                continue
            done = self._attempt(job, d, outputs)
            interrupted |= done is d
            tried_and_failed |= done.state == states.DELIVERY_FAILED
            results.append(done)
        return self._settle(job, results, tried_and_failed, interrupted)

    @staticmethod
    def _ready_to_send(d: Delivery, earlier: list[Delivery], paused: set[str]) -> bool:
        """Not yet delivered, not paused, due, and (a sidecar) after its PDF."""
        if d.state in states.DELIVERY_DONE or d.hotfolder in paused:
            return False
        if d.state == states.DELIVERY_FAILED and (
                d.permanent or (d.next_attempt_at or 0) > time.time()):
            return False
        sidecar = deliver.sidecar_of(d)
        if sidecar is None:
            return True
        return any(e.hotfolder == d.hotfolder and e.output == sidecar[0]
                   and e.state == states.DELIVERED for e in earlier)

    def _attempt(self, job: Job, d: Delivery, outputs: dict[str, Output]) -> Delivery:
        if d.hotfolder not in self.s.config.hotfolders:
            done = replace(d, state=states.DELIVERY_FAILED, attempts=d.attempts + 1, permanent=True,
                           error=f"hot folder {d.hotfolder} is no longer configured")
        else:
            output = outputs.get(d.output) or deliver.make_sidecar(
                d, job.ticket, self.s.layout.outputs(job.job_id))
            started = time.monotonic()
            control = CopyControl(self.s.abort, self.s.tick)
            done = deliver.attempt(d, output, self.s.transports.get(d.hotfolder),
                                   self.s.policy, time.time(), control)
            seconds = time.monotonic() - started
            if done is d:
                logs.event(log, logging.WARNING, "delivery.interrupted", **job.log_context(),
                           hotfolder=d.hotfolder, path=d.path,
                           reason="outputd is stopping; it resumes at the next start")
                return d
            if self.s.metrics is not None:
                self.s.metrics.delivery(d.hotfolder, done.state, seconds, output.bytes)
            level = logging.INFO if done.state == states.DELIVERED else logging.WARNING
            if done.state == states.DELIVERY_FAILED and done.next_attempt_at is None:
                level = logging.ERROR
            logs.event(log, level, f"delivery.{done.state}", **job.log_context(),
                       hotfolder=d.hotfolder, bytes=output.bytes, ms=int(seconds * 1000),
                       path=done.path, attempt=done.attempts, error=done.error)
        self.s.store.update_delivery(job.job_id, done)
        return done

    def _settle(self, job: Job, results: list[Delivery], tried_and_failed: bool,
                interrupted: bool) -> Job:
        if all(d.state in states.DELIVERY_DONE for d in results):
            where = ", ".join(f"{d.hotfolder}:{d.path}" for d in results)
            return self._move(job, states.IN_HOT_FOLDER, f"delivered to {where}")
        failed = [d for d in results if d.state == states.DELIVERY_FAILED]
        retry_at = [d.next_attempt_at for d in failed if d.next_attempt_at is not None]
        due = min(retry_at) if retry_at else None
        if interrupted:
            due = time.time()  # cut short by a stop: resume at the next start
        if tried_and_failed or (failed and job.status != states.COPY_FAILED):
            first = failed[0]
            note = "" if due is not None else "; an operator must retry (outputd retry)"
            return self._move(job, states.COPY_FAILED,
                              f"{first.hotfolder}: {first.error}{note}", due_at=due,
                              level=logging.WARNING if due is not None else logging.ERROR)
        self.s.store.update_job(job.job_id, due_at=due)
        return job.evolve(due_at=due)

    def _timed(self, stage: str, started: float) -> int:
        seconds = time.monotonic() - started
        if self.s.metrics is not None:
            self.s.metrics.stage_seconds.labels(stage).observe(seconds)
        return int(seconds * 1000)

    def _delete_output(self, job: Job) -> Job:
        self.s.layout.clear_work(job.job_id)
        self.s.store.set_outputs(job.job_id, [])
        self.s.store.set_deliveries(job.job_id, [])
        return self._move(job, states.OUTPUT_DELETE, "old output removed", due_at=time.time())

    def _clean_up(self, job: Job) -> Job:
        """Clear the working folder; deliveries the order no longer needs are dropped,
        with any temp file a cut-short copy left in their hot folder."""
        deliveries = self.s.store.deliveries(job.job_id)
        dropped = [d for d in deliveries if d.state in states.DELIVERY_OPEN]
        for d in dropped:
            name = part_name(PurePosixPath(d.path).name)
            with contextlib.suppress(DeliveryError, ConfigError, KeyError):
                self.s.transports.get(d.hotfolder).remove(name)
        withdrawn: list[Delivery] = []
        message = "working folder cleared"
        if dropped:
            message += "; not delivered to " + ", ".join(sorted({d.hotfolder for d in dropped}))
        if job.cancelled:  # what the RIP has not taken is taken back
            found = deliver.withdraw(deliveries, self.s.store.outputs(job.job_id),
                                     self.s.transports.get)
            withdrawn = found.withdrawn
            message += found.summary()
            for d in withdrawn:
                logs.event(log, logging.INFO, "delivery.withdrawn", **job.log_context(),
                           hotfolder=d.hotfolder, path=d.path)
        self.s.layout.clear_work(job.job_id)
        changed = {id(d): replace(d, state=states.DELIVERY_SKIPPED,
                                  error=f"{job.status} before delivery") for d in dropped}
        changed.update({id(d): replace(d, state=states.WITHDRAWN, error="cancelled")
                        for d in withdrawn})
        return self._move(job, states.CLEAN_UP, message,
                          deliveries=[changed.get(id(d), d) for d in deliveries])

