"""Requests shared by the CLI and the intake folder: record an event for jobs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from outputd import logs, states
from outputd.errors import RequestRefused
from outputd.layout import Layout
from outputd.ops import rules as events
from outputd.store import SqlStore

log = logging.getLogger(__name__)


def target_jobs(store: SqlStore, job_id: str | None, order_id: str | None,
                storefront: str | None = None) -> list[str]:
    """The jobs an event names: one job, or every job of one storefront's order (order
    ids are each storefront's own). Without a storefront, an order id must belong to one
    storefront only."""
    if job_id is not None:
        store.get_job(job_id)  # raises UnknownJob
        return [job_id]
    found = store.order_jobs(order_id or "")
    if storefront is None and len({shop for shop, _ in found}) > 1:
        shops = ", ".join(sorted({shop for shop, _ in found}))
        raise RequestRefused(f"order {order_id} exists in several storefronts ({shops}); "
                             "name the storefront")
    ids = [job for shop, job in found if storefront is None or shop == storefront]
    if not ids:
        where = f" of storefront {storefront}" if storefront is not None else ""
        raise RequestRefused(f"there are no jobs for order {order_id}{where}")
    return ids


@dataclass(frozen=True)
class Recorded:
    """Where an event was recorded, where it was already so, and where it was refused."""

    jobs: list[str]
    already: list[str]
    refused: list[str]


def record_event(store: SqlStore, layout: Layout, job_ids: Sequence[str], event: str,
                 by: str, message: str = "") -> Recorded:
    """Check `event` against each job's current status and record it where allowed; an
    event that asks for what is already so is a no-op that succeeds.

    Raises RequestRefused when no job allows it (and none has it already).
    """
    allowed: list[str] = []
    already: list[str] = []
    refusals: list[str] = []
    for job_id in job_ids:
        job = store.get_job(job_id)
        final = event in events.FINAL_EVENTS and job.status == states.CLEAN_UP
        if events.already_so(job, event, store.history(job_id) if final else None):
            already.append(job_id)
            continue
        try:
            history = store.history(job_id) if event == "release" else None
            events.plan(job, event, history)
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
        store.add_events(allowed, event, by, message)
    for job_id in already:
        logs.event(log, logging.INFO, "event.already", job=job_id, event=event, by=by)
    for job_id in allowed:
        logs.event(log, logging.INFO, "event.recorded", job=job_id, event=event, by=by)
    for reason in refusals:
        logs.event(log, logging.WARNING, "event.refused", event=event, by=by, reason=reason)
    return Recorded(allowed, already, refusals)
