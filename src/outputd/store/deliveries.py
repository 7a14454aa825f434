"""What a job made and where it went: outputs, deliveries, and the hot folders' state."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from outputd import states
from outputd.model import Delivery, Output
from outputd.store.engine import Cursor, Engine, marks

_DELIVERING = sorted(states.DELIVERING)  # the statuses the delivery stage works, in order


class Deliveries:
    """A job's outputs and its deliveries to hot folders."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    def outputs(self, job_id: str) -> list[Output]:
        """What the job made, parts in order."""
        return self.outputs_of([job_id]).get(job_id, [])

    def outputs_of(self, job_ids: Sequence[str]) -> dict[str, list[Output]]:
        """The outputs of several jobs in one query, by job id."""
        found: dict[str, list[Output]] = {}
        if not job_ids:
            return found
        with self.db.reader() as cur:
            rows = cur.execute(
                "SELECT job_id, name, path, bytes, sha256, pages, part, role FROM outputs"
                f" WHERE job_id IN ({marks(len(job_ids))})"
                " ORDER BY job_id, COALESCE(part, 0), name", list(job_ids),
            ).fetchall()
        for row in rows:
            found.setdefault(row[0], []).append(Output(*row[1:]))
        return found

    def of(self, job_id: str) -> list[Delivery]:
        """The job's deliveries, by hot folder and output."""
        return self.of_jobs([job_id]).get(job_id, [])

    def of_jobs(self, job_ids: Sequence[str]) -> dict[str, list[Delivery]]:
        """The deliveries of several jobs in one query, by job id."""
        found: dict[str, list[Delivery]] = {}
        if not job_ids:
            return found
        with self.db.reader() as cur:
            rows = cur.execute(
                "SELECT job_id, hotfolder, output, path, state, attempts, error,"
                " next_attempt_at, permanent FROM deliveries WHERE job_id IN"
                f" ({marks(len(job_ids))}) ORDER BY job_id, hotfolder, output",
                list(job_ids),
            ).fetchall()
        for r in rows:
            found.setdefault(r[0], []).append(Delivery(
                hotfolder=r[1], output=r[2], path=r[3], state=r[4], attempts=r[5],
                error=r[6], next_attempt_at=r[7], permanent=bool(r[8])))
        return found

    def delivered_at(self, path: str) -> list[str]:
        """Jobs in InHotFolder with a delivered file at `path`."""
        with self.db.reader() as cur:
            rows = cur.execute(
                "SELECT d.job_id FROM deliveries d JOIN jobs j ON j.job_id = d.job_id"
                " WHERE d.path = ? AND d.state = 'delivered' AND j.status = ?",
                (path, states.IN_HOT_FOLDER),
            ).fetchall()
        return [row[0] for row in rows]

    def waiting_files(self, hotfolder: str, since: float | None = None
                      ) -> list[tuple[str, str, float]]:
        """(job id, path, time it went InHotFolder) of files delivered to `hotfolder`
        whose jobs are still InHotFolder, those older than `since` only when given."""
        sql = (
            "SELECT d.job_id, d.path, j.updated_at FROM deliveries d"
            " JOIN jobs j ON j.job_id = d.job_id"
            " WHERE d.hotfolder = ? AND d.state = 'delivered' AND j.status = ?"
        )
        params: list[Any] = [hotfolder, states.IN_HOT_FOLDER]
        if since is not None:
            sql += " AND j.updated_at < ?"
            params.append(since)
        with self.db.reader() as cur:
            rows = cur.execute(sql + " ORDER BY j.updated_at", params).fetchall()
        return [(row[0], row[1], row[2]) for row in rows]

    def failed_at(self, hotfolder: str) -> list[str]:
        """Jobs in CopyToHotFolderFailed whose delivery to `hotfolder` failed, by id."""
        with self.db.reader() as cur:
            rows = cur.execute(
                "SELECT DISTINCT d.job_id FROM deliveries d JOIN jobs j ON j.job_id = d.job_id"
                " WHERE d.hotfolder = ? AND d.state = 'failed' AND j.status = ?"
                " ORDER BY d.job_id", (hotfolder, states.COPY_FAILED)).fetchall()
        return [row[0] for row in rows]

    def waiting_for(self, hotfolder: str) -> int:
        """How many jobs have a delivery to `hotfolder` still to make (it is paused)."""
        with self.db.reader() as cur:
            row = cur.execute(
                "SELECT COUNT(DISTINCT d.job_id) FROM deliveries d"
                " JOIN jobs j ON j.job_id = d.job_id WHERE d.hotfolder = ?"
                " AND d.state IN ('pending', 'failed')"
                f" AND j.status IN ({marks(len(_DELIVERING))})",
                (hotfolder, *_DELIVERING)).fetchone()
        return int(row[0])


