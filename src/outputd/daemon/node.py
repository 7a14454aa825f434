"""`outputd run`: the store, the intake watcher, the workers and the scheduler."""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import signal
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from outputd import diskguard, logs, notifications, states
from outputd.config import Config, load_config
from outputd.daemon import nodes
from outputd.daemon import systemd as service
from outputd.daemon.metrics import Metrics, serve
from outputd.daemon.pickup import RECONCILE_S, PickupWatcher, watched_folders
from outputd.daemon.webchild import WebChild
from outputd.daemon.worker import Runtime, Services, Waker, Worker
from outputd.errors import ConfigError, RequestRefused
from outputd.intake.accept import Intake, lock_intake, take_late_file
from outputd.intake.watcher import SCAN_INTERVAL_S, IntakeWatcher
from outputd.layout import Layout
from outputd.model import JobFilter
from outputd.notifications.sender import Notifier
from outputd.pipeline.sandbox import PdfProcesses
from outputd.store import open_store
from outputd.transports import check_kinds

log = logging.getLogger(__name__)
DUE_POLL_S = 0.5
LATE_CHECK_S = 1.0  # a job's Late note comes within this of its due time (an index read)
DISK_CHECK_S = 5.0
WEB_CHECK_S = 2.0
STATUS_EVERY_S = 5.0
# Settings a running daemon cannot change; a reload keeps the old values and says so.
_RESTART_ONLY = ("daemon", "store", "metrics", "web")


