"""Who asks, and what they may do (DESIGN §11).

Every operation takes a Caller and checks it here, so the intake, the CLI and the HTTP
API cannot disagree about who may do what. A caller limited to some storefronts never
sees another storefront's job: it is "not found" to them, never "forbidden".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from outputd import states
from outputd.errors import RequestRefused, UnknownJob
from outputd.model import Job

ADMIN, OPERATOR, APPROVER, VIEWER, SUBMITTER, STATION = (
    "admin", "operator", "approver", "viewer", "submitter", "station")
ROLES = (ADMIN, OPERATOR, APPROVER, VIEWER, SUBMITTER, STATION)

# What each role may do besides seeing jobs; events are "event:<name>".
_APPROVALS = frozenset({"event:approved", "event:rejected", "event:verified"})
_ORDER_EVENTS = frozenset(f"event:{e}" for e in (
    "paid", "approved", "rejected", "verified", "shipped", "ready_for_collection",
    "completed", "cancelled"))
_STATION_EVENTS = frozenset(f"event:{e}" for e in states.STATIONS)
_OPERATOR_EVENTS = frozenset(f"event:{e}" for e in (
    "paid", "shipped", "ready_for_collection", "completed", "cancelled", "recreate",
    "reopen", "hold", "release", "renotify", "retry", "override", "verified")
                           ) | _STATION_EVENTS
_MAY: dict[str, frozenset[str]] = {
    OPERATOR: frozenset({"download", "pause", "scan"}) | _OPERATOR_EVENTS,
    # a station's tablet, or the host of a USB barcode reader: it scans, nothing else
    STATION: frozenset({"scan"}) | _STATION_EVENTS,
    APPROVER: frozenset({"download"}) | _APPROVALS,
    VIEWER: frozenset({"download"}),
    SUBMITTER: frozenset({"submit"}) | _ORDER_EVENTS,
}
_WORDS = {"download": "download outputs", "scan": "record scans",
          "pause": "pause or resume hot folders", "submit": "submit jobs",
          "clear_test_data": "clear test data", "accounts": "manage users and tokens"}


class Forbidden(RequestRefused):
    """The caller's role does not allow the request."""


@dataclass(frozen=True)
class Caller:
    """Who asks: `name` is the history's `by`; `storefronts` empty means every one."""

    name: str
    role: str
    storefronts: frozenset[str] = frozenset()

    @classmethod
    def local(cls, name: str) -> Caller:
        """A person at the machine's shell (the CLI): every right, until accounts exist."""
        return cls(name, ADMIN)

    @classmethod
    def intake(cls, name: str, storefront: str | None) -> Caller:
        """The intake folder, for one ticket: anything a ticket can ask, for the ticket's
        storefront (every storefront for an event ticket that names none: its job's)."""
        return cls(name, ADMIN, frozenset({storefront}) if storefront else frozenset())

    def sees(self, storefront: str) -> bool:
        """Whether this caller may know of jobs of `storefront` at all."""
        return not self.storefronts or storefront in self.storefronts

    def may(self, action: str) -> bool:
        """Whether the role allows `action` ("submit", "event:paid", "download", ...)."""
        return self.role == ADMIN or action in _MAY.get(self.role, frozenset())

    def require(self, action: str, storefront: str | None = None) -> None:
        """Raise Forbidden unless this caller may do `action` (for `storefront`)."""
        if storefront is not None and not self.sees(storefront):
            raise Forbidden(f"{self.name} may not act for storefront {storefront}")
        if not self.may(action):
            what = _WORDS.get(action) or f"record {action.removeprefix('event:')}"
            raise Forbidden(f"{self.name} ({self.role}) may not {what}")

    def visible(self, job: Job) -> Job:
        """`job`, or UnknownJob if it belongs to a storefront this caller cannot see."""
        if not self.sees(str(job.ticket_data.get("storefront", ""))):
            raise UnknownJob(job.job_id)
        return job

    def visible_id(self, store: Any, job_id: str) -> bool:
        """Whether the job `job_id` is one this caller may see."""
        if not self.storefronts:
            return True
        job = store.jobs.find(job_id)
        return job is not None and self.sees(str(job.ticket_data.get("storefront", "")))

    def only_visible(self, storefronts_and_ids: Iterable[tuple[str, str]]
                     ) -> list[tuple[str, str]]:
        """The (storefront, job id) pairs this caller may see."""
        return [(shop, job) for shop, job in storefronts_and_ids if self.sees(shop)]
