"""Job statuses, their groups, and the one table of allowed transitions.

Names are the storefront's print-operations statuses, spelled exactly so. Nothing
outside this module decides whether a status change is allowed.
"""

from __future__ import annotations

from outputd.errors import TransitionRefused

ORDERED = "Ordered"
FUTURE_ORDER = "FutureOrder"
UNAPPROVED_ORDER = "UnapprovedOrder"
AWAITING_DATA = "AwaitingData"
VALIDATION_FINISHED = "ValidationFinished"
VALIDATION_FAILED = "ValidationFailed"
OUTPUT_CREATION_STARTED = "OutputCreationStarted"
OUTPUT_CREATED = "OutputCreated"
OUTPUT_CREATION_FAILED = "OutputCreationFailed"
IN_HOT_FOLDER = "InHotFolder"
COPY_FAILED = "CopyToHotFolderFailed"
COPY_SKIPPED = "CopyToHotFolderSkipped"
IN_PRODUCTION = "InProduction"
RECREATION_REQUESTED = "RecreationRequested"
OUTPUT_DELETE = "OutputDelete"
CLEAN_UP = "CleanUp"
BLOCKED = "Blocked"
AWAITING_PROOF = "AwaitingProof"  # a route's proof checkpoint: a person verifies the output
VERIFIED = "Verified"
# Recorded when an event says so.
PAID = "Paid"
APPROVED = "Approved"
REJECTED = "Rejected"
SHIPPED = "Shipped"
READY_FOR_COLLECTION = "ReadyForCollection"
COMPLETED = "Completed"
CANCELLED = "Cancelled"
REOPENED = "Reopened"
# Production stations, recorded by their events (a scan of the job sheet's barcode).
IN_ARTWORKING = "InArtworking"
IN_REPROGRAPHICS = "InReprographics"
PRINTED = "Printed"
IN_FINISHING = "InFinishing"
IN_PACKING = "InPacking"
AWAITING_PARTS = "AwaitingParts"
STATIONS: dict[str, str] = {
    "artworking": IN_ARTWORKING, "reprographics": IN_REPROGRAPHICS, "printed": PRINTED,
    "finishing": IN_FINISHING, "packing": IN_PACKING, "awaiting_parts": AWAITING_PARTS,
}
STATION_STATUSES: frozenset[str] = frozenset(STATIONS.values())

# The state of one delivery (one output to one hot folder).
DELIVERY_PENDING = "pending"
DELIVERED = "delivered"
DELIVERY_FAILED = "failed"
DELIVERY_SKIPPED = "skipped"  # not needed any more: the order finished before it was made
WITHDRAWN = "withdrawn"  # taken back from the hot folder: cancelled, or output made again
DELIVERY_DONE: frozenset[str] = frozenset({DELIVERED, DELIVERY_SKIPPED})
DELIVERY_OPEN: frozenset[str] = frozenset({DELIVERY_PENDING, DELIVERY_FAILED})

# History entries that leave the job's status as it is (notifications).
MIS_NOTIFIED = "MisNotified"
MIS_FAILED = "MisFailed"
MIS_RETRIGGER = "MisNotificationRetrigger"
SENT_EMAIL = "SentEmail"
SENT_EMAIL_FAILED = "SentEmailFailed"
JOB_DATA_DELETED = "JobDataDeleted"
LATE = "Late"  # the ticket's due_at passed before the job reached a hot folder
# The events a ticket or `outputd event` may carry (schema outputd.event/1).
EVENTS = (
    "paid", "approved", "rejected", "shipped", "ready_for_collection", "completed",
    "cancelled", "recreate", "reopen", "hold", "release", "renotify", *STATIONS,
    "override", "verified",
)

NOTES: frozenset[str] = frozenset({
    MIS_NOTIFIED, MIS_FAILED, MIS_RETRIGGER, SENT_EMAIL, SENT_EMAIL_FAILED, JOB_DATA_DELETED,
    LATE,
})

