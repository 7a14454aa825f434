"""Claims: which node works on which job, under a lease that expires with a dead node."""

from __future__ import annotations

import time
from typing import Any

from outputd import states
from outputd.model import Job
from outputd.store.engine import Cursor, Engine, marks
from outputd.store.jobs import Jobs

# Higher priority first; among equal priorities the order due first (DESIGN §15), then
# the one that came first.
_ORDER = ("j.priority DESC, (j.order_due_at IS NULL), j.order_due_at, j.created_at,"
          " j.job_id")


class Claims:
    """Leases on jobs; one transaction per call."""

    def __init__(self, db: Engine, jobs: Jobs) -> None:
        self.db = db
        self.jobs = jobs

    def take(self, owner: str, lease_s: float) -> Job | None:
        """Take the next job that has work (pending events first, then due work by
        priority, the order's due time and arrival) under a lease, or None."""
        now = time.time()
        free = "(j.claimed_by IS NULL OR j.claim_expires_at < ?)"
        with self.db.transaction() as cur:
            row = cur.execute(
                "SELECT j.job_id FROM jobs j WHERE j.job_id IN"
                " (SELECT e.job_id FROM events e WHERE e.applied_at IS NULL)"
                f" AND {free} ORDER BY {_ORDER} LIMIT 1"
                + self.db.row_lock("j"),
                (now,),
            ).fetchone()
            if row is not None and cur.execute(
                    "SELECT 1 FROM events WHERE job_id = ? AND applied_at IS NULL LIMIT 1",
                    (row[0],)).fetchone() is None:
                # PostgreSQL: another node applied the event and released the job while
                # this statement ran; the lock re-checked the job's row, not its events.
                row = None
            if row is None:
                row = cur.execute(
                    f"SELECT j.job_id FROM jobs j WHERE j.due_at <= ? AND {free}"
                    f" ORDER BY {_ORDER} LIMIT 1"
                    + self.db.row_lock("j"),
                    (now, now),
                ).fetchone()
            if row is None:
                return None
            cur.execute(
                "UPDATE jobs SET claimed_by = ?, claim_expires_at = ? WHERE job_id = ?",
                (owner, now + lease_s, row[0]),
            )
            cur.execute(
                "INSERT INTO claim_log (job_id, owner, claimed_at) VALUES (?, ?, ?)",
                (row[0], owner, now),
            )
        return self.jobs.get(row[0])

    def renew(self, owner: str, lease_s: float) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE jobs SET claim_expires_at = ? WHERE claimed_by = ?",
                (time.time() + lease_s, owner),
            )

    def release(self, job_id: str, owner: str, worked: bool = True) -> None:
        """End `owner`'s claim of the job. A claim that did nothing (`worked` false)
        leaves no row in the claim log: the log grows with work, not with looks."""
        with self.db.transaction() as cur:
            done = cur.execute(
                "UPDATE jobs SET claimed_by = NULL, claim_expires_at = NULL"
                " WHERE job_id = ? AND claimed_by = ?",
                (job_id, owner),
            )
            if not done.rowcount:
                return
            if worked:
                _log_release(cur, owner, job_id)
                self.db.notify(cur)
                return
            cur.execute("DELETE FROM claim_log WHERE owner = ? AND job_id = ?"
                        " AND released_at IS NULL", (owner, job_id))
            resting = sorted(states.RESTING)  # a due time the store's rule forbids: mended
            cur.execute("UPDATE jobs SET due_at = NULL WHERE job_id = ? AND status IN"
                        f" ({marks(len(resting))})", (job_id, *resting))

    def owners(self) -> list[str]:
        with self.db.reader() as cur:
            rows = cur.execute(
                "SELECT DISTINCT claimed_by FROM jobs WHERE claimed_by IS NOT NULL"
            ).fetchall()
        return [row[0] for row in rows]

    def release_owner(self, owner: str) -> int:
        """Release every claim of `owner` (a stopped node); returns how many."""
        with self.db.transaction() as cur:
            done = cur.execute(
                "UPDATE jobs SET claimed_by = NULL, claim_expires_at = NULL WHERE claimed_by = ?",
                (owner,),
            )
            count = int(done.rowcount)
            _log_release(cur, owner)
            if count:
                self.db.notify(cur)
        return count


def _log_release(cur: Cursor, owner: str, job_id: str | None = None) -> None:
    sql = "UPDATE claim_log SET released_at = ? WHERE owner = ? AND released_at IS NULL"
    params: list[Any] = [time.time(), owner]
    if job_id is not None:
        sql += " AND job_id = ?"
        params.append(job_id)
    cur.execute(sql, params)

