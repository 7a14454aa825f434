"""Recording an event for jobs (the CLI, the intake folder's event tickets, the API): the
daemon applies it; and retrying a hot folder's failed deliveries."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from outputd import logs, states
from outputd.errors import RequestRefused, UnknownHotFolder, UnknownOrder
from outputd.layout import Layout
from outputd.model import Job
from outputd.ops import rules
from outputd.ops.access import Caller, Forbidden
from outputd.store import Store

log = logging.getLogger(__name__)


def target_jobs(store: Store, caller: Caller, job_id: str | None, order_id: str | None,
                storefront: str | None = None) -> list[str]:
    """The jobs an event names: one job, or every job of one storefront's order (order
    ids are each storefront's own). Without a storefront, an order id must belong to one
    storefront only. Jobs the caller cannot see are not found."""
    if job_id is not None:
        caller.visible(store.jobs.get(job_id))  # raises UnknownJob
        return [job_id]
    found = caller.only_visible(store.jobs.of_order(order_id or ""))
    if storefront is None and len({shop for shop, _ in found}) > 1:
        shops = ", ".join(sorted({shop for shop, _ in found}))
        raise RequestRefused(f"order {order_id} exists in several storefronts ({shops}); "
                             "name the storefront")
    ids = [job for shop, job in found if storefront is None or shop == storefront]
    if not ids:
        where = f" of storefront {storefront}" if storefront is not None else ""
        raise UnknownOrder(f"there are no jobs for order {order_id}{where}")
    return ids


@dataclass(frozen=True)
class Recorded:
    """Where an event was recorded, where it was already so, and where it was refused."""

    jobs: list[str]
    already: list[str]
    refused: list[str]


def record_event(store: Store, layout: Layout, caller: Caller, job_ids: Sequence[str],
                 event: str, message: str = "", by: str | None = None) -> Recorded:
    """Check that the caller may record `event`, then check it against each job's
    current status and record it where allowed; an event that asks for what is already
    so is a no-op that succeeds. `by` names who asked where the caller relays it (an
    event ticket's `by`); else the caller's name.

    Raises RequestRefused when no job allows it (and none has it already).
    """
    by = by or caller.name
    if event == "override" and not message.strip():
        raise RequestRefused("an override needs a message saying why (--message WHY): the "
                             "history keeps it with who overrode the failed checks")
    allowed: list[str] = []
    already: list[str] = []
    refusals: list[str] = []
    for job_id in job_ids:
        job = caller.visible(store.jobs.get(job_id))
        caller.require(f"event:{event}", str(job.ticket_data["storefront"]))
        final = event in rules.FINAL_EVENTS and job.status == states.CLEAN_UP
        if rules.already_so(job, event, store.jobs.history(job_id) if final else None):
            already.append(job_id)
            continue
        try:
            history = store.jobs.history(job_id) if event == "release" else None
            rules.plan(job, event, history)
            if event == "reopen" and not layout.sources_kept(job_id):
                raise RequestRefused(
                    f"job {job_id}: its sources are no longer kept, so it cannot be reopened"
                )
        except RequestRefused as exc:
            refusals.append(str(exc))
            continue
        allowed.append(job_id)
    if not allowed and not already:
        raise RequestRefused(refusals[0] if len(refusals) == 1 else "; ".join(refusals))
    if allowed:
        store.events.add(allowed, event, by, message)
    for job_id in already:
        logs.event(log, logging.INFO, "event.already", job=job_id, event=event, by=by)
    for job_id in allowed:
        logs.event(log, logging.INFO, "event.recorded", job=job_id, event=event, by=by)
    for reason in refusals:
        logs.event(log, logging.WARNING, "event.refused", event=event, by=by, reason=reason)
    return Recorded(allowed, already, refusals)


# The events a person may ask of one job on the board, in the order they are offered.
BOARD_EVENTS = ("approved", "rejected", "verified", "paid", "retry", "override", "hold",
                "release",
                *states.STATIONS, "shipped", "ready_for_collection", "completed",
                "recreate", "reopen", "renotify", "cancelled")
# Those that cannot be undone: the board asks for a confirmation first.
IRREVERSIBLE = frozenset({"cancelled", "recreate", "reopen", "override"})


def available(store: Store, layout: Layout, caller: Caller, job: Job) -> list[str]:
    """The events `caller` may record for `job` now (its role, and the job's status),
    leaving out those that ask for what is already so."""
    shop = str(job.ticket_data["storefront"])
    history = None
    offered = []
    for event in BOARD_EVENTS:
        if not caller.may(f"event:{event}") or not caller.sees(shop):
            continue
        if event in ("release", "reopen") and history is None:
            history = store.jobs.history(job.job_id)
        if rules.already_so(job, event, history):
            continue
        try:
            rules.plan(job, event, history)
        except RequestRefused:
            continue
        if event == "reopen" and not layout.sources_kept(job.job_id):
            continue
        offered.append(event)
    return offered


def retry_hotfolder(store: Store, layout: Layout, caller: Caller, hotfolder: str,
                    known: Sequence[str]) -> list[str]:
    """Record `retry` for every job whose delivery to `hotfolder` failed (after an
    outage); returns the jobs it was recorded for."""
    _known(hotfolder, known)
    caller.require("event:retry")
    ids = [job_id for job_id in store.deliveries.failed_at(hotfolder)
           if caller.visible_id(store, job_id)]
    if not ids:
        raise RequestRefused(f"no job has a failed delivery to {hotfolder}")
    return record_event(store, layout, caller, ids, "retry").jobs


def pause(store: Store, caller: Caller, hotfolder: str, known: Sequence[str],
          paused: bool) -> None:
    """Hold (or resume) deliveries to a hot folder; jobs that waited for it go on."""
    _known(hotfolder, known)
    caller.require("pause")
    if caller.storefronts:
        raise Forbidden(f"{caller.name} is limited to some storefronts; a hot folder serves "
                        "every storefront")
    store.hotfolders.set_paused(hotfolder, paused)
    if not paused:
        store.hotfolders.wake(hotfolder)


def _known(hotfolder: str, known: Sequence[str]) -> None:
    if hotfolder not in known:
        raise UnknownHotFolder(f"there is no hot folder {hotfolder} in the config")