ALL: frozenset[str] = frozenset({
    ORDERED, FUTURE_ORDER, UNAPPROVED_ORDER, AWAITING_DATA, VALIDATION_FINISHED,
    VALIDATION_FAILED, OUTPUT_CREATION_STARTED, OUTPUT_CREATED, OUTPUT_CREATION_FAILED,
    IN_HOT_FOLDER, COPY_FAILED, COPY_SKIPPED, IN_PRODUCTION, RECREATION_REQUESTED,
    OUTPUT_DELETE, CLEAN_UP, BLOCKED, PAID, APPROVED, REJECTED, SHIPPED,
    READY_FOR_COLLECTION, COMPLETED, CANCELLED, REOPENED, AWAITING_PROOF, VERIFIED,
}) | STATION_STATUSES

# Statuses from which the gate (payment, approval, due time, files present) runs.
GATE: frozenset[str] = frozenset({
    ORDERED, PAID, APPROVED, REOPENED, FUTURE_ORDER, AWAITING_DATA, OUTPUT_DELETE,
})
# The order is finished: the worker's next step is clean-up.
FINISHING: frozenset[str] = frozenset({SHIPPED, COMPLETED, CANCELLED})
# Waiting for something, never in the middle of a copy: an operator may hold these.
HOLDABLE: frozenset[str] = GATE | frozenset({
    UNAPPROVED_ORDER, VALIDATION_FINISHED, OUTPUT_CREATED, COPY_FAILED,
})
# The output is made and goes to its hot folders: the delivery stage works these, and a
# hot folder resumed (or retried) wakes a job in one of them that waits for it.
DELIVERING: frozenset[str] = frozenset({OUTPUT_CREATED, VERIFIED, COPY_FAILED})
# The statuses in which the daemon has work of its own: each has a stage (the worker's
# table, pipeline.stages.STAGES, has exactly these keys). Only a job in one of these is
# ever due; the store keeps every other job's due time empty.
WORKED: frozenset[str] = GATE | FINISHING | DELIVERING | frozenset({
    VALIDATION_FINISHED, OUTPUT_CREATION_STARTED, RECREATION_REQUESTED,
})
# Nothing more happens to the job until a person, a station, the storefront or the RIP
# says so (an event): never due, never claimed for itself.
RESTING: frozenset[str] = ALL - WORKED
# Failures an operator may retry, and the status each retry resumes from.
RETRY_FROM: dict[str, str] = {
    VALIDATION_FAILED: ORDERED,
    OUTPUT_CREATION_FAILED: VALIDATION_FINISHED,
    COPY_FAILED: OUTPUT_CREATED,
}
# Payment may still be outstanding here.
UNPAID_WAITING: frozenset[str] = GATE | frozenset({UNAPPROVED_ORDER})
# A produced job whose output can be made anew.
RECREATABLE: frozenset[str] = frozenset({
    OUTPUT_CREATED, IN_HOT_FOLDER, IN_PRODUCTION, COPY_FAILED, COPY_SKIPPED,
    VALIDATION_FAILED, OUTPUT_CREATION_FAILED, READY_FOR_COLLECTION, AWAITING_PROOF,
}) | STATION_STATUSES
# Delivered to a RIP, or further on: such a job is never late.
DELIVERED_OR_LATER: frozenset[str] = frozenset({
    IN_HOT_FOLDER, IN_PRODUCTION, COPY_SKIPPED, SHIPPED, READY_FOR_COLLECTION, COMPLETED,
    CLEAN_UP,
}) | STATION_STATUSES

_GATE_OUTCOMES = frozenset({
    ORDERED, FUTURE_ORDER, UNAPPROVED_ORDER, AWAITING_DATA, VALIDATION_FINISHED,
    VALIDATION_FAILED, REJECTED,
})
_DELIVERY_OUTCOMES = frozenset({IN_HOT_FOLDER, COPY_FAILED, COPY_SKIPPED})
_ORDER_END = FINISHING | frozenset({READY_FOR_COLLECTION})

