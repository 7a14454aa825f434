from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from outputd import states
from outputd.config import RetryConfig
from outputd.errors import DeliveryError, PermanentDeliveryError, RequestRefused
from outputd.model import HistoryEntry, Job
from outputd.ops import rules as events
from outputd.pipeline.gate import decide
from outputd.retry import RetryPolicy
from outputd.tickets import JobTicket, ticket_json
from tests.helpers import job_ticket

NOW = 1_800_000_000.0


def ticket(**changes) -> JobTicket:
    return JobTicket.model_validate(job_ticket("J-1", ["J-1/a.pdf"], **changes))


def gate(t: JobTicket, missing=(), waiting_since=None):
    return decide(t, t.approval, t.payment_status, NOW, list(missing), waiting_since, 60)


def test_gate_order_approval_then_payment_then_due_time_then_files():
    assert gate(ticket(approval="AwaitingApproval", payment_status="Pending")).status == (
        states.UNAPPROVED_ORDER)
    unpaid = gate(ticket(payment_status="Pending"))
    assert (unpaid.status, unpaid.due_at) == (states.ORDERED, None)
    assert "payment status Pending" in unpaid.message
    later = datetime.fromtimestamp(NOW + 3600, UTC).isoformat()
    future = gate(ticket(process_after=later))
    assert (future.status, future.due_at) == (states.FUTURE_ORDER, NOW + 3600)
    waiting = gate(ticket(), missing=["J-1/a.pdf"], waiting_since=NOW - 10)
    assert waiting.status == states.AWAITING_DATA and waiting.due_at == NOW + 2.5
    # a quarter of the wait so far, from a second to ten, never past the timeout
    assert gate(ticket(), missing=["J-1/a.pdf"]).due_at == NOW + 1
    assert gate(ticket(), missing=["J-1/a.pdf"], waiting_since=NOW - 45).due_at == NOW + 10
    assert gate(ticket(), missing=["J-1/a.pdf"], waiting_since=NOW - 58).due_at == NOW + 2
    timed_out = gate(ticket(), missing=["J-1/a.pdf"], waiting_since=NOW - 61)
    assert timed_out.status == states.VALIDATION_FAILED
    assert "J-1/a.pdf" in timed_out.message
    assert gate(ticket()).status is None
    assert gate(ticket(approval="Rejected")).status == states.REJECTED


def test_retry_back_off_doubles_up_to_the_cap_and_gives_up():
    policy = RetryPolicy(RetryConfig(max_attempts=5, initial_s=5, max_s=30))
    err = DeliveryError("timeout")
    assert [policy.next_attempt(n, err, 0) for n in range(1, 6)] == [5, 10, 20, 30, None]
    assert policy.next_attempt(1, PermanentDeliveryError("permission denied"), 0) is None
    assert policy.next_attempt(9, err, 0, give_up=False) == 30  # webhooks keep trying
    assert policy.next_attempt(9, PermanentDeliveryError("x"), 0, give_up=False) is None


def job(status: str) -> Job:
    return Job("J-1", json.dumps(ticket_json(ticket())), status, "Paid", "NotRequired", False,
               NOW, NOW)


def test_events_follow_the_transition_table():
    assert events.plan(job(states.IN_HOT_FOLDER), "shipped").status == states.SHIPPED
    assert events.plan(job(states.ORDERED), "paid").fields == {"payment_status": "Paid"}
    assert events.plan(job(states.ORDERED), "cancelled").fields == {"cancelled": True}
    assert events.plan(job(states.COPY_FAILED), "retry").status == states.OUTPUT_CREATED
    with pytest.raises(RequestRefused, match="J-1 is InHotFolder; hold is not allowed"):
        events.plan(job(states.IN_HOT_FOLDER), "hold")
    with pytest.raises(RequestRefused, match="only a failed"):
        events.plan(job(states.IN_HOT_FOLDER), "retry")


def test_release_returns_to_the_status_the_job_was_held_in():
    history = [HistoryEntry(NOW, states.ORDERED, "", "x"),
               HistoryEntry(NOW, states.FUTURE_ORDER, "", "x"),
               HistoryEntry(NOW, states.BLOCKED, "", "x")]
    assert events.plan(job(states.BLOCKED), "release", history).status == states.FUTURE_ORDER


def test_release_lets_an_approval_noted_while_held_take_effect():
    history = [HistoryEntry(NOW, states.UNAPPROVED_ORDER, "", "x"),
               HistoryEntry(NOW, states.BLOCKED, "", "x"),
               HistoryEntry(NOW, states.APPROVED, "", "x")]  # noted while held
    held = job(states.BLOCKED)
    assert events.plan(held, "approved").note  # recorded; the hold stands
    approved = held.evolve(approval="Approved")
    assert events.already_so(approved, "approved")
    assert events.plan(approved, "release", history).status == states.APPROVED
    waiting = held.evolve(approval="AwaitingApproval")
    assert events.plan(waiting, "release", history).status == states.UNAPPROVED_ORDER
    # held at the gate: released to it, and the gate reads payment and approval again
    at_gate = [HistoryEntry(NOW, states.ORDERED, "", "x"),
               HistoryEntry(NOW, states.BLOCKED, "", "x")]
    assert events.plan(approved, "release", at_gate).status == states.ORDERED


def test_reopen_makes_a_cancelled_job_live_again():
    cancelled = job(states.CLEAN_UP).evolve(cancelled=True)
    assert events.plan(cancelled, "reopen").fields == {"cancelled": False}
    assert not events.already_so(cancelled.evolve(cancelled=False), "cancelled")


def test_history_words_for_events_without_a_message():
    from outputd.ops.rules import default_message

    assert default_message("cancelled") == "marked cancelled"
    assert default_message("ready_for_collection") == "marked ready for collection"
    assert default_message("recreate") == "recreate requested"


def test_counted_nouns():
    from outputd.logs import counted

    assert (counted(1, "page"), counted(2, "page"), counted(0, "job")) == (
        "1 page", "2 pages", "0 jobs")


def test_a_station_scan_is_idempotent_and_the_rip_taking_a_file_later_changes_nothing():
    assert events.plan(job(states.IN_HOT_FOLDER), "printed").status == states.PRINTED
    assert events.already_so(job(states.PRINTED), "printed")
    assert not events.already_so(job(states.IN_FINISHING), "printed")  # any order
    assert events.plan(job(states.IN_FINISHING), "printed").status == states.PRINTED
    with pytest.raises(RequestRefused, match="Ordered; printed is not allowed"):
        events.plan(job(states.ORDERED), "printed")
    assert not events.already_so(job(states.IN_HOT_FOLDER), "picked_up")
    for later in (states.PRINTED, states.IN_PRODUCTION, states.SHIPPED, states.CLEAN_UP):
        assert events.already_so(job(later), "picked_up"), later
