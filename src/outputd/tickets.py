"""Job and event tickets (schemas `outputd.job/1` and `outputd.event/1`)."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from outputd.errors import TicketError
from outputd.states import EVENTS

JOB_SCHEMA = "outputd.job/1"
EVENT_SCHEMA = "outputd.event/1"
MAX_TICKET_BYTES = 1 << 20
ID_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trim(_Strict):
    """A trim size in millimetres."""
    width_mm: float = Field(gt=0, le=10_000)
    height_mm: float = Field(gt=0, le=10_000)


class PageRules(_Strict):
    """The page counts a product allows."""
    exact: int | None = Field(None, ge=1)
    min: int | None = Field(None, ge=1)
    max: int | None = Field(None, ge=1)
    multiple_of: int | None = Field(None, ge=1)


class PreflightOverrides(_Strict):
    """A product's own preflight settings, over the shop's defaults (or its profile)."""
    profile: Identifier | None = None
    min_ppi_warn: float | None = Field(None, ge=0)
    min_ppi_fail: float | None = Field(None, ge=0)
    cmyk_only: bool | None = None


class Product(_Strict):
    """What is to be printed: type, sku, trim, pages."""
    type: Literal["static", "multipart", "megaedit"]
    sku: Identifier
    name: str = Field(max_length=500)
    trim: Trim
    bleed_mm: float = Field(ge=0, le=100)
    pages: PageRules
    assembly: Literal["combine", "separate"] = "combine"
    max_file_bytes: int | None = Field(None, gt=0)
    preflight: PreflightOverrides | None = None


class Customer(_Strict):
    """Who ordered it."""
    username: str = Field("", max_length=256)
    email: str = Field("", max_length=320)


class TicketFile(_Strict):
    """One file of a job, by its path in the intake folder, and its role."""
    path: str = Field(min_length=1, max_length=1024)
    role: str = Field("", max_length=64)

    @field_validator("path")
    @classmethod
    def _inside_intake(cls, value: str) -> str:
        if "\x00" in value or "\\" in value:
            raise ValueError("must not contain a NUL or a backslash")
        path = PurePosixPath(value)
        if path.is_absolute():
            raise ValueError("must be relative to the intake folder")
        if ".." in path.parts:
            raise ValueError("leaves the intake folder")
        if any(part.startswith(".") for part in path.parts):
            raise ValueError("must not name a hidden file or folder")
        return str(path)


class JobTicket(_Strict):
    """One order line to produce."""

    schema_: Literal["outputd.job/1"] = Field(alias="schema")
    job_id: Identifier
    order_id: Identifier
    storefront: Identifier
    test_mode: bool = False
    customer: Customer = Customer()
    product: Product
    quantity: int = Field(ge=1, le=10_000_000)
    attributes: dict[str, str | int | float | bool] = {}
    files: list[TicketFile] = Field(min_length=1, max_length=1000)
    payment_status: str = Field(max_length=64)
    approval: Literal["NotRequired", "AwaitingApproval", "Approved", "Rejected"] = "NotRequired"
    process_after: datetime | None = None
    due_at: datetime | None = None  # when the order must be out: `outputd jobs --late`
    priority: int = Field(0, ge=-1000, le=1000)

    @field_validator("process_after", "due_at")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone (e.g. 2026-12-01T08:00:00Z)")
        return value

    @model_validator(mode="after")
    def _one_file_for_static(self) -> JobTicket:
        if self.product.type == "static" and len(self.files) != 1:
            raise ValueError(f"a static product has exactly one file, not {len(self.files)}")
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("files names the same path twice")
        return self


class EventTicket(_Strict):
    """An order-lifecycle event for one job or every job of an order."""

    schema_: Literal["outputd.event/1"] = Field(alias="schema")
    job_id: Identifier | None = None
    order_id: Identifier | None = None
    storefront: Identifier | None = None
    event: Literal[EVENTS]  # type: ignore[valid-type]
    by: str = Field("", max_length=256)
    message: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _one_target(self) -> EventTicket:
        if (self.job_id is None) == (self.order_id is None):
            raise ValueError("an event names exactly one of job_id and order_id")
        if self.order_id is not None and self.storefront is None:
            raise ValueError("an order event names its storefront: order ids are each "
                             "storefront's own")
        return self


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def parse_ticket(data: bytes) -> JobTicket | EventTicket:
    """Parse ticket bytes; raise TicketError with the reason an operator reads."""
    if len(data) > MAX_TICKET_BYTES:
        raise TicketError(f"the ticket is {len(data)} bytes; the limit is {MAX_TICKET_BYTES}")
    try:
        body: Any = json.loads(data, parse_constant=_no_constant, parse_float=_finite)
        json.dumps(body, ensure_ascii=False).encode()  # lone surrogates are not text
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TicketError(f"the ticket is not valid JSON: {exc}") from None
    except UnicodeEncodeError:
        raise TicketError("the ticket holds a lone surrogate escape (such as \\ud800), "
                          "which is not text") from None
    except ValueError as exc:  # NaN, Infinity, an integer of thousands of digits
        raise TicketError(f"the ticket is not valid JSON: {exc}") from None
    except RecursionError:
        raise TicketError("the ticket is nested too deeply") from None
    if not isinstance(body, dict):
        raise TicketError(f"the ticket is a JSON {type(body).__name__}, not an object")
    schema = body.get("schema")
    model: type[JobTicket] | type[EventTicket]
    if schema == JOB_SCHEMA:
        model = JobTicket
    elif schema == EVENT_SCHEMA:
        model = EventTicket
    else:
        raise TicketError(
            f"the ticket's schema is {schema!r}; expected {JOB_SCHEMA!r} or {EVENT_SCHEMA!r}"
        )
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise TicketError(f"the ticket is invalid: {describe(exc)}") from None


MAX_REASONS = 5


def describe(exc: ValidationError) -> str:
    """Every validation error (up to five, then how many more), each naming its field:
    an unknown key first, since it is often the misspelling of one reported missing."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    said = [_one(e) for e in errors[:MAX_REASONS]]
    if len(errors) > MAX_REASONS:
        said.append(f"and {len(errors) - MAX_REASONS} more")
    return "; ".join(said)


def _one(error: Any) -> str:
    loc = ".".join(str(part) for part in error["loc"]) or "ticket"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "is not a known field"
    elif error["type"] == "missing":
        message = "is required"
    elif error["type"] == "string_pattern_mismatch":
        message = "must be 1-64 of A-Z a-z 0-9 . _ - and not start with a dot"
    return f"{loc} {message}" if not message.startswith(loc) else message


def ticket_json(ticket: JobTicket) -> dict[str, Any]:
    """The ticket as JSON-ready data with its field names as the schema spells them."""
    return ticket.model_dump(mode="json", by_alias=True)