class HotFolders:
    """The hot folders' state: paused, last success, last error."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    def paused(self) -> set[str]:
        """The names of the hot folders that are paused now."""
        with self.db.reader() as cur:
            rows = cur.execute("SELECT name FROM hotfolders WHERE paused = 1").fetchall()
        return {row[0] for row in rows}

    def set_paused(self, hotfolder: str, paused: bool) -> None:
        with self.db.transaction() as cur:
            _hotfolder_row(cur, hotfolder)
            cur.execute(
                "UPDATE hotfolders SET paused = ? WHERE name = ?", (int(paused), hotfolder)
            )

    def states(self) -> dict[str, dict[str, Any]]:
        with self.db.reader() as cur:
            rows = cur.execute(
                "SELECT name, paused, last_success_at, last_error, last_error_at FROM hotfolders"
            ).fetchall()
        return {
            row[0]: {"paused": bool(row[1]), "last_success_at": row[2], "last_error": row[3],
                     "last_error_at": row[4]}
            for row in rows
        }

    def wake(self, hotfolder: str) -> None:
        """Make jobs whose deliveries waited for a paused hot folder due now."""
        with self.db.transaction() as cur:
            cur.execute(
                f"UPDATE jobs SET due_at = ? WHERE status IN ({marks(len(_DELIVERING))})"
                " AND job_id IN (SELECT job_id FROM deliveries WHERE hotfolder = ?"
                " AND state <> 'delivered')",
                (time.time(), *_DELIVERING, hotfolder),
            )
            self.db.notify(cur)

    def retry(self, hotfolder: str) -> int:
        """Make failed deliveries to `hotfolder` pending again (its config changed);
        returns how many jobs this wakes."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = NULL,"
                " permanent = 0 WHERE hotfolder = ? AND state = 'failed'", (hotfolder,))
            done = cur.execute(
                f"UPDATE jobs SET due_at = ? WHERE status IN ({marks(len(_DELIVERING))})"
                " AND job_id IN (SELECT job_id FROM deliveries WHERE hotfolder = ?"
                " AND state = 'pending')",
                (time.time(), *_DELIVERING, hotfolder),
            )
            self.db.notify(cur)
        return int(done.rowcount)


def put_outputs(cur: Cursor, job_id: str, outputs: Sequence[Output]) -> None:
    """Replace a job's outputs, in the caller's transaction."""
    cur.execute("DELETE FROM outputs WHERE job_id = ?", (job_id,))
    for o in outputs:
        cur.execute(
            "INSERT INTO outputs (job_id, name, path, bytes, sha256, pages, part, role)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, o.name, o.path, o.bytes, o.sha256, o.pages, o.part, o.role),
        )


def record_health(cur: Cursor, delivery: Delivery, now: float) -> None:
    """A delivery attempt's mark on its hot folder: last success or last error."""
    if delivery.state == states.DELIVERED:
        _hotfolder_row(cur, delivery.hotfolder)
        cur.execute("UPDATE hotfolders SET last_success_at = ? WHERE name = ?",
                    (now, delivery.hotfolder))
    elif delivery.state == states.DELIVERY_FAILED:
        _hotfolder_row(cur, delivery.hotfolder)
        cur.execute(
            "UPDATE hotfolders SET last_error = ?, last_error_at = ? WHERE name = ?",
            (delivery.error, now, delivery.hotfolder))


def put_delivery(cur: Cursor, job_id: str, d: Delivery) -> None:
    """Write one delivery of a job, in the caller's transaction."""
    cur.execute(
        "DELETE FROM deliveries WHERE job_id = ? AND hotfolder = ? AND output = ?",
        (job_id, d.hotfolder, d.output),
    )
    cur.execute(
        "INSERT INTO deliveries (job_id, hotfolder, output, path, state, attempts, error,"
        " next_attempt_at, permanent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (job_id, d.hotfolder, d.output, d.path, d.state, d.attempts, d.error,
         d.next_attempt_at, int(d.permanent)),
    )


def _hotfolder_row(cur: Cursor, name: str) -> None:
    # ON CONFLICT: two nodes may record the first delivery to a hot folder at once.
    cur.execute("INSERT INTO hotfolders (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
                (name,))