_PIPELINE: dict[str, frozenset[str]] = {
    **{status: _GATE_OUTCOMES for status in GATE},
    VALIDATION_FINISHED: frozenset({OUTPUT_CREATION_STARTED}),
    OUTPUT_CREATION_STARTED: frozenset({OUTPUT_CREATED, OUTPUT_CREATION_FAILED}),
    VALIDATION_FAILED: frozenset({VALIDATION_FINISHED}),  # an operator's override
    OUTPUT_CREATED: _DELIVERY_OUTCOMES | {AWAITING_PROOF},
    AWAITING_PROOF: frozenset({VERIFIED, REJECTED}),
    VERIFIED: _DELIVERY_OUTCOMES,
    COPY_FAILED: _DELIVERY_OUTCOMES,
    IN_HOT_FOLDER: frozenset({IN_PRODUCTION}) | STATION_STATUSES,
    IN_PRODUCTION: STATION_STATUSES,
    **{status: STATION_STATUSES - {status} for status in STATION_STATUSES},
    UNAPPROVED_ORDER: frozenset({APPROVED, REJECTED}),
    RECREATION_REQUESTED: frozenset({OUTPUT_DELETE}),
    BLOCKED: HOLDABLE,
    CLEAN_UP: frozenset({REOPENED}),
    **{status: frozenset({CLEAN_UP}) for status in FINISHING},
}


def _table() -> dict[str, frozenset[str]]:
    table: dict[str, set[str]] = {status: set(_PIPELINE.get(status, ())) for status in ALL}
    for status in ALL:
        table[status] |= _ORDER_END  # an order can ship, complete or be cancelled at any time
        if status in HOLDABLE:
            table[status].add(BLOCKED)
        if status in RETRY_FROM:
            table[status].add(RETRY_FROM[status])
        if status in RECREATABLE:
            table[status].add(RECREATION_REQUESTED)
        if status in UNPAID_WAITING:
            table[status].add(PAID)
    return {status: frozenset(targets) for status, targets in table.items()}


TRANSITIONS: dict[str, frozenset[str]] = _table()


def allowed(current: str, new: str) -> bool:
    """Whether the transition table lets a job go from `current` to `new`."""
    return new in TRANSITIONS.get(current, frozenset())


def check(job_id: str, current: str, new: str) -> None:
    """Raise TransitionRefused unless `current` → `new` is in the table."""
    if not allowed(current, new):
        raise TransitionRefused(f"job {job_id} cannot go from {current} to {new}")


# Status groups, one colour each on the board: what a job controller looks for first.
GROUPS: dict[str, frozenset[str]] = {
    "problem": frozenset({VALIDATION_FAILED, OUTPUT_CREATION_FAILED, COPY_FAILED, REJECTED}),
    "held": frozenset({BLOCKED, AWAITING_PROOF}),
    "waiting": frozenset({ORDERED, FUTURE_ORDER, UNAPPROVED_ORDER, AWAITING_DATA, PAID,
                          APPROVED, REOPENED, RECREATION_REQUESTED, OUTPUT_DELETE}),
    "working": frozenset({VALIDATION_FINISHED, OUTPUT_CREATION_STARTED, OUTPUT_CREATED,
                          VERIFIED}),
    "delivered": frozenset({IN_HOT_FOLDER, IN_PRODUCTION, COPY_SKIPPED}),
    "production": STATION_STATUSES,
    "finished": frozenset({SHIPPED, READY_FOR_COLLECTION, COMPLETED, CANCELLED, CLEAN_UP}),
}
# The statuses a job controller is asked to act on (counted on the board).
PROBLEMS = (VALIDATION_FAILED, OUTPUT_CREATION_FAILED, COPY_FAILED, BLOCKED)


def group(status: str) -> str:
    """The group word of a status (`problem`, `held`, `waiting`, `working`, `delivered`,
    `production`, `finished`), or `note` for a history entry that is not a status."""
    return next((name for name, members in GROUPS.items() if status in members), "note")
