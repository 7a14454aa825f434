"""The job object of `jobs --json` and `show --json` (and of the API), with why it waits."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from outputd import states
from outputd.model import Delivery, HistoryEntry, Job, JobFilter, Output, iso
from outputd.store import Store

_DELIVERING = frozenset({"OutputCreated", "CopyToHotFolderFailed"})


# Statuses after which an order is no longer late: it has left the shop.
_OUT = states.DELIVERED_OR_LATER  # a job delivered to a RIP, or further on, is never late


def late_jobs(store: Store, query: JobFilter, now: float) -> list[Job]:
    """Jobs of the query whose ticket's `due_at` has passed and that are not yet in a hot
    folder or further on (DESIGN §15; cancelled ones are not late)."""
    return store.jobs.matching(late_filter(query, now))


def late_filter(query: JobFilter, now: float) -> JobFilter:
    """`query` narrowed to the late jobs (as `late_jobs` finds them)."""
    return replace(query, due_before=now, cancelled=False,
                   status_not_in=query.status_not_in | _OUT)


def is_late(due_at: str | None, status: str, cancelled: bool, now: float) -> bool:
    """Whether a job due at `due_at` (the ticket's) is late: past it, not yet in a hot
    folder or further on, and not cancelled."""
    return bool(due_at and status not in _OUT and not cancelled
                and datetime.fromisoformat(due_at).timestamp() < now)


def job_object(store: Store, job: Job, *, full: bool = True,
               paused: set[str] | None = None) -> dict[str, Any]:
    """The stable JSON shape of DESIGN §5, with `waiting`: why the job waits, if it
    does. `paused`: the paused hot folders, when the caller has read them already."""
    return job_objects(store, [job], full=full, paused=paused)[0]


def job_objects(store: Store, jobs: list[Job], *, full: bool = True,
                paused: set[str] | None = None) -> list[dict[str, Any]]:
    """The job objects of several jobs, their deliveries, outputs and histories read in
    one query each."""
    ids = [job.job_id for job in jobs if full or job.status in _DELIVERING]
    deliveries = store.deliveries.of_jobs(ids) if ids else {}
    if ids and paused is None:
        paused = store.hotfolders.paused()
    outputs = store.deliveries.outputs_of(ids) if full else {}
    histories = store.jobs.histories(ids) if full else {}
    return [_body(job, full, paused or set(), deliveries.get(job.job_id, []),
                  outputs.get(job.job_id, []), histories.get(job.job_id, []))
            for job in jobs]


def _body(job: Job, full: bool, paused: set[str], deliveries: list[Delivery],
          outputs: list[Output], history: list[HistoryEntry]) -> dict[str, Any]:
    t = job.ticket_data  # the stored JSON: no ticket models to load
    body: dict[str, Any] = {
        "job_id": job.job_id,
        "order_id": t["order_id"],
        "storefront": t["storefront"],
        "test_mode": t["test_mode"],
        "product_type": t["product"]["type"],
        "sku": t["product"]["sku"],
        "product_name": t["product"].get("name", ""),
        "quantity": t["quantity"],
        "status": job.status,
        "payment_status": job.payment_status,
        "approval": job.approval,
        "cancelled": job.cancelled,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "customer": {"username": t["customer"]["username"], "email": t["customer"]["email"]},
        "priority": t["priority"],
        "process_after": t["process_after"],
        "due_at": iso(job.due_at),  # when outputd looks at the job again
        "order_due_at": t.get("due_at"),  # when the order must be out (the ticket's)
        "outputs": [],
        "deliveries": [],
        "preflight": job.preflight,
        "history": [],
    }
    if full or job.status in _DELIVERING:
        body["deliveries"] = [
            {"hotfolder": d.hotfolder, "path": d.path, "state": d.state,
             "attempts": d.attempts, "error": d.error,
             "next_attempt_at": iso(d.next_attempt_at)}
            for d in deliveries
        ]
    if full:
        body["files"] = [{"path": f["path"], "role": f["role"]} for f in t["files"]]
        body["outputs"] = [
            {"name": o.name, "bytes": o.bytes, "sha256": o.sha256, "pages": o.pages}
            for o in outputs
        ]
        body["history"] = [
            {"at": iso(h.at), "status": h.status, "message": h.message, "by": h.by}
            for h in history
        ]
    body["waiting"] = waiting(body, t, paused)  # after the history: who holds the job
    return body


def waiting(body: dict[str, Any], ticket: dict[str, Any], paused: set[str]) -> str | None:
    """Why a job is not moving on, in an operator's words, or None."""
    job, status = body["job_id"], body["status"]
    if body["cancelled"] or status in ("CleanUp", "InHotFolder", "InProduction"):
        return None
    if status == "Blocked":
        held = [h for h in body["history"] if h["status"] == "Blocked"]
        by = f" by {held[-1]['by']}" if held else ""  # the history is in full objects
        return f"held{by} (outputd event {job} release)"
    if status in ("Ordered", "FutureOrder", "UnapprovedOrder"):
        if body["payment_status"] != "Paid":
            return f"for payment (outputd event {job} paid)"
        if body["approval"] == "AwaitingApproval":
            return f"for approval (outputd event {job} approved)"
        if ticket.get("process_after"):
            return f"until {ticket['process_after']} (process_after)"
    if status == "AwaitingData":
        return "for its files to arrive in the intake folder"
    stuck = [d for d in body["deliveries"] if d["state"] in states.DELIVERY_OPEN]
    held = sorted({d["hotfolder"] for d in stuck if d["hotfolder"] in paused})
    if held:
        return f"hot folder {', '.join(held)} is paused (outputd resume {held[0]})"
    retries = sorted(d["next_attempt_at"] for d in stuck if d["next_attempt_at"])
    if retries:
        return f"to try the delivery again at {retries[0][11:16]} UTC (back-off)"
    if any(d["state"] == states.DELIVERY_FAILED for d in stuck):
        return f"for an operator: the delivery failed for good (outputd retry {job})"
    return None
