"""A scan at a production station (DESIGN §15): what a barcode reader typed, read as a
job id, records that station's event, as `outputd event JOB STATION` would."""

from __future__ import annotations

import re

from outputd import states
from outputd.errors import RequestRefused
from outputd.layout import Layout
from outputd.ops import events
from outputd.ops.access import Caller
from outputd.store import Store

# What readers add around the code: an AIM symbology identifier (`]C0` for Code 128),
# a prefix or suffix character set up on the reader, line ends.
_AIM = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_EDGES = re.compile(r"^[^0-9A-Za-z]+|[^0-9A-Za-z]+$")


class UnknownStation(RequestRefused):
    """A station that is not one of DESIGN §15's."""


class UnknownCode(RequestRefused):
    """A scanned code that names no job the caller may see."""


def candidates(code: str) -> list[str]:
    """The job ids a scanned code may stand for, most literal first."""
    typed = "".join(ch for ch in code if ch.isprintable()).strip()
    found = [typed]
    bare = _AIM.sub("", typed)
    found.append(bare)
    found.append(_EDGES.sub("", bare))
    return [c for i, c in enumerate(found) if c and c not in found[:i]]


def scan(store: Store, layout: Layout, caller: Caller, code: str, station: str
         ) -> events.Recorded:
    """Record `station`'s event for the job `code` names. A second scan at the same
    station is a no-op that succeeds."""
    caller.require("scan")
    if station not in states.STATIONS:
        raise UnknownStation(f"unknown station {station!r}; the stations are "
                             f"{', '.join(states.STATIONS)}")
    for job_id in candidates(code):
        job = store.jobs.find(job_id)
        if job is not None and caller.sees(str(job.ticket_data.get("storefront", ""))):
            return events.record_event(store, layout, caller, [job_id], station,
                                       f"scanned at {station}")
    shown = "".join(ch if ch.isprintable() else "?" for ch in code)[:80]
    raise UnknownCode(f"no job has the code {shown!r}")