class Daemon:
    """One node of outputd, from start-up to a clean stop."""

    def __init__(self, config: Config, config_path: str | None = None) -> None:
        check_kinds(config.hotfolders)
        self.config_path = config_path
        self.owner = nodes.node_id(config.daemon.node_id)
        self.layout = Layout(config)
        self.stopping = threading.Event()
        self.waker = Waker()
        self.store = open_store(config.store.url)
        self.metrics = Metrics(self.store)
        self.services = Services(
            Runtime.build(config), self.store, self.layout, self.stopping, threading.Event(),
            self.metrics, service.Progress(),
            PdfProcesses(config.limits.job_memory_mb, config.limits.job_timeout_s),
            functools.partial(take_late_file, self.layout),
        )
        self.low_space: str | None = None
        self._paused: set[str] = set()  # hot folders last seen paused (logged on change)
        self._wakeup = threading.Event()  # the main thread's: a signal arrived
        self._reload_requested = False
        self.intake = Intake(self.store, self.layout, self.owner,
                             notifications.Following(lambda: self.services.runtime.owed))
        self.watcher = IntakeWatcher(self.intake, config.daemon.intake_dir, self.waker.wake)
        self.metrics.intake_deferred.set_function(self.watcher.deferred_count)
        self.pickup = PickupWatcher(self.store, config.hotfolders, self.waker.wake)
        self.notifier = Notifier(self.store, lambda: self.config, self.owner, self.stopping)
        # Two threads serve every periodic job (all short); a bounded pool, not one
        # that grows with overlaps.
        self.scheduler = BackgroundScheduler(
            timezone="UTC", executors={"default": ThreadPoolExecutor(max_workers=2)})
        self.workers = [
            threading.Thread(target=self._work, name=f"worker-{n}", daemon=True)
            for n in range(config.daemon.workers)
        ]
        self.http: ThreadingHTTPServer | None = None
        self.web: WebChild | None = None

    @property
    def config(self) -> Config:
        return self.services.config

    # -- life cycle ----------------------------------------------------------

    def run(self) -> int:
        """Start every part, serve until a stop signal, then stop cleanly (exit status)."""
        self.layout.create()
        self._recover()
        if self.services.pdf is not None:
            self.services.pdf.prestart(len(self.workers))
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)
        if self.config.metrics.listen:
            self.http = serve(self.config.metrics.listen, self.metrics, self.health)
        if self.config.web.listen:
            self.web = WebChild(self.config_path)
            self.web.start()
        self._check_disk()
        for worker in self.workers:
            worker.start()
        threading.Thread(target=self.store.listen, args=(self.waker.wake, self.stopping),
                         name="store-listen", daemon=True).start()
        self.notifier_thread = threading.Thread(target=self.notifier.run, name="notifier",
                                                daemon=True)
        self.notifier_thread.start()
        self.watcher.start()
        self.pickup.start()
        logs.event(log, logging.INFO, "daemon.ready", node=self.owner,
                   workers=len(self.workers), intake=str(self.config.daemon.intake_dir),
                   store=_safe_url(self.config.store.url))
        service.ready(self._status_line())
        self._schedule()
        while not self.stopping.is_set():
            self._wakeup.wait(3600)
            self._wakeup.clear()
            if self._reload_requested and not self.stopping.is_set():
                self._reload_requested = False
                self.reload()
        return self._shutdown()

    def _recover(self) -> None:
        for owner in self.store.claims.owners():
            if nodes.is_gone(owner, self.owner):
                released = self.store.claims.release_owner(owner)
                logs.event(log, logging.INFO, "claims.recovered", node=owner, jobs=released)
        self._recover_intake_claims(at_start=True)

    def _recover_intake_claims(self, at_start: bool = False) -> None:
        self.intake.recover_claims(lambda owner: nodes.is_gone(owner, self.owner),
                                   stale_after_s=self.config.store.lease_s,
                                   include_own=at_start)

    def _schedule(self) -> None:
        lease = self.config.store.lease_s
        jobs: list[tuple[object, float]] = [
            (self._wake_if_due, DUE_POLL_S),
            (self._note_late, LATE_CHECK_S),
            (self.watcher.scan, SCAN_INTERVAL_S),
            (self._recover_intake_claims, max(lease / 2, 1.0)),
            (self._renew_claims, max(lease / 3, 0.5)),
            (self._check_disk, DISK_CHECK_S),
            (self._sweep_sources, 3600.0),
            (lambda: self.services.runtime.transports.sweep_all(), 3600.0),
            (self._report_status, STATUS_EVERY_S),
            (lambda: self.pickup.reconcile(), RECONCILE_S),  # whichever watcher is current
            (self._check_web, WEB_CHECK_S),
        ]
        interval = service.watchdog_interval()
        if interval is not None:
            jobs.append((self._pet_watchdog, interval))
            self._pet_watchdog()
        for func, seconds in jobs:
            self.scheduler.add_job(func, "interval", seconds=seconds, max_instances=1,
                                   coalesce=True, misfire_grace_time=None)
        self.scheduler.start()

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()
        self._wakeup.set()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._reload_requested = True
        self._wakeup.set()

    def reload(self) -> None:
        """Re-read the config: hot folders and routes change at once; an invalid config
        is refused and the old one stays in force."""
        service.reloading()
        old = self.config
        try:
            new = load_config(self.config_path)
            check_kinds(new.hotfolders)
        except ConfigError as exc:
            logs.event(log, logging.ERROR, "config.reload_refused", reason=str(exc))
            service.ready(self._status_line())
            return
        fixed = [key for key in _RESTART_ONLY if getattr(new, key) != getattr(old, key)]
        if fixed:
            logs.event(log, logging.WARNING, "config.needs_restart", sections=",".join(fixed))
        new = new.model_copy(update={key: getattr(old, key) for key in _RESTART_ONLY})
        self.services.runtime = Runtime.build(new, self.services.runtime)
        if watched_folders(new.hotfolders) != watched_folders(old.hotfolders):
            self.pickup.stop()
            self.pickup = PickupWatcher(self.store, new.hotfolders, self.waker.wake)
            self.pickup.start()
        for name, folder in new.hotfolders.items():
            if old.hotfolders.get(name) != folder:
                woken = self.store.hotfolders.retry(name)
                if woken:
                    logs.event(log, logging.INFO, "hotfolder.retry", hotfolder=name, jobs=woken,
                               reason="its config changed")
        logs.event(log, logging.INFO, "config.reloaded", hotfolders=",".join(new.hotfolders),
                   routes=len(new.routes))
        self._check_disk()
        self.waker.wake()
        service.ready(self._status_line())

    def _shutdown(self) -> int:
        grace = self.config.daemon.stop_grace_s
        logs.event(log, logging.INFO, "daemon.stopping", grace_s=grace)
        service.stopping()
        self.waker.wake()
        self.scheduler.shutdown(wait=True)
        self.watcher.stop()
        self.pickup.stop()
        deadline = time.monotonic() + grace
        for worker in self.workers:
            worker.join(timeout=max(deadline - time.monotonic(), 0))
        if any(w.is_alive() for w in self.workers):
            self.services.abort.set()  # cut in-flight copies short; temp files are removed
            for worker in self.workers:
                worker.join(timeout=10)
        self.notifier.wake.set()
        self.notifier_thread.join(timeout=15)
        if self.http is not None:
            self.http.shutdown()
        if self.web is not None:
            self.web.stop()
        self.store.claims.release_owner(self.owner)
        self.services.runtime.transports.close()
        if self.services.pdf is not None:
            self.services.pdf.close()
        self.store.close()
        logs.event(log, logging.INFO, "daemon.stopped", node=self.owner)
        return 0

    # -- health --------------------------------------------------------------

    def health(self) -> list[str]:
        """Why the daemon is unhealthy now; empty when it is healthy."""
        reasons = []
        try:
            self.store.ping()
        except Exception as exc:
            reasons.append(f"the store does not answer: {exc}")
        dead = [w.name for w in self.workers if not w.is_alive()]
        if dead and not self.stopping.is_set():
            reasons.append(f"workers not running: {', '.join(dead)}")
        if not self.watcher.alive() and not self.stopping.is_set():
            reasons.append("the intake folder is not being watched")
        wedged = self.services.progress.wedged(self.config.limits.job_timeout_s) \
            if self.services.progress else []
        if wedged:
            reasons.append(f"workers without progress: {', '.join(wedged)}")
        if self.low_space:
            reasons.append(self.low_space)
        return reasons

    def _pet_watchdog(self) -> None:
        """Pet only while the intake is watched and every worker is alive and idle or
        making progress, so that a wedged worker or a dead intake lets systemd's watchdog
        fire (and restart the daemon)."""
        progress = self.services.progress
        limit = max(self.config.limits.job_timeout_s, 2 * (service.watchdog_interval() or 0))
        if all(w.is_alive() for w in self.workers) and self.watcher.alive() and progress \
                and not progress.wedged(limit):
            service.pet()

    # -- periodic work -------------------------------------------------------

    def _wake_if_due(self) -> None:
        due = self.store.jobs.next_due()
        if due is not None and due <= time.time():
            self.waker.wake()

    def _note_late(self) -> None:
        for job_id in self.store.jobs.note_late(time.time(), self.services.runtime.owed):
            logs.event(log, logging.WARNING, "job.late", job=job_id,
                       then="not yet in a hot folder at its due time")

    def _check_web(self) -> None:
        if self.web is not None and not self.stopping.is_set():
            self.web.check()

    def _renew_claims(self) -> None:
        self.store.claims.renew(self.owner, self.config.store.lease_s)

    def _check_disk(self) -> None:
        reason = diskguard.low_space(self.config)
        if reason != self.low_space:
            if reason:
                logs.event(log, logging.ERROR, "disk.low", reason=reason)
            else:
                logs.event(log, logging.INFO, "disk.ok", reason="space returned; claiming again")
                self.waker.wake()
        self.low_space = reason

    def _sweep_sources(self) -> None:
        """Remove kept sources of jobs cleaned up longer ago than keep_sources_days."""
        cutoff = time.time() - self.config.cleanup.keep_sources_days * 86400
        for job in self.store.jobs.matching(JobFilter(status=states.CLEAN_UP)):
            if job.updated_at < cutoff and self.layout.sources(job.job_id).exists():
                self.layout.remove_sources(job.job_id)
                logs.event(log, logging.INFO, "sources.removed", job=job.job_id,
                           order=job.order_id, status=job.status)

    def _status_line(self) -> str:
        depth, _ = self.store.jobs.queue()
        busy = self.services.progress.busy_count() if self.services.progress else 0
        line = f"{depth} jobs due, {busy} of {len(self.workers)} workers busy"
        return f"{line}; {self.low_space}" if self.low_space else line

    def _report_status(self) -> None:
        service.status(self._status_line())
        self._log_pauses()

    def _log_pauses(self) -> None:
        """Say in the log when a hot folder is paused or resumed (by `outputd pause`,
        another process: seen within STATUS_EVERY_S)."""
        paused = self.store.hotfolders.paused()
        for name in sorted(paused - self._paused):
            logs.event(log, logging.WARNING, "hotfolder.paused", hotfolder=name,
                       then=f"deliveries to it wait until outputd resume {name}")
        for name in sorted(self._paused - paused):
            logs.event(log, logging.INFO, "hotfolder.resumed", hotfolder=name)
        self._paused = paused

    # -- workers -------------------------------------------------------------

    def _work(self) -> None:
        if self.services.pdf is not None:
            try:
                self.services.pdf.mine()  # start this worker's PDF process now
            except Exception:
                log.exception("pdf.start_failed")
        Worker(self.services).serve(self.owner, self.waker, lambda: self.low_space)


def _safe_url(url: str) -> str:
    """The store URL without a password."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def run(config: Config, config_path: str | None = None) -> int:
    """`outputd run`: one node, holding its intake and SQLite locks, until it stops."""
    logs.setup(config.daemon.log_format)
    Path(config.daemon.state_dir).mkdir(parents=True, exist_ok=True)
    daemon = Daemon(config, config_path)
    locks = [lock_intake(config.daemon.intake_dir, shared=daemon.store.shared)]
    try:
        if config.sqlite_path is not None:
            locks.append(lock_store(config.sqlite_path))
        return daemon.run()
    finally:
        for fd in locks:
            os.close(fd)


def lock_store(path: Path) -> int:
    """Hold a SQLite store alone for this daemon's life (two daemons on one SQLite file
    would both claim its jobs: several nodes need PostgreSQL). SQLite's own locks are
    POSIX record locks; this flock on the same file does not touch them."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RequestRefused(f"the store {path} is in use by another outputd; several "
                             "daemons share a store only when it is PostgreSQL") from None
    return fd
