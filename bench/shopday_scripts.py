"""The scripts of a day in the shop: what happens to each kind of job, move by move,
and the status it must end in.

A script is a generator over the shop and the job's plan: it makes a move (a
submission, an event, a scan, a file arriving) and yields what it waits for next, a
status (`Wait`) or some time (`Sleep`). When a bug is found in the field, the move that
caused it becomes a script here (or a move in one).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from outputd import states

if TYPE_CHECKING:
    from bench.shopday import Shop

A5_BLEED = (154.0, 216.0)  # the product's trim (148 x 210 mm) with 3 mm bleed
WRONG_SIZE = (100.0, 100.0)  # fails preflight: not the product's size


@dataclass(frozen=True)
class Wait:
    """Wait until the job is in one of `statuses` (and has reached a hot folder at least
    `delivered` times)."""

    statuses: frozenset[str]
    delivered: int = 0
    job_id: str | None = None  # another job than the script's own


@dataclass(frozen=True)
class Sleep:
    """Wait this long."""

    seconds: float


def wait(*statuses: str, delivered: int = 0, job_id: str | None = None) -> Wait:
    return Wait(frozenset(statuses), delivered, job_id)


@dataclass
class Plan:
    """One job of the day: who sends it, how, what it holds, and where it must end."""

    job_id: str
    kind: str
    at: float  # seconds into the day it arrives
    storefront: str = "acme"
    final: str = states.CLEAN_UP
    via: str = "intake"  # or "api"
    files: list[tuple[str, int, tuple[float, float]]] = field(
        default_factory=lambda: [("a.pdf", 2, A5_BLEED)])
    ticket: dict[str, Any] = field(default_factory=dict)
    role: str = "part"
    late_files: tuple[str, ...] = ()
    polls: int = 0  # claims allowed beyond its work (looks for a late file)
    started: float = 0.0

    @classmethod
    def of(cls, kind: str, job_id: str, at: float) -> Plan:
        plan = cls(job_id, kind, at, via=random.choice(("intake", "api")))
        plan.ticket = {"order_id": f"7{job_id[2:]}", "customer": {
            "username": f"buyer{random.randint(1, 40)}",
            "email": f"buyer{random.randint(1, 40)}@example.com"}}
        SHAPES.get(kind, _no_change)(plan)
        return plan


Script = Callable[["Shop", Plan], Iterator[Wait | Sleep]]
SCRIPTS: dict[str, Script] = {}
SHAPES: dict[str, Callable[[Plan], None]] = {}


def script(kind: str, shape: Callable[[Plan], None] | None = None
           ) -> Callable[[Script], Script]:
    """Register a script (and how its job differs from a plain A5 flyer)."""
    def register(func: Script) -> Script:
        SCRIPTS[kind] = func
        if shape is not None:
            SHAPES[kind] = shape
        return func
    return register


def _no_change(plan: Plan) -> None:
    pass


def _ship(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """The storefront ships the order (for one job, or for its whole order), and the
    job is cleaned up."""
    if random.random() < 0.5:
        status, answer = shop.api("POST", f"/orders/{plan.ticket['order_id']}/events",
                                  plan.storefront, {"event": "shipped",
                                                    "message": "dispatched by courier"})
        if status != 202:
            raise RuntimeError(f"order shipped answered {status}: {answer}")
    else:
        _accepted(shop.event(plan.job_id, "shipped", plan.storefront), "shipped")
    yield wait(states.CLEAN_UP)


def _cancel(shop: Shop, plan: Plan, why: str) -> Iterator[Wait | Sleep]:
    """The storefront cancels the job, and it is cleaned up."""
    _accepted(shop.event(plan.job_id, "cancelled", plan.storefront, why), "cancelled")
    yield wait(states.CLEAN_UP)


def _accepted(status: int, what: str) -> None:
    if status != 202:
        raise RuntimeError(f"{what} answered {status}")


def _scans(shop: Shop, plan: Plan, stations: list[str]) -> Iterator[Wait | Sleep]:
    for station in stations:
        yield Sleep(random.uniform(0.2, 2.0))  # carried across the floor
        shop.scan(plan.job_id, station, by_cli=random.random() < 0.1)
        yield wait(states.STATIONS[station])


# -- the scripts ----------------------------------------------------------------------


@script("floor")
def floor(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Delivered, scanned at some stations in any order (a station twice, at times),
    shipped."""
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    stations = random.sample(list(states.STATIONS), random.randint(2, 4))
    yield from _scans(shop, plan, stations)
    if random.random() < 0.3:  # a second scan at the same station changes nothing
        shop.scan(plan.job_id, stations[-1], by_cli=False)
    yield from _ship(shop, plan)


