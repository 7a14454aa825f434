"""The durable outbox: notifications written in the same transaction as the status
change that owes them, then claimed and sent by the notifier."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from outputd.store.engine import Cursor, Engine


@dataclass(frozen=True)
class StatusChange:
    """What a notification tells: a job's status change, its outputs and deliveries."""

    job_id: str
    order_id: str
    storefront: str
    status: str
    message: str
    at: float
    outputs: list[dict[str, Any]]  # name, bytes, sha256, pages
    deliveries: list[dict[str, Any]]  # hotfolder, path, state, attempts, error


class OutboxPolicy(Protocol):
    """Which notifications a status change owes, and the body each carries (built by
    the notifications package, which knows what its receivers expect)."""

    def owed(self, status: str) -> Sequence[tuple[str, str]]:
        """(kind, target) pairs: ("webhook", url) or ("email", "email")."""
        ...

    def body(self, change: StatusChange) -> str:
        """The stored body of a notification of `change`."""
        ...


@dataclass(frozen=True)
class Notification:
    """A notification waiting in the outbox."""
    id: int
    job_id: str
    kind: str
    target: str
    status: str
    message: str
    body: str
    created_at: float
    attempts: int


_COLUMNS = "id, job_id, kind, target, status, message, body, created_at, attempts"


class Outbox:
    """Notifications waiting to be sent, claimed by the notifier of one node at a time."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    def _claim(self, where: str, params: Sequence[Any], owner: str, lease_s: float,
               limit: int | None) -> list[Notification]:
        """Claim pending notifications matching `where` (alias `o`), oldest first."""
        now = time.time()
        sql = (f"SELECT {', '.join('o.' + c for c in _COLUMNS.split(', '))} FROM outbox o"
               " WHERE o.state = 'pending' AND o.next_attempt_at <= ?"
               " AND (o.claimed_by IS NULL OR o.claim_expires_at < ?) AND " + where
               + " ORDER BY o.id" + (f" LIMIT {limit}" if limit else "") + self.db.row_lock("o"))
        with self.db.transaction() as cur:
            rows = cur.execute(sql, (now, now, *params)).fetchall()
            for row in rows:
                cur.execute(
                    "UPDATE outbox SET claimed_by = ?, claim_expires_at = ? WHERE id = ?",
                    (owner, now + lease_s, row[0]))
        return [Notification(*row) for row in rows]

    def next_webhook(self, owner: str, lease_s: float) -> Notification | None:
        """Claim the next due webhook whose job has nothing older pending for that URL."""
        claimed = self._claim(
            "o.kind = 'webhook' AND NOT EXISTS (SELECT 1 FROM outbox p"
            " WHERE p.job_id = o.job_id AND p.target = o.target AND p.state = 'pending'"
            " AND p.id < o.id)", (), owner, lease_s, limit=1)
        return claimed[0] if claimed else None

    def due_emails(self, owner: str, lease_s: float, older_than: float) -> list[Notification]:
        """Claim every pending mail created before `older_than` and due now."""
        return self._claim("o.kind = 'email' AND o.created_at <= ?", (older_than,), owner,
                           lease_s, limit=None)

    def sent(self, notification_id: int) -> None:
        with self.db.transaction() as cur:
            cur.execute("UPDATE outbox SET state = 'sent', attempts = attempts + 1,"
                        " claimed_by = NULL, last_error = NULL WHERE id = ?",
                        (notification_id,))

    def failed(self, notification_id: int, error: str,
                            next_attempt_at: float | None) -> None:
        """Record a failed attempt: retry at `next_attempt_at`, or give up (None)."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, claimed_by = NULL,"
                " state = ?, next_attempt_at = ? WHERE id = ?",
                (error, "pending" if next_attempt_at is not None else "failed",
                 next_attempt_at if next_attempt_at is not None else time.time(),
                 notification_id),
            )

    def depth(self) -> int:
        with self.db.reader() as cur:
            row = cur.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()
        return int(row[0])


def enqueue(cur: Cursor, job_id: str, status: str, message: str, at: float,
            policy: OutboxPolicy | None, kinds: Sequence[str] = ("webhook", "email")) -> None:
    """Owe the notifications of a status change, in the transaction that makes it."""
    owed = [(k, t) for k, t in (policy.owed(status) if policy else ()) if k in kinds]
    if not owed or policy is None:
        return
    job = cur.execute("SELECT order_id, storefront FROM jobs WHERE job_id = ?",
                      (job_id,)).fetchone()
    outputs = cur.execute(
        "SELECT name, bytes, sha256, pages FROM outputs WHERE job_id = ? ORDER BY name",
        (job_id,)).fetchall()
    deliveries = cur.execute(
        "SELECT hotfolder, path, state, attempts, error FROM deliveries WHERE job_id = ?"
        " ORDER BY hotfolder, output", (job_id,)).fetchall()
    change = StatusChange(
        job_id, job[0], job[1], status, message, at,
        [dict(zip(("name", "bytes", "sha256", "pages"), o, strict=True)) for o in outputs],
        [dict(zip(("hotfolder", "path", "state", "attempts", "error"), d, strict=True))
         for d in deliveries])
    for kind, target in owed:
        cur.execute(
            "INSERT INTO outbox (job_id, kind, target, status, message, body, created_at,"
            " state, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            (job_id, kind, target, status, message, policy.body(change), at, at),
        )
