"""What each event or operator request does to a job, checked against the state machine.

The CLI and the intake use `plan()` to refuse a request before recording it; the worker
uses it again when it applies the request, since the job may have moved on meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from outputd import states
from outputd.errors import RequestRefused
from outputd.model import HistoryEntry, Job

# Event name → the status it records.
_RECORDS: dict[str, str] = {
    "paid": states.PAID,
    "approved": states.APPROVED,
    "rejected": states.REJECTED,
    "shipped": states.SHIPPED,
    "ready_for_collection": states.READY_FOR_COLLECTION,
    "completed": states.COMPLETED,
    "cancelled": states.CANCELLED,
    "recreate": states.RECREATION_REQUESTED,
    "reopen": states.REOPENED,
    "hold": states.BLOCKED,
    **states.STATIONS,
    "override": states.VALIDATION_FINISHED,  # a person takes a failed preflight on
    "verified": states.VERIFIED,
    # Internal: the RIP took the file out of a watched hot folder.
    "picked_up": states.IN_PRODUCTION,
}
# Columns an event sets along with its status.
_FIELDS: dict[str, dict[str, Any]] = {
    "paid": {"payment_status": "Paid"},
    "approved": {"approval": "Approved"},
    "rejected": {"approval": "Rejected"},
    "cancelled": {"cancelled": True},
    "reopen": {"cancelled": False},  # the job is live again: listed, and cancellable
}
# Facts about the order that a hold must not lose: recorded, and the job stays Blocked.
_NOTED_WHILE_HELD = ("paid", "approved")


@dataclass(frozen=True)
class Plan:
    """The status change a request makes, with the columns it sets."""

    status: str
    fields: dict[str, Any] = field(default_factory=dict)
    note: bool = False  # a history entry only: the job's status stays as it is


def plan(job: Job, event: str, history: list[HistoryEntry] | None = None) -> Plan:
    """The change `event` makes to `job` now; raise RequestRefused if it is not allowed.

    `release` needs the job's history to find the status it was held in.
    """
    if event == "renotify":
        return Plan(states.MIS_RETRIGGER, note=True)
    if event == "retry":
        target = states.RETRY_FROM.get(job.status)
        if target is None:
            raise RequestRefused(
                f"job {job.job_id} is {job.status}; only a failed validation, output or "
                "delivery can be retried"
            )
        return Plan(target)
    if event == "override" and job.status != states.VALIDATION_FAILED:
        raise RequestRefused(f"job {job.job_id} is {job.status}; only a job that failed "
                             "preflight (ValidationFailed) can be overridden")
    if event == "rejected" and job.status == states.AWAITING_PROOF:
        return Plan(states.REJECTED)  # the proof, not the order's approval
    if event == "release":
        if job.status != states.BLOCKED:
            raise RequestRefused(f"job {job.job_id} is {job.status}, not Blocked")
        return Plan(released_status(job, history or []))
    target = _RECORDS.get(event)
    if target is None:
        raise RequestRefused(f"unknown event {event!r}")
    if job.status == states.BLOCKED and target not in states.TRANSITIONS[states.BLOCKED] - (
        states.HOLDABLE
    ):
        if event in _NOTED_WHILE_HELD:
            return Plan(target, dict(_FIELDS.get(event, {})), note=True)
        raise RequestRefused(f"job {job.job_id} is Blocked; release it before {event}")
    if not states.allowed(job.status, target):
        raise RequestRefused(f"job {job.job_id} is {job.status}; {event} is not allowed now")
    return Plan(target, dict(_FIELDS.get(event, {})))


# Events that ask for a state of the order, so that asking again is a no-op.
_FACTS: dict[str, Any] = {
    "paid": lambda job: job.payment_status == "Paid",
    "approved": lambda job: job.approval == "Approved",
    "rejected": lambda job: job.approval == "Rejected" or job.status == states.REJECTED,
    "cancelled": lambda job: job.cancelled,
    "hold": lambda job: job.status == states.BLOCKED,
    "verified": lambda job: job.status == states.VERIFIED,
    # the RIP took the file after the floor moved the job on: nothing to record
    "picked_up": lambda job: (job.status in states.DELIVERED_OR_LATER
                              and job.status not in (states.IN_HOT_FOLDER,
                                                     states.COPY_SKIPPED)),
    # a second scan at the same station
    **{event: (lambda job, status=status: job.status == status)
       for event, status in states.STATIONS.items()},
}
FINAL_EVENTS = ("shipped", "ready_for_collection", "completed")


def already_so(job: Job, event: str, history: list[HistoryEntry] | None = None) -> bool:
    """Whether `event` asks for what is already so (`paid` on a paid job, `shipped` on
    a shipped one, even after its clean-up): recording it again would change nothing,
    so a storefront that retries is told it succeeded. `history` is needed for the
    order's final events once the job is cleaned up."""
    fact = _FACTS.get(event)
    if fact is not None:
        return bool(fact(job))
    if event not in FINAL_EVENTS:
        return False
    target = _RECORDS[event]
    if job.status == target:
        return True
    if job.status == states.CLEAN_UP and history:
        shown = [h.status for h in history if h.status not in states.NOTES]
        return len(shown) >= 2 and shown[-2] == target
    return False


_ASKED = frozenset({"recreate", "reopen", "hold", "release", "retry", "renotify", "picked_up",
                    "override"})


def default_message(event: str) -> str:
    """What the history says of an event that came without a message: `marked paid`,
    `marked ready for collection`, `recreate requested`."""
    if event in _ASKED:
        return f"{event} requested"
    return f"marked {event.replace('_', ' ')}"


# A status that waits for a fact about the order, and the event that records it: a job
# held there while the fact was recorded is released to the fact's status instead, so
# that it takes effect (asking again would be "already so").
_WAITS_FOR: dict[str, str] = {states.UNAPPROVED_ORDER: "approved"}


def released_status(job: Job, history: list[HistoryEntry]) -> str:
    """Where `release` takes a Blocked job: back to the status it was held in, or, where
    that status waits for a fact recorded meanwhile (an approval), to the fact's status.
    Statuses of the gate need no such rule: the gate reads payment and approval again."""
    held = held_status(history)
    waits_for = _WAITS_FOR.get(held)
    if waits_for is not None and _FACTS[waits_for](job):
        return _RECORDS[waits_for]
    return held


def held_status(history: list[HistoryEntry]) -> str:
    """The status a Blocked job was in before its latest hold (notes passed over)."""
    for index in range(len(history) - 1, 0, -1):
        if history[index].status == states.BLOCKED:
            for earlier in reversed(history[:index]):
                if earlier.status not in states.NOTES:
                    return earlier.status
    return states.ORDERED
