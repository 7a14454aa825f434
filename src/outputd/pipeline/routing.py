"""Which hot folders a job goes to, and under which file names."""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from outputd.config import Config, RouteConfig
from outputd.safefs import fit_name
from outputd.tickets import JobTicket

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


@dataclass(frozen=True)
class Route:
    """Where a job goes: hot folder names, or skip with the reason; the route's
    preflight profile, and whether its jobs wait for a proof to be verified."""

    to: tuple[str, ...]
    skip_reason: str | None = None
    profile: str | None = None
    checkpoint: bool = False


def _matches(route: RouteConfig, ticket: JobTicket) -> bool:
    for key, expected in route.match.items():
        actual: Any
        if key.startswith("attributes."):
            actual = ticket.attributes.get(key.removeprefix("attributes."))
            if actual is None:
                return False
        else:
            actual = {
                "type": ticket.product.type, "sku": ticket.product.sku,
                "storefront": ticket.storefront, "test_mode": ticket.test_mode,
            }[key]
        if isinstance(expected, bool) or isinstance(actual, bool):
            if actual != expected:
                return False
        elif isinstance(expected, str):
            if not fnmatch.fnmatchcase(str(actual), expected):
                return False
        elif str(actual) != str(expected):
            return False
    return True


def route(config: Config, ticket: JobTicket) -> Route:
    """The first route whose `match` fits the job."""
    for index, candidate in enumerate(config.routes):
        if _matches(candidate, ticket):
            if candidate.skip:
                return Route((), f"[[routes]] number {index + 1} says to skip hot folders",
                             candidate.profile)
            return Route(tuple(candidate.to), None, candidate.profile, candidate.checkpoint)
    return Route((), "no route matches this job")


def filename(template: str, ticket: JobTicket, part: int | None = None,
             role: str | None = None) -> str:
    """The file name a template gives for a job's output, made safe for any folder."""
    fields: dict[str, Any] = {
        "job_id": ticket.job_id, "order_id": ticket.order_id, "storefront": ticket.storefront,
        "sku": ticket.product.sku, "quantity": ticket.quantity, "type": ticket.product.type,
        "part": part if part is not None else 1, "role": role or "",
    }
    return sanitise(template.format_map(fields), fallback=f"{ticket.job_id}.pdf")


def with_part(name: str, part: int) -> str:
    """`name` with `_<part>` before its extension (`a.pdf` → `a_2.pdf`)."""
    stem, dot, ending = name.rpartition(".")
    marked = f"{stem}_{part}.{ending}" if dot and stem else f"{name}_{part}"
    return sanitise(marked, fallback=marked)


# The longest final name: its temp name `.<name>.part`, and its sidecar's (`.json`,
# one byte longer) temp name, must fit in a file name of 255 bytes too.
MAX_NAME_BYTES = 255 - len(".") - len(".part") - 1


def sanitise(name: str, fallback: str) -> str:
    """No separator, no `..`, no leading dot, no control character; never empty. A name
    too long is cut, keeping its `.pdf` ending, with a short hash of the whole name
    before it, so two long names that differ only at the end stay two names."""
    name = _UNSAFE.sub("_", name)
    while ".." in name:
        name = name.replace("..", "_")
    name = name.lstrip(". ")
    if len(name.encode()) > MAX_NAME_BYTES:
        ending = ".pdf" if name.lower().endswith(".pdf") else ""
        stem = name[: len(name) - len(ending)]
        mark = "~" + hashlib.sha256(name.encode()).hexdigest()[:8]
        name = fit_name(stem, MAX_NAME_BYTES - len(mark) - len(ending)) + mark + name[len(stem):]
    return name or sanitise(fallback, "job.pdf")
