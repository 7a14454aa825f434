"""The jobs and their history, and the events recorded for them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from outputd import states
from outputd.errors import TicketError, UnknownJob
from outputd.model import KEEP, Event, HistoryEntry, Job, JobFilter, Result, _Keep, iso
from outputd.store.deliveries import put_delivery, put_outputs, record_health
from outputd.store.engine import Cursor, Engine, marks
from outputd.store.outbox import OutboxPolicy, enqueue

if TYPE_CHECKING:
    from outputd.tickets import JobTicket

_JOB_COLUMNS = (
    "job_id, ticket, status, payment_status, approval, cancelled, created_at, updated_at, "
    "due_at, preflight, ticket_sha256"
)



class DuplicateJob(TicketError):
    """A job with this id exists; `identical` says whether its ticket had the same bytes."""

    def __init__(self, job_id: str, identical: bool) -> None:
        reason = "is identical to" if identical else "differs from"
        super().__init__(f"job {job_id} already exists and this ticket {reason} its ticket")
        self.job_id = job_id
        self.identical = identical


class Jobs:
    """Jobs, their status and history; one transaction per call."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    def add(
        self, ticket: JobTicket, ticket_sha256: str, status: str, message: str, by: str,
        due_at: float | None, owed: OutboxPolicy | None = None,
    ) -> Job:
        """Insert a job with its first history entry; raise DuplicateJob if the id exists."""
        from outputd.tickets import ticket_json  # only writers pay for the ticket models

        now = time.time()
        with self.db.transaction() as cur:
            row = cur.execute(
                "SELECT ticket_sha256 FROM jobs WHERE job_id = ?", (ticket.job_id,)
            ).fetchone()
            if row is not None:
                raise DuplicateJob(ticket.job_id, identical=row[0] == ticket_sha256)
            cur.execute(
                "INSERT INTO jobs (job_id, order_id, storefront, test_mode, product_type, sku,"
                " quantity, username, email, status, payment_status, approval, priority,"
                " ticket, ticket_sha256, due_at, created_at, updated_at, order_due_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ticket.job_id, ticket.order_id, ticket.storefront, int(ticket.test_mode),
                    ticket.product.type, ticket.product.sku, ticket.quantity,
                    ticket.customer.username.lower(), ticket.customer.email.lower(), status,
                    ticket.payment_status, ticket.approval, ticket.priority,
                    json.dumps(ticket_json(ticket)), ticket_sha256, _due(status, due_at),
                    now, now,
                    ticket.due_at.timestamp() if ticket.due_at else None,
                ),
            )
            _append_history(cur, ticket.job_id, now, status, message, by)
            enqueue(cur, ticket.job_id, status, message, now, owed)
            self.db.notify(cur)
        return self.get(ticket.job_id)

    def find(self, job_id: str) -> Job | None:
        with self.db.reader() as cur:
            row = cur.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return _job(row) if row else None

    def get(self, job_id: str) -> Job:
        job = self.find(job_id)
        if job is None:
            raise UnknownJob(job_id)
        return job

    def matching(self, query: JobFilter) -> list[Job]:
        where, params = _filter_sql(query)
        # Late jobs are few: read them by their due time's index and sort them, rather
        # than walk every job newest first (`+` keeps the planner off jobs_newest).
        newest = "+created_at" if query.due_before is not None else "created_at"
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs{where} ORDER BY {newest} DESC, job_id"
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        with self.db.reader() as cur:
            return [_job(row) for row in cur.execute(sql, params).fetchall()]

    def count(self, query: JobFilter) -> int:
        where, params = _filter_sql(query)
        with self.db.reader() as cur:
            return int(cur.execute(f"SELECT COUNT(*) FROM jobs{where}", params).fetchone()[0])

    def of_order(self, order_id: str) -> list[tuple[str, str]]:
        """(storefront, job id) of every job of an order id, in any storefront."""
        with self.db.reader() as cur:
            rows = cur.execute(
                "SELECT storefront, job_id FROM jobs WHERE order_id = ?"
                " ORDER BY created_at, job_id", (order_id,),
            ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def save(self, job: Job, result: Result, owed: OutboxPolicy | None = None) -> Job:
        """Commit what a stage did to `job` in one transaction: its status change (as the
        transition table allows) or note with the history entry and the notifications it
        owes, its outputs and deliveries, the hot folders' health, when to look again, and
        the event it applied. `owed` says which notifications a status change owes.
        A sooner due time set by someone else since `job` was read (a hot folder resumed
        or retried while the stage ran) is kept. Returns the job as it is now."""
        now = time.time()
        changes: dict[str, Any] = dict(result.fields)
        due_at = result.due_at
        if result.status is not None and not result.note:
            changes["status"] = result.status
            if due_at is KEEP:
                due_at = None  # a new status without a time to look again rests the job
        with self.db.transaction() as cur:
            row = cur.execute("SELECT status, due_at FROM jobs WHERE job_id = ?"
                              + self.db.write_lock(), (job.job_id,)).fetchone()
            if row is None:
                raise UnknownJob(job.job_id)
            if "status" in changes:
                states.check(job.job_id, row[0], changes["status"])
            due_at = _due(changes.get("status", row[0]), _woken(due_at, row[1], job.due_at))
            if result.outputs is not None:
                put_outputs(cur, job.job_id, result.outputs)
            if result.deliveries is not None:
                cur.execute("DELETE FROM deliveries WHERE job_id = ?", (job.job_id,))
                for d in result.deliveries:
                    put_delivery(cur, job.job_id, d)
            for d in result.tried:
                record_health(cur, d, now)
            touched = bool(changes) or due_at is not KEEP or result.status is not None
            if touched:
                _update(cur, job.job_id, now, due_at=due_at, **changes)
            if result.status is not None:
                _append_history(cur, job.job_id, now, result.status, result.message,
                                     result.by)
            if "status" in changes:
                enqueue(cur, job.job_id, changes["status"], result.message, now, owed)
            elif result.renotify:
                enqueue(cur, job.job_id, row[0], result.message, now, owed, ("webhook",))
            if result.event_id is not None:
                cur.execute("UPDATE events SET applied_at = ? WHERE id = ?",
                            (now, result.event_id))
        if job.status != row[0]:  # moved on under us (an event applied elsewhere)
            return self.get(job.job_id)
        if not touched:
            return job
        if due_at is not KEEP:
            changes["due_at"] = due_at
        return job.evolve(**changes, updated_at=now)

    def transition(self, job_id: str, status: str, message: str, by: str, *,
                   due_at: float | None | _Keep = KEEP, owed: OutboxPolicy | None = None,
                   **fields: Any) -> Job:
        """Change a job's status as the transition table allows, with its history entry
        (`fields`: other job columns set in the same transaction)."""
        return self.save(self.get(job_id), Result(status, message, by, due_at, fields),
                         owed)

    def note(self, job_id: str, status: str, message: str, by: str, **fields: Any) -> None:
        """A history entry that leaves the job's status as it is (with `fields` set)."""
        now = time.time()
        with self.db.transaction() as cur:
            _update(cur, job_id, now, due_at=KEEP, **fields)
            _append_history(cur, job_id, now, status, message, by)

    def update(self, job_id: str, *, due_at: float | None | object = KEEP,
                   **fields: Any) -> None:
        """Change columns without a status change (no history entry)."""
        with self.db.transaction() as cur:
            if due_at is not KEEP:
                row = cur.execute("SELECT status FROM jobs WHERE job_id = ?",
                                  (job_id,)).fetchone()
                due_at = _due(row[0] if row else "", due_at)
            _update(cur, job_id, time.time(), due_at=due_at, **fields)

    def remove(self, job_ids: Iterable[str]) -> None:
        with self.db.transaction() as cur:
            for job_id in job_ids:
                for table in ("history", "outputs", "deliveries", "events", "claim_log",
                              "outbox", "jobs"):
                    cur.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))

    def history(self, job_id: str) -> list[HistoryEntry]:
        """The job's history, oldest first."""
        return self.histories([job_id]).get(job_id, [])

    def histories(self, job_ids: Sequence[str]) -> dict[str, list[HistoryEntry]]:
        """The histories of several jobs in one query, by job id."""
        found: dict[str, list[HistoryEntry]] = {}
        if not job_ids:
            return found
        with self.db.reader() as cur:
            rows = cur.execute(
                "SELECT job_id, at, status, message, by FROM history WHERE job_id IN"
                f" ({marks(len(job_ids))}) ORDER BY id", list(job_ids),
            ).fetchall()
        for row in rows:
            found.setdefault(row[0], []).append(HistoryEntry(*row[1:]))
        return found

    def note_late(self, now: float, owed: OutboxPolicy | None = None) -> list[str]:
        """Settle every job whose ticket's due time has passed since the last call: one
        not yet in a hot folder (nor cancelled) gets its one `Late` history note, with
        the notifications it owes; any other is marked as never late. Returns the jobs
        noted late. Each job is settled once (jobs.late_noted_at), across restarts."""
        noted = []
        with self.db.transaction() as cur:
            rows = cur.execute(
                "SELECT j.job_id, j.status, j.cancelled, j.order_due_at FROM jobs j"
                " WHERE j.late_noted_at IS NULL AND j.order_due_at IS NOT NULL"
                " AND j.order_due_at <= ?" + self.db.row_lock("j"), (now,)).fetchall()
            for job_id, status, cancelled, due in rows:
                if status in states.DELIVERED_OR_LATER or cancelled:
                    cur.execute("UPDATE jobs SET late_noted_at = 0 WHERE job_id = ?",
                                (job_id,))
                    continue
                message = f"due at {iso(due)}, and not yet in a hot folder (it is {status})"
                cur.execute("UPDATE jobs SET late_noted_at = ? WHERE job_id = ?",
                            (now, job_id))
                _append_history(cur, job_id, now, states.LATE, message, "outputd")
                enqueue(cur, job_id, states.LATE, message, now, owed)
                noted.append(job_id)
        return noted

    def marker(self) -> tuple[int, int]:
        """The newest history entry's and event's ids: whatever changes a job changes
        one of them, so a page built from the store is the same while they are."""
        with self.db.reader() as cur:
            row = cur.execute("SELECT (SELECT COALESCE(MAX(id), 0) FROM history),"
                              " (SELECT COALESCE(MAX(id), 0) FROM events)").fetchone()
        return int(row[0]), int(row[1])

    def counts(self) -> dict[str, int]:
        with self.db.reader() as cur:
            rows = cur.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {row[0]: int(row[1]) for row in rows}

    def queue(self) -> tuple[int, Job | None]:
        """How many jobs have work due now, and the one waiting longest."""
        now = time.time()
        with self.db.reader() as cur:
            depth = cur.execute("SELECT COUNT(*) FROM jobs WHERE due_at <= ?", (now,)).fetchone()
            row = cur.execute(
                "SELECT job_id FROM jobs WHERE due_at <= ? ORDER BY updated_at LIMIT 1", (now,)
            ).fetchone()
        return int(depth[0]), (self.find(row[0]) if row else None)

    def next_due(self) -> float | None:
        """When the earliest scheduled work falls due (events count as due now)."""
        with self.db.reader() as cur:
            if cur.execute("SELECT 1 FROM events WHERE applied_at IS NULL LIMIT 1").fetchone():
                return time.time()
            row = cur.execute("SELECT MIN(due_at) FROM jobs WHERE due_at IS NOT NULL").fetchone()
        return row[0]


