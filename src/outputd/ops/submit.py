"""Submitting a job or an event ticket: who may hand over which ticket. The intake
folder, `outputd submit` and the API hand ticket bytes to the intake's acceptance code
(intake.accept.Intake), which checks the caller here before it takes anything in."""

from __future__ import annotations

from outputd.ops.access import Caller
from outputd.tickets import EventTicket, JobTicket


def check(caller: Caller, ticket: JobTicket | EventTicket) -> None:
    """Raise Forbidden unless the caller may hand over this ticket."""
    if isinstance(ticket, EventTicket):
        caller.require(f"event:{ticket.event}", ticket.storefront)
    else:
        caller.require("submit", ticket.storefront)
