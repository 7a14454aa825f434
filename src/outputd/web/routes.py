"""The routes of `/api/v1` (DESIGN §12): each parses, calls one operation, answers."""

from __future__ import annotations

import enum
import hashlib
import stat
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from outputd import safefs, states
from outputd.errors import BadRequest, RequestRefused, TicketConflict
from outputd.model import JobFilter
from outputd.ops import events, jobs, preview, status
from outputd.ops import scan as scan_op
from outputd.ops.access import Caller, Forbidden
from outputd.ops.view import job_object
from outputd.web import upload
from outputd.web.site import Gone, Json, NotFound, Site


class Problem(BaseModel):
    """An error: `application/problem+json` (RFC 9457) with one sentence in `detail`."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    said = {400: "the request cannot mean anything", 401: "no valid token",
            403: "the caller's role may not", 404: "not found, or not the caller's",
            409: "not allowed in the job's status now", 410: "gone (cleaned up)",
            413: "too large", 422: "no such page, or it does not render",
            429: "too many failed authentications",
            501: "not served yet", 503: "cannot be taken in now (a full disk)"}
    schema = Problem.model_json_schema()
    return {code: {"description": said[code],
                   "content": {"application/problem+json": {"schema": schema}}}
            for code in codes}


# Every route may answer these; each route adds its own.
router = APIRouter(responses=_problems(400, 401, 403, 404, 409, 429))
StatusName = enum.Enum(  # type: ignore[misc]
    "StatusName", {name: name for name in sorted(states.ALL | states.NOTES)}, type=str)
EventName = enum.Enum(  # type: ignore[misc]
    "EventName", {name: name for name in states.EVENTS}, type=str)


def _caller(request: Request) -> Caller:
    return Site.of(request).caller(request)


SiteDep = Annotated[Site, Depends(Site.of)]
CallerDep = Annotated[Caller, Depends(_caller)]


class EventBody(BaseModel):
    """An event to record, as `outputd event` takes it."""

    event: EventName
    message: str = Field("", max_length=2000)
    storefront: str | None = None  # for an order's events: which storefront's order


def _event_answer(done: events.Recorded, event: str) -> Json:
    return Json({"event": event, "recorded": done.jobs, "already": done.already,
                 "refused": done.refused}, status_code=202)


_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["ticket"],
               "properties": {"ticket": {"type": "string",
                                         "description": "the outputd.job/1 ticket"}},
               "additionalProperties": {"type": "string", "format": "binary",
                                        "description": "a file, named by its path"}}}}}}


@router.post("/jobs", status_code=201, summary="Submit a job", openapi_extra=_UPLOAD_BODY,
             responses={200: {"description": "the same ticket was accepted already"},
                        **_problems(413, 503)})
async def submit_job(request: Request, site: SiteDep, caller: CallerDep) -> Json:
    """A ticket and its files as multipart/form-data, taken in as the intake folder
    would: 201 with the job, 200 when the same ticket was accepted already, 409 when the
    job id exists with another ticket, 413 over limits.max_file_bytes."""
    caller.require("submit")  # before a byte of the body is read
    boundary = upload.boundary_of(request.headers.get("content-type", ""))
    with upload.staging_folder(site.layout.sources_root) as staging:
        reader = upload.UploadReader(staging, boundary, site.config.limits.max_file_bytes)
        received = await reader.read(request.stream())
        job, created = await run_in_threadpool(_take_in, site, caller, received)
    return Json(job, status_code=201 if created else 200)


def _take_in(site: Site, caller: Caller, received: upload.Received
             ) -> tuple[dict[str, Any], bool]:
    from outputd.intake.accept import Intake
    from outputd.notifications import policy
    from outputd.tickets import JobTicket, parse_ticket

    ticket = parse_ticket(received.ticket)
    if isinstance(ticket, JobTicket):
        named = {f.path for f in ticket.files}
        extra = [name for name in received.files if name not in named]
        if extra:
            raise BadRequest(f"the part {extra[0]} is not a file of the ticket (its files: "
                             f"{', '.join(sorted(named))})")
    intake = Intake(site.store, site.layout, "web", policy(site.config.notify))
    outcome = intake.submit(received.ticket, caller, files_fd=received.staging_fd,
                            jobs_only=True)
    job = jobs.get(site.store, caller, str(outcome.job_id))
    if outcome.result == "duplicate" and job.ticket_sha256 != hashlib.sha256(
            received.ticket).hexdigest():
        raise TicketConflict(f"job {job.job_id} already exists with a different ticket")
    return job_object(site.store, job), outcome.result == "accepted"


@router.get("/jobs", summary="List and search jobs, newest first")
def list_jobs(
    site: SiteDep, caller: CallerDep,
    status_: Annotated[StatusName | None, Query(alias="status")] = None,
    order: str | None = None, storefront: str | None = None,
    type_: Annotated[Literal["static", "multipart", "megaedit"] | None,
                     Query(alias="type")] = None,
    search: str | None = None, history_status: StatusName | None = None,
    payment_status: str | None = None,
    approval: Literal["NotRequired", "AwaitingApproval", "Approved", "Rejected"] | None = None,
    test_mode: bool | None = None,
    cancelled: Literal["include", "only"] | None = None,
    late: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Json:
    """`{"jobs": [...], "next": CURSOR-or-null}`; cancelled jobs are left out unless
    `cancelled=include` (or `only`)."""
    query = JobFilter(
        status=status_ and status_.value, order_id=order, storefront=storefront,
        product_type=type_, search=search, payment_status=payment_status,
        history_status=history_status and history_status.value,
        approval=approval, test_mode=test_mode, limit=limit,
        cancelled={"include": None, "only": True}.get(cancelled or "", False),
        after=jobs.after_cursor(cursor) if cursor else None,
    )
    bodies, following = jobs.page(site.store, caller, query, late=late)
    return Json({"jobs": bodies, "next": following})


@router.get("/jobs/{job_id}", summary="One job, as show --json")
def get_job(job_id: str, site: SiteDep, caller: CallerDep) -> Json:
    """The job object (404 for a job outside the caller's storefronts)."""
    return Json(jobs.show(site.store, caller, job_id))


@router.post("/jobs/{job_id}/events", status_code=202, summary="Record an event for a job")
def job_event(job_id: str, body: EventBody, site: SiteDep, caller: CallerDep) -> Json:
    """As `outputd event JOB EVENT`: 202 when recorded (or already so), 409 when the
    job's status does not allow it."""
    event = str(body.event.value)
    ids = events.target_jobs(site.store, caller, job_id, None)
    done = events.record_event(site.store, site.layout, caller, ids, event, body.message)
    return _event_answer(done, event)


@router.post("/orders/{order_id}/events", status_code=202,
             summary="Record an event for every job of an order")
def order_event(order_id: str, body: EventBody, site: SiteDep,
                caller: CallerDep) -> Json:
    """The same for every job of the order the caller may see; `storefront` must name
    the order's storefront where the id is in more than one (409 otherwise)."""
    event = str(body.event.value)
    ids = events.target_jobs(site.store, caller, None, order_id, body.storefront)
    done = events.record_event(site.store, site.layout, caller, ids, event, body.message)
    return _event_answer(done, event)


@router.post("/jobs/{job_id}/retry", status_code=202, summary="Re-run a failed stage")
def retry(job_id: str, site: SiteDep, caller: CallerDep) -> Json:
    """As `outputd retry JOB`."""
    ids = events.target_jobs(site.store, caller, job_id, None)
    return _event_answer(events.record_event(site.store, site.layout, caller, ids, "retry"),
                         "retry")


@router.get("/jobs/{job_id}/outputs/{name}", summary="Download an output",
            response_class=FileResponse,
            responses={206: {"description": "the Range asked for"}, **_problems(410)})
def download(job_id: str, name: str, site: SiteDep, caller: CallerDep) -> FileResponse:
    """The output's bytes: `ETag` is its sha256 and `Range` is honoured; 410 once the
    job is cleaned up."""
    job = jobs.get(site.store, caller, job_id)
    caller.require("download", str(job.ticket_data["storefront"]))
    if job.status == states.CLEAN_UP:
        raise Gone(f"job {job_id} is CleanUp: its output was removed with its working "
                   "folder")
    output = next((o for o in site.store.deliveries.outputs(job_id) if o.name == name), None)
    if output is None:
        raise NotFound(f"job {job_id} has no output {name}")
    found = safefs.lstat_at(None, output.path)
    if found is None or not stat.S_ISREG(found.st_mode) or found.st_size != output.bytes:
        raise RequestRefused(f"job {job_id}: its output {name} is not on this node")
    return FileResponse(output.path, media_type="application/pdf" if name.endswith(".pdf")
                        else "application/octet-stream", filename=name,
                        headers={"ETag": f'"{output.sha256}"'})


@router.get("/jobs/{job_id}/pages/{page}.png", summary="A page preview",
            response_class=Response, responses={
                200: {"content": {"image/png": {}}, "description": "the page as a PNG"},
                **_problems(410, 422)})
def page_preview(job_id: str, page: int, site: SiteDep, caller: CallerDep,
                 width: Annotated[int, Query(ge=preview.MIN_WIDTH, le=preview.MAX_WIDTH)]
                 = preview.DEFAULT_WIDTH) -> Response:
    """Page `page` (from 1) of the job's output, or of its source files before there is
    one, `width` pixels wide; 410 once the job is cleaned up, 422 for a page that does
    not exist or does not render."""
    png = preview.page_png(site.config, site.store, site.layout, caller, job_id, page, width)
    return Response(png, media_type="image/png", headers={
        "Cache-Control": "private, max-age=60"})


@router.get("/jobs/{job_id}/report.pdf", summary="The preflight report as a PDF",
            response_class=Response, responses={
                200: {"content": {"application/pdf": {}},
                      "description": "a summary page, then a page per problem"}})
def preflight_report(job_id: str, site: SiteDep, caller: CallerDep) -> Response:
    """As `outputd show JOB --report FILE.pdf`: every check by result, then a page per
    problem with thumbnails of its pages and where the check places it."""
    from outputd.ops.prepress import report_pdf

    data, _ = report_pdf(site.config, site.store, site.layout, caller, job_id)
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{job_id}-preflight.pdf"',
        "Cache-Control": "private, no-store"})


