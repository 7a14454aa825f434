from __future__ import annotations

import json

import pytest

from outputd.errors import TicketError
from outputd.tickets import EventTicket, JobTicket, parse_ticket
from tests.helpers import job_ticket


def parse(body) -> JobTicket | EventTicket:
    return parse_ticket(json.dumps(body).encode())


def test_a_valid_ticket_parses_with_defaults():
    ticket = parse(job_ticket("J-1", ["J-1/a.pdf"]))
    assert isinstance(ticket, JobTicket)
    assert ticket.product.assembly == "combine"
    assert ticket.files[0].path == "J-1/a.pdf"


@pytest.mark.parametrize(("change", "words"), [
    ({"colour": "blue"}, "colour is not a known field"),
    ({"job_id": "../etc"}, "job_id must be 1-64"),
    ({"job_id": ".hidden"}, "job_id must be 1-64"),
    ({"job_id": "a/b"}, "job_id must be 1-64"),
    ({"job_id": "x" * 65}, "job_id must be 1-64"),
    ({"order_id": "é"}, "order_id must be 1-64"),
    ({"files": [{"path": "/etc/passwd"}]}, "relative to the intake folder"),
    ({"files": [{"path": "a/../../x.pdf"}]}, "leaves the intake folder"),
    ({"files": [{"path": "a/.x.pdf"}]}, "hidden"),
    ({"files": []}, "files"),
    ({"approval": "Maybe"}, "approval"),
    ({"process_after": "2026-12-01T08:00:00"}, "time zone"),
    ({"product": {"type": "poster"}}, "product.type"),
    ({"product": {"sku": "BAD SKU"}}, "product.sku"),
])
def test_bad_tickets_are_refused_naming_the_field(change, words):
    body = job_ticket("J-1", ["J-1/a.pdf"])
    for key, value in change.items():
        body[key] = {**body[key], **value} if key == "product" else value
    with pytest.raises(TicketError, match=words):
        parse(body)


def test_a_missing_field_is_named():
    body = job_ticket("J-1", ["J-1/a.pdf"])
    del body["quantity"]
    with pytest.raises(TicketError, match="quantity is required"):
        parse(body)


@pytest.mark.parametrize(("data", "words"), [
    (b"{nope", "not valid JSON"),
    (b"[1, 2]", "JSON list, not an object"),
    (b'{"schema": "other/1"}', "schema is 'other/1'"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_unreadable_tickets_are_refused(data, words):
    with pytest.raises(TicketError, match=words):
        parse_ticket(data)


def test_an_oversized_ticket_is_refused_before_parsing():
    with pytest.raises(TicketError, match="the limit is"):
        parse_ticket(b" " * (2 << 20))


def test_event_tickets_name_exactly_one_target():
    ticket = parse({"schema": "outputd.event/1", "order_id": "5001", "storefront": "acme",
                    "event": "shipped"})
    assert isinstance(ticket, EventTicket) and ticket.event == "shipped"
    assert ticket.storefront == "acme"
    with pytest.raises(TicketError, match="an order event names its storefront"):
        parse({"schema": "outputd.event/1", "order_id": "5001", "event": "shipped"})
    with pytest.raises(TicketError, match="exactly one of job_id and order_id"):
        parse({"schema": "outputd.event/1", "event": "shipped"})
    with pytest.raises(TicketError, match="event"):
        parse({"schema": "outputd.event/1", "job_id": "J-1", "event": "teleport"})


@pytest.mark.parametrize(("raw", "words"), [
    (b'{"schema": "outputd.job/1", "quantity": ' + b"9" * 5000 + b"}", "not valid JSON"),
    (b'{"schema": "outputd.job/1", "quantity": NaN}', "NaN is not a JSON number"),
    (b'{"schema": "outputd.job/1", "quantity": -Infinity}', "-Infinity is not a JSON number"),
    (b'{"schema": "outputd.job/1", "quantity": 1e999}', "too large a number"),
    (b'{"schema": "outputd.job/1", "x": "\\ud800"}', "lone surrogate"),
])
def test_tickets_that_json_alone_would_take_are_refused_with_a_reason(raw, words):
    with pytest.raises(TicketError, match=words):
        parse_ticket(raw)



def test_a_misspelt_key_is_named_beside_the_field_it_leaves_missing():
    body = job_ticket("J-1", ["J-1/a.pdf"])
    body["quantitiy"] = body.pop("quantity")
    body["payment_status"] = 5
    with pytest.raises(TicketError) as caught:
        parse(body)
    assert str(caught.value) == (
        "the ticket is invalid: quantitiy is not a known field; quantity is required; "
        "payment_status Input should be a valid string")