@script("station_rest", lambda p: setattr(p, "final", states.PRINTED))
def station_rest(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Printed, and resting at the printer until the day ends (the stall's move)."""
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    yield from _scans(shop, plan, ["printed"])


@script("collect")
def collect(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Printed, ready for collection (resting), then collected."""
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    yield from _scans(shop, plan, ["printed"])
    _accepted(shop.event(plan.job_id, "ready_for_collection", "operator"), "ready")
    yield wait(states.READY_FOR_COLLECTION)
    yield Sleep(random.uniform(1, 5))
    _accepted(shop.event(plan.job_id, "completed", plan.storefront), "completed")
    yield wait(states.CLEAN_UP)


def _multipart(plan: Plan) -> None:
    plan.files = [("cover.pdf", 2, A5_BLEED), ("body.pdf", 6, A5_BLEED)]
    plan.ticket.update(product_type="multipart",
                       product={"pages": {"min": 8, "max": 64, "multiple_of": 4}})


@script("multipart", _multipart)
def multipart(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    yield from _ship(shop, plan)


def _megaedit(plan: Plan) -> None:
    plan.files = [(f"p{n}.pdf", 1, A5_BLEED) for n in range(1, 5)]
    plan.role = "page"
    plan.ticket.update(product_type="megaedit", product={"pages": {"exact": 4}})


@script("megaedit", _megaedit)
def megaedit(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    yield from _scans(shop, plan, ["packing"])
    yield from _ship(shop, plan)


@script("late_payment", lambda p: p.ticket.update(payment_status="Pending"))
def late_payment(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    shop.submit(plan)
    yield wait(states.ORDERED)
    yield Sleep(random.uniform(2, 8))
    _accepted(shop.event(plan.job_id, "paid", plan.storefront), "paid")
    yield wait(states.IN_HOT_FOLDER)
    yield from _ship(shop, plan)


@script("approval", lambda p: p.ticket.update(approval="AwaitingApproval"))
def approval(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    shop.submit(plan)
    yield wait(states.UNAPPROVED_ORDER)
    yield Sleep(random.uniform(2, 8))
    _accepted(shop.event(plan.job_id, "approved", "approver"), "approved")
    yield wait(states.IN_HOT_FOLDER)
    yield from _ship(shop, plan)


@script("rejected", lambda p: (p.ticket.update(approval="AwaitingApproval"),
                               setattr(p, "final", states.REJECTED)))
def rejected(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    shop.submit(plan)
    yield wait(states.UNAPPROVED_ORDER)
    _accepted(shop.event(plan.job_id, "rejected", "approver", "artwork not approved"),
              "rejected")
    yield wait(states.REJECTED)


def _future(plan: Plan) -> None:
    plan.ticket["process_after"] = "later"  # set when it is sent: the day's own clock


@script("future", _future)
def future(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Due 12 s after it is sent; it must start then, not before and not much later."""
    from datetime import UTC, datetime

    due = time.time() + 12
    plan.ticket["process_after"] = datetime.fromtimestamp(due, UTC).isoformat()
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    history = shop.history(plan.job_id)  # when it happened, not when the day looked
    waited = [h for h in history if h["status"] == states.FUTURE_ORDER]
    started = next((h for h in history if h["status"] == states.VALIDATION_FINISHED), None)
    if not waited or started is None:
        raise RuntimeError(f"a future order went {[h['status'] for h in history]}")
    late = datetime.fromisoformat(started["at"]).timestamp() - due
    if late < 0 or late > 15:  # a restart may hold it up that long, no more
        raise RuntimeError(f"a future order due at +12 s started {late:+.1f} s from then")
    yield from _ship(shop, plan)


@script("test_mode", lambda p: (p.ticket.update(test_mode=True)))
def test_mode(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    shop.submit(plan)
    yield wait(states.COPY_SKIPPED)
    _accepted(shop.event(plan.job_id, "completed", plan.storefront), "completed")
    yield wait(states.CLEAN_UP)


def _late_file(plan: Plan) -> None:
    plan.late_files = ("a.pdf",)
    plan.via = "intake"
    plan.polls = 20


@script("late_file", _late_file)
def late_file(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    shop.submit(plan)
    yield wait(states.AWAITING_DATA)
    yield Sleep(random.uniform(2, 6))
    shop.late_file(plan)
    yield wait(states.IN_HOT_FOLDER)
    yield from _ship(shop, plan)


def _bad(plan: Plan) -> None:
    plan.files = [("a.pdf", 2, WRONG_SIZE)]


@script("override", _bad)
def override(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Fails preflight; an operator takes it on with a reason."""
    shop.submit(plan)
    yield wait(states.VALIDATION_FAILED)
    _accepted(shop.event(plan.job_id, "override", "operator", "customer accepts the size"),
              "override")
    yield wait(states.IN_HOT_FOLDER)
    yield from _ship(shop, plan)


@script("failed_cancel", _bad)
def failed_cancel(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    shop.submit(plan)
    yield wait(states.VALIDATION_FAILED)
    yield from _cancel(shop, plan, "customer cancelled")


@script("proof", lambda p: setattr(p, "storefront", "proofs"))
def proof(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    shop.submit(plan)
    yield wait(states.AWAITING_PROOF)
    yield Sleep(random.uniform(1, 4))
    _accepted(shop.event(plan.job_id, "verified", "approver", "proof checked"), "verified")
    yield wait(states.IN_HOT_FOLDER)
    yield from _ship(shop, plan)


@script("proof_rejected", lambda p: (setattr(p, "storefront", "proofs"),
                                     setattr(p, "final", states.REJECTED)))
def proof_rejected(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    shop.submit(plan)
    yield wait(states.AWAITING_PROOF)
    _accepted(shop.event(plan.job_id, "rejected", "approver", "colours off"), "rejected")
    yield wait(states.REJECTED)


@script("proof_paused", lambda p: setattr(p, "storefront", "proofs24"))
def proof_paused(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """A proof verified while its hot folder (rip2) is paused: it goes on when resumed."""
    shop.submit(plan)
    yield wait(states.AWAITING_PROOF)
    _accepted(shop.event(plan.job_id, "verified", "approver", "proof checked"), "verified")
    yield wait(states.IN_PRODUCTION)
    yield from _ship(shop, plan)


@script("cancel_after_reload")
def cancel_after_reload(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Delivered to rip1 before the reload changes rip1's file names, cancelled after
    it: the file is taken back from where it went."""
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    while not shop.reloaded:
        yield Sleep(0.5)
    yield from _cancel(shop, plan, "order cancelled")


@script("recreate")
def recreate(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    shop.cli("recreate", plan.job_id)
    yield wait(states.IN_HOT_FOLDER, delivered=2)
    yield from _ship(shop, plan)


@script("reopen")
def reopen(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    yield from _ship(shop, plan)
    shop.cli("reopen", plan.job_id)
    yield wait(states.IN_HOT_FOLDER, delivered=2)
    yield from _ship(shop, plan)


def _held_while(shop: Shop, plan: Plan, waiting: str, fact: str, who: str
                ) -> Iterator[Wait | Sleep]:
    """Held while `waiting`; `fact` recorded while held (a note); released: what was
    recorded takes effect, and the job is produced and shipped."""
    shop.submit(plan)
    yield wait(waiting)
    _accepted(shop.event(plan.job_id, "hold", "operator", "customer called"), "hold")
    yield wait(states.BLOCKED)
    _accepted(shop.event(plan.job_id, fact, who), fact)
    yield Sleep(1)
    _accepted(shop.event(plan.job_id, "release", "operator", "customer confirmed"),
              "release")
    yield wait(states.IN_HOT_FOLDER)
    yield from _ship(shop, plan)


@script("hold_release", lambda p: p.ticket.update(payment_status="Pending"))
def hold_release(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Held while unpaid, paid while held."""
    return _held_while(shop, plan, states.ORDERED, "paid", plan.storefront)


@script("hold_unapproved", lambda p: p.ticket.update(approval="AwaitingApproval"))
def hold_unapproved(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Held and released back to UnapprovedOrder (the stall's move), then approved."""
    shop.submit(plan)
    yield wait(states.UNAPPROVED_ORDER)
    _accepted(shop.event(plan.job_id, "hold", "operator", "checking artwork"), "hold")
    yield wait(states.BLOCKED)
    _accepted(shop.event(plan.job_id, "release", "operator", "artwork fine"), "release")
    yield wait(states.UNAPPROVED_ORDER)
    yield Sleep(2)
    _accepted(shop.event(plan.job_id, "approved", "approver"), "approved")
    yield wait(states.IN_HOT_FOLDER)
    yield from _ship(shop, plan)


@script("cancel_delivered")
def cancel_delivered(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Cancelled once in the hot folder: its file is taken back."""
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    yield from _cancel(shop, plan, "order cancelled")


@script("paused", lambda p: setattr(p, "storefront", "print24"))
def paused(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Sent while its hot folder (rip2) is paused: it waits, and goes on resume; the
    RIP takes the file (InProduction)."""
    shop.submit(plan)
    yield wait(states.IN_PRODUCTION)
    yield from _ship(shop, plan)


@script("sftp", lambda p: setattr(p, "storefront", "remote"))
def sftp(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """To the SFTP press, whose server goes away for a while: retried until it is back."""
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    yield from _ship(shop, plan)


@script("lateshop", lambda p: setattr(p, "storefront", "lateshop"))
def lateshop(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """A storefront whose hot folder came with the reload."""
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    yield from _ship(shop, plan)


@script("quick", lambda p: setattr(p, "final", states.IN_HOT_FOLDER))
def quick(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)


@script("clash", lambda p: setattr(p, "storefront", "clashshop"))
def clash(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Two jobs of one order whose hot folder (rip4) names files by order, sku and
    quantity only: the second must never replace the first's file. It fails (and is
    retried) until cancelled; the first ships."""
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    twin = Plan(f"{plan.job_id}B", plan.kind, plan.at, plan.storefront,
                ticket=dict(plan.ticket), via=plan.via)
    shop.submit(twin)
    yield wait(states.COPY_FAILED, job_id=twin.job_id)
    _accepted(shop.event(twin.job_id, "cancelled", plan.storefront, "a duplicate order"),
              "cancelled")
    yield wait(states.CLEAN_UP, job_id=twin.job_id)
    yield from _ship(shop, plan)


@script("recreate_cancel")
def recreate_cancel(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Recreated, and cancelled straight after: no file of it is left for the RIP."""
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    shop.cli("recreate", plan.job_id)
    yield from _cancel(shop, plan, "order cancelled")


@script("reopen_cancelled")
def reopen_cancelled(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Cancelled once delivered, then reopened: live again, produced, and shipped."""
    shop.submit(plan)
    yield wait(states.IN_HOT_FOLDER)
    yield from _cancel(shop, plan, "cancelled by mistake")
    shop.cli("reopen", plan.job_id)
    yield wait(states.IN_HOT_FOLDER, delivered=2)
    yield from _ship(shop, plan)


@script("hold_approved", lambda p: p.ticket.update(approval="AwaitingApproval"))
def hold_approved(shop: Shop, plan: Plan) -> Iterator[Wait | Sleep]:
    """Held while waiting for approval, approved while held."""
    return _held_while(shop, plan, states.UNAPPROVED_ORDER, "approved", "approver")