@router.get("/hotfolders", summary="Hot folder health")
def hotfolders(site: SiteDep, caller: CallerDep) -> dict[str, Any]:
    """Each hot folder: paused or not, last success and error, files a RIP has not
    taken, and the jobs whose delivery to it failed (those the caller may see)."""
    return {"hotfolders": status.hotfolders(site.config, site.store, caller)}


@router.post("/hotfolders/{name}/pause", summary="Hold deliveries to a hot folder")
def pause(name: str, site: SiteDep, caller: CallerDep) -> dict[str, Any]:
    """As `outputd pause NAME`."""
    events.pause(site.store, caller, name, list(site.config.hotfolders), True)
    return {"hotfolder": name, "paused": True}


@router.post("/hotfolders/{name}/resume", summary="Let deliveries to a hot folder go on")
def resume(name: str, site: SiteDep, caller: CallerDep) -> dict[str, Any]:
    """As `outputd resume NAME`."""
    events.pause(site.store, caller, name, list(site.config.hotfolders), False)
    return {"hotfolder": name, "paused": False}


@router.get("/status", summary="As outputd status --json")
def status_report(site: SiteDep, caller: CallerDep) -> dict[str, Any]:
    """Counts, queue, hot folders, free space: for callers of every storefront only,
    since the counts cover every storefront."""
    if caller.storefronts:
        raise Forbidden(f"{caller.name} is limited to some storefronts; the status report "
                        "counts every storefront's jobs")
    from outputd.intake.accept import waiting_tickets

    cfg = site.config
    waiting = waiting_tickets(cfg.daemon.intake_dir, time.time() - status.INTAKE_WAITING_S)
    return status.build(cfg, site.store, waiting)


class ScanBody(BaseModel):
    """What a station's reader typed, and the station."""

    code: str = Field(min_length=1, max_length=200)
    station: str = Field(min_length=1, max_length=64,
                         description="one of " + ", ".join(states.STATIONS))


@router.post("/scan", status_code=202, summary="A scan at a production station",
             responses=_problems(422))
def scan(body: ScanBody, site: SiteDep, caller: CallerDep) -> Json:
    """As `outputd scan CODE --station STATION`: the job the code names records the
    station's event; 404 for a code that names no job, 422 for an unknown station, 409
    when the job's status does not allow it; a second scan at a station is a no-op."""
    done = scan_op.scan(site.store, site.layout, caller, body.code, body.station)
    return _event_answer(done, body.station)
