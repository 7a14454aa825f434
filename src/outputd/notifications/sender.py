"""Works the outbox: webhooks in order per job, mails grouped into summaries in a burst.

A notification that cannot be delivered never blocks production: it only waits in the
outbox, retried with the `[retry]` back-off (webhooks without a limit on attempts, so a
receiver down for hours still gets every event, in order, when it returns).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from outputd import logs, states
from outputd.config import Config, EmailConfig
from outputd.errors import DeliveryError
from outputd.model import BY_DAEMON
from outputd.notifications import email, webhook
from outputd.retry import RetryPolicy
from outputd.store import Store
from outputd.store.outbox import Notification

log = logging.getLogger(__name__)
MIS_NOTIFIED, MIS_FAILED, MIS_RETRIGGER = states.MIS_NOTIFIED, states.MIS_FAILED, \
    states.MIS_RETRIGGER
SENT_EMAIL, SENT_EMAIL_FAILED = states.SENT_EMAIL, states.SENT_EMAIL_FAILED
IDLE_S = 0.5
EMAIL_EVERY_S = 1.0


def reason_key(n: Notification) -> str:
    """What failures have in common when one cause hits many jobs: the text before the
    first colon (a hot folder's name, a check's file), else the whole message."""
    return n.message.split(":", 1)[0].strip() or n.message


class Notifier:
    """One thread per daemon sending what the outbox owes."""

    def __init__(self, store: Store, config: Callable[[], Config], owner: str,
                 stopping: threading.Event) -> None:
        self.store = store
        self.config = config
        self.owner = owner
        self.stopping = stopping
        self.wake = threading.Event()
        self._last_email = 0.0

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                busy = self._one_webhook()
                if time.monotonic() - self._last_email >= EMAIL_EVERY_S:
                    self._last_email = time.monotonic()
                    self._emails()
            except Exception:
                log.exception("notify.crashed")
                busy = False
            if not busy:
                self.wake.wait(IDLE_S)
                self.wake.clear()

    def _lease(self) -> float:
        return self.config().store.lease_s

    def _one_webhook(self) -> bool:
        n = self.store.outbox.next_webhook(self.owner, self._lease())
        if n is None:
            return False
        config = self.config()
        target = next((w for w in config.notify.webhooks if w.url == n.target), None)
        if target is None:
            self.store.outbox.failed(n.id, "this webhook is no longer configured", None)
            return True
        if n.attempts:
            self.store.jobs.note(n.job_id, MIS_RETRIGGER, f"retry {n.attempts} of {n.status} to "
                            f"{webhook.shown(n.target)}", BY_DAEMON)
        try:
            code = webhook.post(target, n.body.encode())
        except DeliveryError as exc:
            retry_at = RetryPolicy(config.retry).next_attempt(n.attempts + 1, exc, time.time(),
                                                              give_up=False)
            self.store.outbox.failed(n.id, str(exc), retry_at)
            self.store.jobs.note(n.job_id, MIS_FAILED, f"{n.status}: {exc}", BY_DAEMON)
            logs.event(log, logging.WARNING, "notify.webhook_failed", job=n.job_id,
                       status=n.status, url=webhook.shown(n.target), attempt=n.attempts + 1,
                       error=str(exc))
            return True
        self.store.outbox.sent(n.id)
        self.store.jobs.note(n.job_id, MIS_NOTIFIED,
                        f"{n.status} sent to {webhook.shown(n.target)} (HTTP {code})", BY_DAEMON)
        logs.event(log, logging.INFO, "notify.webhook_sent", job=n.job_id, status=n.status,
                   url=webhook.shown(n.target))
        return True

    def _emails(self) -> None:
        config = self.config()
        cfg = config.notify.email
        due = self.store.outbox.due_emails(self.owner, self._lease(), time.time() - cfg.batch_s)
        if not due:
            return
        groups: dict[tuple[str, str], list[Notification]] = defaultdict(list)
        for n in due:
            groups[(n.status, reason_key(n))].append(n)
        policy = RetryPolicy(config.retry)
        for (status, reason), notes in groups.items():
            summary = len(notes) > cfg.summary_after
            for covered in [notes] if summary else [[n] for n in notes]:
                self._send_mail(cfg, status, reason, covered, summary, policy)

    def _send_mail(self, cfg: EmailConfig, status: str, reason: str,
                   covered: list[Notification], summary: bool, policy: RetryPolicy) -> None:
        """Compose and send one mail; if it fails, that is one failed attempt of this
        mail's notifications alone, never of the others due in the same round."""
        try:
            if summary:
                mail = email.compose_summary(cfg, status, reason, covered)
            else:
                mail = email.compose_one(cfg, covered[0])
            email.send(cfg, mail)
        except Exception as exc:  # noqa: BLE001 - a mail that cannot be made fails alone
            if not isinstance(exc, DeliveryError):
                exc = DeliveryError(f"the mail cannot be composed: {exc}")
            for n in covered:
                attempts = n.attempts + 1
                retry_at = policy.next_attempt(attempts, exc, time.time())
                self.store.outbox.failed(n.id, str(exc), retry_at)
                self.store.jobs.note(n.job_id, SENT_EMAIL_FAILED, f"{n.status}: {exc}", BY_DAEMON)
            logs.event(log, logging.WARNING, "notify.email_failed", jobs=len(covered),
                       error=str(exc))
            return
        noted = f" (in a summary of {len(covered)})" if summary else ""
        for n in covered:
            self.store.outbox.sent(n.id)
            self.store.jobs.note(n.job_id, SENT_EMAIL, f"{n.status} mailed to "
                            f"{', '.join(cfg.to)}{noted}", BY_DAEMON)
        logs.event(log, logging.INFO, "notify.email_sent", jobs=len(covered))
