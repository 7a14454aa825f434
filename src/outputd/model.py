"""Records the store hands out: a job, its outputs, deliveries, history and events."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from outputd.tickets import JobTicket

BY_DAEMON = "outputd"


class _Keep:
    """A job's `due_at` left as it is (None means "no scheduled work")."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


def iso(at: float | None) -> str | None:
    """An epoch time as ISO 8601 UTC with millisecond precision, or None."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


# Tickets never change once accepted, and a job is read again and again while it is
# worked: each ticket text is parsed once. Small: each entry holds a ticket and its text.
@functools.lru_cache(maxsize=256)
def _parse_ticket(text: str) -> JobTicket:
    from outputd.tickets import JobTicket

    return JobTicket.model_validate_json(text)


@functools.lru_cache(maxsize=256)
def _ticket_data(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass(frozen=True)
class Job:
    """A job as the store holds it; evolve() gives a changed copy.

    The ticket is kept as the JSON text the store holds and validated into a JobTicket
    on first use: the read-only commands show a job from `ticket_data` alone, without
    loading the validation models.
    """

    job_id: str
    ticket_text: str
    status: str
    payment_status: str
    approval: str
    cancelled: bool
    created_at: float
    updated_at: float
    due_at: float | None = None
    preflight: dict[str, Any] | None = None
    ticket_sha256: str = ""

    @property
    def ticket(self) -> JobTicket:
        return _parse_ticket(self.ticket_text)

    @property
    def ticket_data(self) -> dict[str, Any]:
        """The ticket as JSON data, field names as the schema spells them; shared
        between reads of the job, so never changed in place."""
        return _ticket_data(self.ticket_text)

    @property
    def order_id(self) -> str:
        return str(self.ticket_data["order_id"])

    def evolve(self, **changes: Any) -> Job:
        return replace(self, **changes)

    def log_context(self) -> dict[str, Any]:
        return {"job": self.job_id, "order": self.order_id, "status": self.status}


@dataclass(frozen=True)
class Output:
    """One print-ready file made for a job, in its working folder."""

    name: str
    path: str
    bytes: int
    sha256: str
    pages: int
    part: int | None = None
    role: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One output's copy to one hot folder."""

    hotfolder: str
    output: str
    path: str
    state: str  # pending | delivered | failed | skipped
    attempts: int = 0
    error: str | None = None
    next_attempt_at: float | None = None
    permanent: bool = False


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a job's history: when, which status, why, by whom."""
    at: float
    status: str
    message: str
    by: str


@dataclass(frozen=True)
class Event:
    """An event or operator request waiting for the daemon to apply it."""

    id: int
    job_id: str
    event: str
    by: str
    message: str
    at: float


@dataclass(frozen=True)
class JobFilter:
    """What `outputd jobs` asks for; None means any."""

    status: str | None = None
    order_id: str | None = None
    storefront: str | None = None
    product_type: str | None = None
    search: str | None = None
    history_status: str | None = None
    cancelled: bool | None = None
    test_mode: bool | None = None
    payment_status: str | None = None
    approval: str | None = None
    limit: int | None = None
    storefronts: frozenset[str] = frozenset()  # only these (empty: any), for limited callers
    status_not_in: frozenset[str] = frozenset()  # none of these statuses
    due_before: float | None = None  # the ticket's due_at is before this time
    after: tuple[float, str] | None = None  # (created_at, job_id) of the last job seen


@dataclass(frozen=True)
class Result:
    """What one stage (or one applied event) did to a job: the worker commits it, with
    the event it applied, in one transaction.

    `status` None leaves the status as it is; with `note`, `status` is a history entry
    that does not change the job's status. `due_at` KEEP leaves the job's time to be
    looked at again as it is, except that a new status without one rests the job.
    `outputs` and `deliveries` replace the job's when given; `tried` are the deliveries
    attempted now (for the hot folders' health).
    """

    status: str | None = None
    message: str = ""
    by: str = BY_DAEMON
    due_at: float | None | _Keep = KEEP  # when to look at the job again
    fields: Mapping[str, Any] = field(default_factory=dict)  # payment_status, approval, ...
    outputs: Sequence[Output] | None = None
    deliveries: Sequence[Delivery] | None = None
    tried: Sequence[Delivery] = ()
    note: bool = False
    renotify: bool = False  # owe the webhooks of the job's current status again
    event_id: int | None = None  # the recorded event this applies
    level: int = logging.INFO  # of the `job.status` log line
    log: Mapping[str, object] = field(default_factory=dict)  # more fields for that line

    def applying(self, event_id: int) -> Result:
        """This result, marking the event `event_id` as applied."""
        return replace(self, event_id=event_id)
