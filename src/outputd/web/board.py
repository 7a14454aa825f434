"""The print operations board's job pages (DESIGN §13): the jobs list and one job, each
with the actions the user's role allows. Server-rendered HTML that works without
JavaScript (filters are a GET form, actions are POST forms with the session's CSRF
token); with JavaScript, web/static/board.js asks for the page's live part again each
second, and gets 304 while nothing in the store has changed."""

from __future__ import annotations

import hashlib
import time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from outputd import states
from outputd.errors import OutputdError, RequestRefused
from outputd.model import JobFilter
from outputd.ops import accounts, events, jobs
from outputd.ops.access import Caller
from outputd.ops.view import is_late
from outputd.pipeline.report import RESULTS, result_of
from outputd.web import render
from outputd.web.site import SESSION_COOKIE, Site, status_of

router = APIRouter(include_in_schema=False)
TABS = (("", "All"), ("static", "Static"), ("multipart", "Multipart"),
        ("megaedit", "MegaEdit"))
FILTERS = ("type", "search", "status", "history_status", "payment_status", "approval",
           "storefront", "test_mode", "late", "cancelled", "cursor")
PAYMENTS = ("Paid", "Pending", "Processing", "Refunded")  # any string; these are common
APPROVALS = (("AwaitingApproval", "requiring approval"), ("Approved", "approved"),
             ("NotRequired", "not required"), ("Rejected", "rejected"))
PAGE_SIZE = 50
PREVIEW_PAGES = 12  # pages previewed on a job's page
_WARNINGS = {
    "cancelled": "The job stops where it is and its file is taken back from the hot folder "
                 "if the RIP has not picked it up. Only a reopen brings the job back.",
    "recreate": "The output is made again and delivered to the RIP again: a reprint. The "
                "old file is taken back first if the RIP has not picked it up.",
    "reopen": "The cleaned-up job is made again from its kept sources and delivered to "
              "the RIP again: a reprint. A cancelled job is live again.",
    "override": "The job goes on to output and the RIP although its preflight failed. The "
                "failed checks stay in its report, with your name and reason in its "
                "history.",
}


def session(request: Request) -> tuple[Caller, str] | None:
    """The logged-in user and the session's CSRF token, or None."""
    session_id = request.cookies.get(SESSION_COOKIE, "")
    return accounts.by_session(Site.of(request).store, session_id) if session_id else None


def refused(exc: OutputdError, caller: Caller | None, csrf: str, back: str = "/"
            ) -> HTMLResponse:
    """An operation's refusal as a page, with the status the API would answer."""
    code = status_of(exc)
    titles = {401: "Log in again", 403: "Not allowed", 404: "Not found", 409: "Not now"}
    return render.page("error.html", caller, csrf, code, title=titles.get(code, "Refused"),
                       detail=str(exc), back=back)


def live(request: Request, caller: Caller, parts: str) -> tuple[str, bool]:
    """The ETag of a page's live part, and whether the browser has it already: the
    store's change marker, the paused hot folders, who asks, what, and the minute (a
    job becomes late, a retry time passes)."""
    site = Site.of(request)
    key = (f"{site.store.jobs.marker()}|{sorted(site.store.hotfolders.paused())}|"
           f"{caller}|{parts}|{int(time.time() // 60)}")
    etag = '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'
    return etag, request.headers.get("if-none-match") == etag


def _filter(params: dict[str, str]) -> tuple[JobFilter, bool, str]:
    """The job filter of the list's query parameters, whether only late jobs are asked
    for, and what was not understood (left out of the filter)."""
    problems = []

    def one_of(name: str, allowed: set[str]) -> str | None:
        value = params.get(name) or None
        if value is not None and value not in allowed:
            problems.append(f"{name} {value!r} is not known")
            return None
        return value

    after = None
    if params.get("cursor"):
        try:
            after = jobs.after_cursor(params["cursor"])
        except RequestRefused as exc:
            problems.append(str(exc))
    query = JobFilter(
        status=one_of("status", set(states.ALL)),
        history_status=one_of("history_status", set(states.ALL) | set(states.NOTES)),
        product_type=one_of("type", {"static", "multipart", "megaedit"}),
        approval=one_of("approval", {a for a, _ in APPROVALS}),
        search=params.get("search") or None, order_id=None,
        storefront=params.get("storefront") or None,
        payment_status=params.get("payment_status") or None,
        test_mode={"true": True, "false": False}.get(params.get("test_mode", "")),
        cancelled={"include": None, "only": True}.get(params.get("cancelled", ""), False),
        limit=PAGE_SIZE, after=after,
    )
    return query, params.get("late") == "true", "; ".join(problems)


