"""`outputd run`: the store, the intake watcher, the workers and the scheduler."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler

from outputd import logs, nodes, states
from outputd.config import Config
from outputd.intake import Intake
from outputd.layout import Layout
from outputd.model import JobFilter
from outputd.notify import sd_notify
from outputd.pickup import PickupWatcher
from outputd.runner import ERROR_BACKOFF_S, Runner, Services
from outputd.store import open_store
from outputd.transports import TransportPool, check_kinds
from outputd.watcher import SCAN_INTERVAL_S, IntakeWatcher

log = logging.getLogger(__name__)
DUE_POLL_S = 0.5
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


class Daemon:
    """One node of outputd, from start-up to a clean stop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.owner = nodes.node_id(config.daemon.node_id)
        self.layout = Layout(config)
        self.stopping = threading.Event()
        self.abort = threading.Event()
        self.waker = Waker()
        check_kinds(config.hotfolders)
        self.store = open_store(config.store.url)
        self.services = Services(
            config, self.store, self.layout,
            TransportPool(config.hotfolders, sweep_older_than_s=config.store.lease_s),
            self.stopping, self.abort,
        )
        self.intake = Intake(self.store, self.layout, self.owner)
        self.watcher = IntakeWatcher(self.intake, config.daemon.intake_dir, self.waker.wake)
        self.pickup = PickupWatcher(self.store, config.hotfolders, self.waker.wake)
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.workers = [
            threading.Thread(target=self._work, name=f"worker-{n}", daemon=True)
            for n in range(config.daemon.workers)
        ]

    # -- life cycle ----------------------------------------------------------

    def run(self) -> int:
        self.layout.create()
        self._recover()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)
        for worker in self.workers:
            worker.start()
        self.watcher.start()
        self.pickup.start()
        self._schedule()
        logs.event(log, logging.INFO, "daemon.ready", node=self.owner,
                   workers=len(self.workers), intake=str(self.config.daemon.intake_dir),
                   store=_safe_url(self.config.store.url))
        sd_notify("READY=1\nSTATUS=" + self._status_line())
        while not self.stopping.wait(3600):
            pass
        return self._shutdown()

    def _recover(self) -> None:
        for owner in self.store.claim_owners():
            if nodes.is_gone(owner, self.owner):
                released = self.store.release_owner(owner)
                logs.event(log, logging.INFO, "claims.recovered", node=owner, jobs=released)
        self.intake.recover_claims(lambda owner: nodes.is_gone(owner, self.owner))

    def _schedule(self) -> None:
        lease = self.config.store.lease_s
        jobs = (
            (self._wake_if_due, DUE_POLL_S),
            (self.watcher.scan, SCAN_INTERVAL_S),
            (self._renew_claims, max(lease / 3, 0.5)),
            (self._sweep_sources, 3600.0),
        )
        for func, seconds in jobs:
            self.scheduler.add_job(func, "interval", seconds=seconds, max_instances=1,
                                   coalesce=True, misfire_grace_time=None)
        self.scheduler.start()

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        log.warning("daemon.reload_unsupported",
                    extra={"fields": {"reason": "restart the service to apply a new config"}})

    def _shutdown(self) -> int:
        grace = self.config.daemon.stop_grace_s
        logs.event(log, logging.INFO, "daemon.stopping", grace_s=grace)
        sd_notify("STOPPING=1")
        self.waker.wake()
        self.scheduler.shutdown(wait=True)
        self.watcher.stop()
        self.pickup.stop()
        deadline = time.monotonic() + grace
        for worker in self.workers:
            worker.join(timeout=max(deadline - time.monotonic(), 0))
        if any(w.is_alive() for w in self.workers):
            self.abort.set()  # cut in-flight copies short; their temp files are removed
            for worker in self.workers:
                worker.join(timeout=10)
        self.store.release_owner(self.owner)
        self.services.transports.close()
        self.store.close()
        logs.event(log, logging.INFO, "daemon.stopped", node=self.owner)
        return 0

    # -- periodic work -------------------------------------------------------

    def _wake_if_due(self) -> None:
        due = self.store.next_due()
        if due is not None and due <= time.time():
            self.waker.wake()

    def _renew_claims(self) -> None:
        self.store.renew_claims(self.owner, self.config.store.lease_s)

    def _sweep_sources(self) -> None:
        """Remove kept sources of jobs cleaned up longer ago than keep_sources_days."""
        cutoff = time.time() - self.config.cleanup.keep_sources_days * 86400
        for job in self.store.list_jobs(JobFilter(status=states.CLEAN_UP)):
            if job.updated_at < cutoff and self.layout.sources(job.job_id).exists():
                self.layout.remove_sources(job.job_id)
                logs.event(log, logging.INFO, "sources.removed", job=job.job_id,
                           order=job.order_id, status=job.status)

    def _status_line(self) -> str:
        depth, _ = self.store.queue()
        return f"{depth} jobs due"

    # -- workers -------------------------------------------------------------

    def _work(self) -> None:
        runner = Runner(self.services)
        lease = self.config.store.lease_s
        while not self.stopping.is_set():
            seen = self.waker.generation
            try:
                job = self.store.claim(self.owner, lease)
            except Exception:
                log.exception("worker.claim_failed")
                self.stopping.wait(IDLE_WAIT_S)
                continue
            if job is None:
                self.waker.wait(seen, IDLE_WAIT_S)
                continue
            try:
                runner.process(job)
            except Exception:
                log.exception("job.crashed", extra={
                    "fields": {**job.log_context(), "retry_in_s": ERROR_BACKOFF_S}})
                self.store.update_job(job.job_id, due_at=time.time() + ERROR_BACKOFF_S)
            finally:
                self.store.release(job.job_id, self.owner)


def _safe_url(url: str) -> str:
    """The store URL without a password."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def run(config: Config) -> int:
    logs.setup(config.daemon.log_format)
    Path(config.daemon.state_dir).mkdir(parents=True, exist_ok=True)
    return Daemon(config).run()
