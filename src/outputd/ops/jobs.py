"""Reading jobs: search, show, fetch their outputs; and clearing a storefront's test data."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from outputd import states
from outputd.errors import BadRequest, RequestRefused
from outputd.fileutil import private_temp
from outputd.model import Job, JobFilter, iso
from outputd.ops.access import Caller
from outputd.ops.fetch import fetch_outputs
from outputd.ops.view import job_object, job_objects, late_filter, late_jobs
from outputd.store import Store

if TYPE_CHECKING:
    from outputd.layout import Layout


class ExportExists(RequestRefused):
    """clear-test-data was given a file that exists: an earlier export is never replaced."""


def _scoped(caller: Caller, query: JobFilter) -> JobFilter:
    """`query` limited to the storefronts the caller may see."""
    if not caller.storefronts:
        return query
    return replace(query, storefronts=caller.storefronts)


def _matching(store: Store, query: JobFilter, late: bool) -> list[Job]:
    """The jobs of `query` (late ones only with `late`)."""
    return late_jobs(store, query, time.time()) if late else store.jobs.matching(query)


def search(store: Store, caller: Caller, query: JobFilter, *, late: bool = False,
           full: bool = False) -> tuple[list[dict[str, Any]], int]:
    """The job objects matching `query` (late ones only with `late`), and how many match
    without the query's limit."""
    query = _scoped(caller, query)
    bodies = job_objects(store, _matching(store, query, late), full=full)
    if late or query.limit is None or len(bodies) < query.limit:
        return bodies, len(bodies)
    return bodies, store.jobs.count(replace(query, limit=None))


def page(store: Store, caller: Caller, query: JobFilter, *, late: bool = False
         ) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the job objects matching `query` (its `limit` is the page size), and
    the cursor of the next page, or None when this is the last."""
    query = _scoped(caller, query)
    jobs = _matching(store, query, late)
    bodies = job_objects(store, jobs)
    more = query.limit is not None and len(jobs) == query.limit
    return bodies, cursor_of(jobs[-1]) if more else None


def problem_counts(store: Store, caller: Caller) -> dict[str, int]:
    """How many of the caller's jobs (cancelled ones left out) are in each status that
    asks for someone (states.PROBLEMS), and how many are late (key `late`)."""
    scope = _scoped(caller, JobFilter(cancelled=False))
    counts = {status: store.jobs.count(replace(scope, status=status))
              for status in states.PROBLEMS}
    counts["late"] = store.jobs.count(late_filter(scope, time.time()))
    return counts


def cursor_of(job: Job) -> str:
    """An opaque cursor: the next page starts after this job (newest first)."""
    raw = json.dumps([job.created_at, job.job_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def after_cursor(cursor: str) -> tuple[float, str]:
    """The (created_at, job_id) a cursor stands for; RequestRefused if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        return float(created_at), str(job_id)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"{cursor!r} is not a cursor this server gave") from exc


def get(store: Store, caller: Caller, job_id: str) -> Job:
    """The job, if the caller may see it (else UnknownJob)."""
    return caller.visible(store.jobs.get(job_id))


def show(store: Store, caller: Caller, job_id: str) -> dict[str, Any]:
    """One job in full (DESIGN §5)."""
    return job_object(store, get(store, caller, job_id))


def fetch(store: Store, caller: Caller, job_id: str, folder: Path) -> list[Path]:
    """Copy the job's outputs into `folder` (see fetch_outputs)."""
    job = get(store, caller, job_id)
    caller.require("download", str(job.ticket_data["storefront"]))
    return fetch_outputs(store, job_id, folder)


def clear_test_data(store: Store, layout: Layout, caller: Caller, storefront: str,
                    export: Path) -> list[str]:
    """Write the storefront's test jobs to `export` (never replacing a file), then remove
    them with their folders; returns their ids."""
    caller.require("clear_test_data", storefront)
    jobs = store.jobs.matching(JobFilter(storefront=storefront, test_mode=True))
    now = iso(time.time())
    exported = []
    for job in jobs:
        body = job_object(store, job)
        body["history"].append({"at": now, "status": states.JOB_DATA_DELETED,
                                "message": "test data cleared", "by": caller.name})
        exported.append(body)
    with private_temp(export) as temp:
        with open(temp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(exported, indent=2, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temp, export)  # never replaces: an earlier export is the only record
        except FileExistsError:
            raise ExportExists(f"{export} exists; clear-test-data never replaces an "
                               "export, so name a new file") from None
    ids = [job.job_id for job in jobs]
    store.jobs.remove(ids)
    for job_id in ids:
        layout.clear_work(job_id)
        layout.remove_sources(job_id)
    return ids