def _rows(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = time.time()
    for body in bodies:
        body["late"] = is_late(body.get("order_due_at"), body["status"], body["cancelled"],
                               now)
        body["previewable"] = body["status"] != states.CLEAN_UP
    return bodies


@router.get("/", response_model=None)
def jobs_page(request: Request, fragment: bool = False) -> Response:
    """The jobs list: tabs per product type, search and filters, counts of the jobs that
    need someone, and a page of rows, newest first."""
    found = session(request)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    caller, csrf = found
    site = Site.of(request)
    params = {k: v for k, v in request.query_params.items() if k in FILTERS and v}
    etag, unchanged = live(request, caller, f"jobs?{sorted(params.items())}")
    if fragment and unchanged:
        return Response(status_code=304, headers={"ETag": etag})
    query, late, problem = _filter(params)
    bodies, more = jobs.page(site.store, caller, query, late=late)
    counts = jobs.problem_counts(site.store, caller)
    context: dict[str, Any] = dict(
        params=params, tabs=TABS, statuses=sorted(states.ALL), payments=PAYMENTS,
        history_statuses=sorted(states.ALL | states.NOTES), approvals=APPROVALS,
        jobs=_rows(bodies), more=more, error=problem, nav="jobs",
        counts=[(status, f"/?status={status}", counts[status]) for status in states.PROBLEMS]
        + [("Late", "/?late=true", counts["late"])],
        live_url=str(request.url.include_query_params(fragment="1")),
    )
    answer = render.page("_jobs_live.html" if fragment else "jobs.html", caller, csrf,
                         etag=etag, **context)
    answer.headers["ETag"] = etag
    return answer


@router.get("/jobs/{job_id}", response_model=None)
def job_page(request: Request, job_id: str, fragment: bool = False, recorded: str = "",
             already: str = "") -> Response:
    """One job: facts, actions, files and previews, preflight, outputs, deliveries,
    notifications and history."""
    found = session(request)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    caller, csrf = found
    site = Site.of(request)
    etag, unchanged = live(request, caller, f"job {job_id}")
    if fragment and unchanged:
        return Response(status_code=304, headers={"ETag": etag})
    try:
        job = jobs.get(site.store, caller, job_id)
        body = jobs.show(site.store, caller, job_id)
    except OutputdError as exc:
        return refused(exc, caller, csrf)
    checks = sorted((body["preflight"] or {}).get("checks", []),
                    key=lambda c: RESULTS.index(result_of(c)))
    pages = body["outputs"][0]["pages"] if body["outputs"] else 1
    context: dict[str, Any] = dict(
        job=body, nav="jobs", said=_said(recorded, already),
        attributes=job.ticket_data.get("attributes") or {},
        actions=events.available(site.store, site.layout, caller, job),
        irreversible=events.IRREVERSIBLE,
        checks=[{**c, "result": result_of(c), "pages": c.get("pages") or []} for c in checks],
        previews=range(1, min(pages or 1, PREVIEW_PAGES) + 1)
        if body["status"] != states.CLEAN_UP else [],
        can_download=caller.may("download") and caller.sees(body["storefront"]),
        notifications=[h for h in body["history"] if h["status"] in states.NOTES],
        late=is_late(body.get("order_due_at"), body["status"], body["cancelled"],
                     time.time()),
        reason=_reason(body),
        live_url=str(request.url.replace(query="fragment=1")),
    )
    answer = render.page("_job_live.html" if fragment else "job.html", caller, csrf,
                         etag=etag, **context)
    answer.headers["ETag"] = etag
    return answer


def _said(recorded: str, already: str) -> str:
    """What the page says after an action (only of the board's own events: a link cannot
    make it say anything else)."""
    if recorded in events.BOARD_EVENTS:
        return (f"{recorded.replace('_', ' ').capitalize()} recorded: the daemon applies it "
                "within a second.")
    if already in events.BOARD_EVENTS:
        return f"{already.replace('_', ' ').capitalize()}: it was so already."
    return ""


def _reason(body: dict[str, Any]) -> str:
    """Why a failed job failed, from its latest entry in that status."""
    if states.group(body["status"]) != "problem":
        return ""
    entry = next((h for h in reversed(body["history"]) if h["status"] == body["status"]),
                 None)
    return f"{body['status']}: {entry['message']}" if entry else ""


@router.get("/jobs/{job_id}/confirm", response_model=None)
def confirm(request: Request, job_id: str, event: str) -> Response:
    """What an action that cannot be undone will do, and a form to go ahead."""
    found = session(request)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    caller, csrf = found
    return render.page("confirm.html", caller, csrf, job_id=job_id, event=event,
                       warning=_WARNINGS.get(event, ""), nav="jobs")


@router.post("/jobs/{job_id}/events", response_model=None)
def act(request: Request, job_id: str, event: Annotated[str, Form()],
        csrf_token: Annotated[str, Form()] = "", message: Annotated[str, Form()] = "",
        confirmed: Annotated[str, Form()] = "") -> Response:
    """Record an event for the job (the session's CSRF token first); an action that
    cannot be undone needs its confirmation."""
    site = Site.of(request)
    found = session(request)
    try:
        caller = site.caller(request, csrf_token)
        if event in events.IRREVERSIBLE and confirmed != "yes":
            return RedirectResponse(f"/jobs/{job_id}/confirm?event={event}", status_code=303)
        if event not in events.BOARD_EVENTS:
            raise RequestRefused(f"{event!r} is not an action of the board")
        ids = events.target_jobs(site.store, caller, job_id, None)
        done = events.record_event(site.store, site.layout, caller, ids, event, message)
    except OutputdError as exc:
        who, csrf = found or (None, "")
        return refused(exc, who, csrf, back=f"/jobs/{job_id}")
    outcome = "recorded" if done.jobs else "already"
    return RedirectResponse(f"/jobs/{quote(job_id)}?{outcome}={event}", status_code=303)
