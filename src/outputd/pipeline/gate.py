"""The gate: may this job be produced now (approved, paid, due, files present)?"""

from __future__ import annotations

from dataclasses import dataclass

from outputd import states
from outputd.tickets import JobTicket

# A job waiting for a late file looks for it again after a quarter of the time it has
# waited so far, between these bounds: a file that comes at once is taken within a
# second, and a thousand jobs waiting for files cost a few claims a second in all.
AWAITING_POLL_S = 1.0
AWAITING_POLL_MAX_S = 10.0


@dataclass(frozen=True)
class Decision:
    """Wait in `status` until `due_at` (None: until an event), or go on when status is None."""

    status: str | None
    message: str = ""
    due_at: float | None = None


PROCEED = Decision(None)


def decide(
    ticket: JobTicket, approval: str, payment_status: str, now: float,
    missing: list[str], waiting_since: float | None, awaiting_timeout_s: float,
) -> Decision:
    """What the job waits for first, in the order the storefront applies them."""
    if approval == "Rejected":
        return Decision(states.REJECTED, "the order line was rejected by its approver")
    if approval == "AwaitingApproval":
        return Decision(states.UNAPPROVED_ORDER, "waits for approval")
    if payment_status != "Paid":
        return Decision(states.ORDERED, f"waits for payment (payment status {payment_status})")
    if ticket.process_after is not None and ticket.process_after.timestamp() > now:
        due = ticket.process_after.timestamp()
        return Decision(states.FUTURE_ORDER, f"due at {ticket.process_after.isoformat()}", due)
    if missing:
        names = ", ".join(missing)
        if waiting_since is not None and now - waiting_since >= awaiting_timeout_s:
            return Decision(
                states.VALIDATION_FAILED,
                f"files never arrived within {awaiting_timeout_s:g} s: {names}",
            )
        since = now if waiting_since is None else waiting_since
        poll = min(max((now - since) / 4, AWAITING_POLL_S), AWAITING_POLL_MAX_S)
        due = min(now + poll, since + awaiting_timeout_s)  # never past the timeout
        return Decision(states.AWAITING_DATA, f"waits for {names}", due)
    return PROCEED
