"""Schema migrations, applied in order; the store records the version it reached.

Written in the SQL that SQLite and PostgreSQL share; `{serial}` stands for each engine's
auto-numbered key. Never edit a released step: add one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any


def _order_due(cur: Any) -> None:
    """Fill jobs.order_due_at from the tickets that carry a `due_at`."""
    rows = cur.execute("SELECT job_id, ticket FROM jobs WHERE ticket LIKE ?",
                       ('%"due_at": "%',)).fetchall()
    for job_id, ticket in rows:
        due = json.loads(ticket).get("due_at")
        if due:
            cur.execute("UPDATE jobs SET order_due_at = ? WHERE job_id = ?",
                        (datetime.fromisoformat(due).timestamp(), job_id))


def _rest_resting_jobs(cur: Any) -> None:
    """Empty the due time of every job in a resting status: stores written before the
    rule (store.jobs._due) kept one after a station scan or a release, and the workers
    claimed such jobs for nothing, over and over."""
    resting = (  # as states.RESTING was when this step was written
        "AwaitingParts", "AwaitingProof", "Blocked", "CleanUp", "CopyToHotFolderSkipped",
        "InArtworking", "InFinishing", "InHotFolder", "InPacking", "InProduction",
        "InReprographics", "OutputCreationFailed", "Printed", "ReadyForCollection",
        "Rejected", "UnapprovedOrder", "ValidationFailed",
    )
    cur.execute("UPDATE jobs SET due_at = NULL WHERE due_at IS NOT NULL AND status IN"
                f" ({', '.join('?' * len(resting))})", resting)


# A step is SQL, or a function of the migration's cursor for what SQL cannot say alike
# in both engines.
MIGRATIONS: list[list[str | Callable[[Any], None]]] = [
    [
        """CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL,
            storefront TEXT NOT NULL,
            test_mode INTEGER NOT NULL,
            product_type TEXT NOT NULL,
            sku TEXT NOT NULL,
            quantity INTEGER NOT NULL,
            username TEXT NOT NULL,
            email TEXT NOT NULL,
            status TEXT NOT NULL,
            payment_status TEXT NOT NULL,
            approval TEXT NOT NULL,
            cancelled INTEGER NOT NULL DEFAULT 0,
            priority INTEGER NOT NULL DEFAULT 0,
            ticket TEXT NOT NULL,
            ticket_sha256 TEXT NOT NULL,
            preflight TEXT,
            due_at DOUBLE PRECISION,
            claimed_by TEXT,
            claim_expires_at DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX jobs_due ON jobs (due_at) WHERE due_at IS NOT NULL",
        "CREATE INDEX jobs_order ON jobs (order_id)",
        "CREATE INDEX jobs_status ON jobs (status)",
        "CREATE INDEX jobs_storefront ON jobs (storefront)",
        "CREATE INDEX jobs_email ON jobs (email)",
        "CREATE INDEX jobs_username ON jobs (username)",
        "CREATE INDEX jobs_claimed ON jobs (claimed_by) WHERE claimed_by IS NOT NULL",
        """CREATE TABLE history (
            id {serial},
            job_id TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            message TEXT NOT NULL,
            by TEXT NOT NULL
        )""",
        "CREATE INDEX history_job ON history (job_id, id)",
        "CREATE INDEX history_status ON history (status, job_id)",
        """CREATE TABLE outputs (
            job_id TEXT NOT NULL,
            name TEXT NOT NULL,
            path TEXT NOT NULL,
            bytes BIGINT NOT NULL,
            sha256 TEXT NOT NULL,
            pages INTEGER NOT NULL,
            part INTEGER,
            role TEXT,
            PRIMARY KEY (job_id, name)
        )""",
        """CREATE TABLE deliveries (
            job_id TEXT NOT NULL,
            hotfolder TEXT NOT NULL,
            output TEXT NOT NULL,
            path TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            next_attempt_at DOUBLE PRECISION,
            permanent INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (job_id, hotfolder, output)
        )""",
        """CREATE TABLE events (
            id {serial},
            job_id TEXT NOT NULL,
            event TEXT NOT NULL,
            by TEXT NOT NULL,
            message TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            applied_at DOUBLE PRECISION
        )""",
        "CREATE INDEX events_pending ON events (job_id) WHERE applied_at IS NULL",
        """CREATE TABLE hotfolders (
            name TEXT PRIMARY KEY,
            paused INTEGER NOT NULL DEFAULT 0,
            last_success_at DOUBLE PRECISION,
            last_error TEXT,
            last_error_at DOUBLE PRECISION
        )""",
    ],
    [
        "CREATE INDEX deliveries_path ON deliveries (path)",
    ],
    [
        # Every claim, for auditing that a job never runs on two nodes at once.
        """CREATE TABLE claim_log (
            id {serial},
            job_id TEXT NOT NULL,
            owner TEXT NOT NULL,
            claimed_at DOUBLE PRECISION NOT NULL,
            released_at DOUBLE PRECISION
        )""",
        "CREATE INDEX claim_log_job ON claim_log (job_id, claimed_at)",
    ],
    [
        # The durable outbox: notifications owed by a status change, written with it.
        """CREATE TABLE outbox (
            id {serial},
            job_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            target TEXT NOT NULL,
            status TEXT NOT NULL,
            message TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            last_error TEXT,
            claimed_by TEXT,
            claim_expires_at DOUBLE PRECISION
        )""",
        "CREATE INDEX outbox_due ON outbox (kind, next_attempt_at) WHERE state = 'pending'",
        "CREATE INDEX outbox_job ON outbox (job_id, target, id) WHERE state = 'pending'",
    ],
    [
        # People (the board) and machines (the API), each with a role and the
        # storefronts they are limited to (a JSON list; empty: every one). Secrets are
        # kept only as slow salted hashes.
        """CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            storefronts TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            password_changed_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE tokens (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            storefronts TEXT NOT NULL,
            token_id TEXT NOT NULL UNIQUE,
            secret_hash TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION
        )""",
    ],
    [
        # The default view of the job list (newest first, cancelled ones left out) reads
        # its first page from here instead of sorting every job.
        "CREATE INDEX jobs_newest ON jobs (created_at DESC, job_id)",
    ],
    [
        # Board sessions (by the sha256 of their cookie) and the one-time setup link
        # that creates the first admin (by the sha256 of its secret).
        """CREATE TABLE sessions (
            id_sha256 TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            csrf TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX sessions_user ON sessions (username)",
        """CREATE TABLE setup (
            secret_sha256 TEXT PRIMARY KEY,
            created_at DOUBLE PRECISION NOT NULL
        )""",
    ],
    [
        # When the order must be out (the ticket's due_at), for the late jobs: read by an
        # index instead of every open job's ticket.
        "ALTER TABLE jobs ADD COLUMN order_due_at DOUBLE PRECISION",
        "CREATE INDEX jobs_order_due ON jobs (order_due_at) WHERE order_due_at IS NOT NULL",
        _order_due,
    ],
    [
        # When a late job's `Late` note was written (0: its due time passed and it was
        # not late). The watch index holds only jobs whose due time is still to settle.
        "ALTER TABLE jobs ADD COLUMN late_noted_at DOUBLE PRECISION",
        "CREATE INDEX jobs_late_watch ON jobs (order_due_at)"
        " WHERE late_noted_at IS NULL AND order_due_at IS NOT NULL",
    ],
    [
        _rest_resting_jobs,
    ],
]