class Events:
    """Events and operator requests recorded for the daemon to apply."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    def add(self, job_ids: Sequence[str], event: str, by: str, message: str) -> None:
        """Record an event for each job in one transaction; the daemon applies them."""
        now = time.time()
        with self.db.transaction() as cur:
            for job_id in job_ids:
                cur.execute(
                    "INSERT INTO events (job_id, event, by, message, at) VALUES (?, ?, ?, ?, ?)",
                    (job_id, event, by, message, now),
                )
            self.db.notify(cur)

    def pending(self, job_id: str) -> list[Event]:
        with self.db.reader() as cur:
            rows = cur.execute(
                "SELECT id, job_id, event, by, message, at FROM events"
                " WHERE job_id = ? AND applied_at IS NULL ORDER BY id",
                (job_id,),
            ).fetchall()
        return [Event(*row) for row in rows]


def _due(status: str, due_at: Any) -> Any:
    """The due time a job in `status` may have: a job in a resting status (one no stage
    works) is never due, whatever a caller asked, so no worker ever claims it for nothing."""
    return due_at if status in states.WORKED or due_at is KEEP else None


def _woken(due_at: Any, stored: float | None, seen: float | None) -> Any:
    """The due time to save over `stored`: a wake-up set by someone else since the job
    was read as due at `seen` (a hot folder resumed while the stage copied to another)
    is not lost to a stage that found nothing more due; the sooner time wins."""
    if due_at is KEEP or stored is None or stored == seen:
        return due_at
    return stored if due_at is None else min(due_at, stored)


def _append_history(
    cur: Cursor, job_id: str, at: float, status: str, message: str, by: str
) -> None:
    cur.execute(
        "INSERT INTO history (job_id, at, status, message, by) VALUES (?, ?, ?, ?, ?)",
        (job_id, at, status, message, by),
    )

def _update(cur: Cursor, job_id: str, now: float, *, due_at: Any, **fields: Any) -> None:
    allowed = {"status", "payment_status", "approval", "cancelled", "preflight"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"cannot set job columns {sorted(unknown)}")
    values = dict(fields)
    if due_at is not KEEP:
        values["due_at"] = due_at
    if "preflight" in values and values["preflight"] is not None:
        values["preflight"] = json.dumps(values["preflight"])
    if "cancelled" in values:
        values["cancelled"] = int(values["cancelled"])
    values["updated_at"] = now
    assignments = ", ".join(f"{column} = ?" for column in values)
    cur.execute(
        f"UPDATE jobs SET {assignments} WHERE job_id = ?", (*values.values(), job_id)
    )


def _job(row: Sequence[Any]) -> Job:
    return Job(
        job_id=row[0],
        ticket_text=row[1],
        status=row[2],
        payment_status=row[3],
        approval=row[4],
        cancelled=bool(row[5]),
        created_at=row[6],
        updated_at=row[7],
        due_at=row[8],
        preflight=orjson.loads(row[9]) if row[9] else None,
        ticket_sha256=row[10],
    )


def _filter_sql(query: JobFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("status", query.status), ("order_id", query.order_id),
        ("storefront", query.storefront), ("product_type", query.product_type),
        ("payment_status", query.payment_status), ("approval", query.approval),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if query.storefronts:
        clauses.append(f"storefront IN ({marks(len(query.storefronts))})")
        params += sorted(query.storefronts)
    if query.due_before is not None:
        clauses.append("order_due_at < ?")
        params.append(query.due_before)
    if query.status_not_in:
        clauses.append(f"status NOT IN ({marks(len(query.status_not_in))})")
        params += sorted(query.status_not_in)
    if query.after is not None:  # the next page, newest first
        clauses.append("(created_at < ? OR (created_at = ? AND job_id > ?))")
        params += [query.after[0], query.after[0], query.after[1]]
    if query.cancelled is not None:
        clauses.append("cancelled = ?")
        params.append(int(query.cancelled))
    if query.test_mode is not None:
        clauses.append("test_mode = ?")
        params.append(int(query.test_mode))
    if query.history_status is not None:
        clauses.append("job_id IN (SELECT job_id FROM history WHERE status = ?)")
        params.append(query.history_status)
    if query.search:
        text = query.search.strip()
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(
            "(" + " OR ".join(
                f"{column} LIKE ? ESCAPE '\\'"
                for column in ("job_id", "order_id", "username", "email")
            ) + ")"
        )
        params += [like, like, like.lower(), like.lower()]
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    return where, params

