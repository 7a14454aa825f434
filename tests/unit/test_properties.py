"""Property tests: ticket parsing never crashes, file names never escape a folder, and
the transition table and event plans never allow what they should not."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outputd import states
from outputd.errors import RequestRefused, TicketError
from outputd.model import HistoryEntry, Job
from outputd.ops import rules as events
from outputd.pipeline.routing import filename, sanitise
from outputd.tickets import JobTicket, parse_ticket, ticket_json
from tests.helpers import job_ticket

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children,
                                                                       max_size=4),
    max_leaves=6,
)


@given(st.binary(max_size=2000))
def test_any_bytes_parse_or_are_refused_with_a_reason(data: bytes):
    try:
        parse_ticket(data)
    except TicketError as exc:
        assert str(exc)


TICKET_KEYS = list(job_ticket("J", ["a.pdf"]))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(TICKET_KEYS), json_values, max_size=4))
def test_a_ticket_with_fields_changed_parses_or_is_refused(changes):
    body = {**job_ticket("J-1", ["J-1/a.pdf"]), **changes}
    try:
        ticket = parse_ticket(json.dumps(body).encode())
    except TicketError as exc:
        assert str(exc)
        return
    if isinstance(ticket, JobTicket):
        for f in ticket.files:
            path = PurePosixPath(f.path)
            assert not path.is_absolute() and ".." not in path.parts


@given(st.text(max_size=300))
def test_sanitised_names_never_leave_the_folder(raw: str):
    name = sanitise(raw, fallback="J-1.pdf")
    assert name
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".")
    assert ".." not in name
    assert all(ord(c) >= 32 and c != "\x7f" for c in name)
    assert sanitise(name, fallback="J-1.pdf") == name  # stable


ids = st.from_regex(r"\A[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}\Z")


@given(ids, ids, ids, st.integers(1, 10_000_000), st.text(max_size=40))
def test_templated_names_are_safe_for_any_job(job_id, order_id, sku, quantity, template):
    ticket = JobTicket.model_validate(job_ticket(job_id, ["a.pdf"], order_id=order_id,
                                                 quantity=quantity, product={"sku": sku}))
    literal = template.replace("{", "{{").replace("}", "}}")  # as the config would escape
    for pattern in ("{order_id}_{job_id}_{sku}_q{quantity}.pdf", "{job_id}" + literal):
        name = filename(pattern, ticket)
        assert name and "/" not in name and not name.startswith(".") and ".." not in name


@settings(max_examples=300)
@given(st.sampled_from(sorted(states.ALL)), st.sampled_from(sorted(states.ALL)))
def test_the_table_is_consistent(current: str, new: str):
    allowed = states.allowed(current, new)
    assert allowed == (new in states.TRANSITIONS[current])
    if allowed and current == states.REJECTED:  # a rejected job never reaches production
        assert new not in (states.VALIDATION_FINISHED, states.OUTPUT_CREATED,
                           states.IN_HOT_FOLDER)
    if allowed and new == states.IN_HOT_FOLDER:  # only a delivery puts a job there
        assert current in (states.OUTPUT_CREATED, states.VERIFIED, states.COPY_FAILED,
                           states.BLOCKED)
    if allowed and new == states.VERIFIED:  # only a proof a person verified
        assert current == states.AWAITING_PROOF
    if allowed and new == states.OUTPUT_CREATED:
        assert current in (states.OUTPUT_CREATION_STARTED, states.COPY_FAILED, states.BLOCKED)


@settings(max_examples=300)
@given(st.sampled_from(sorted(states.ALL)),
       st.sampled_from(list(events._RECORDS) + ["retry", "release", "renotify"]))
def test_event_plans_only_make_allowed_changes(status: str, event: str):
    ticket = JobTicket.model_validate(job_ticket("J-1", ["a.pdf"]))
    job = Job("J-1", json.dumps(ticket_json(ticket)), status, "Paid", "NotRequired", False,
              0.0, 0.0)
    history = [HistoryEntry(0, states.ORDERED, "", "x"), HistoryEntry(1, status, "", "x")]
    try:
        plan = events.plan(job, event, history)
    except RequestRefused:
        return
    if not plan.note:
        assert states.allowed(status, plan.status), (status, event, plan.status)
