"""Delivery: which files go to which hot folder, one attempt at one of them, and the
stage that sends a job's outputs."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from outputd import logs, safefs, states
from outputd.config import LocalHotFolder, SftpHotFolder
from outputd.errors import (
    ConfigError,
    CopyAborted,
    DeliveryError,
    NameTaken,
    OutputFailed,
    StageError,
)
from outputd.fileutil import sha256_file
from outputd.model import Delivery, Job, Output, Result
from outputd.pipeline import jobsheet, routing
from outputd.pipeline.geometry import MM_PER_PT
from outputd.pipeline.sidecar import SUFFIX, render, sidecar_name
from outputd.retry import RetryPolicy
from outputd.tickets import JobTicket
from outputd.transports.base import CopyControl, Transport

if TYPE_CHECKING:
    from outputd.pipeline.stages import StageContext

log = logging.getLogger(__name__)

DERIVED_MARK = "~"  # a file made from a PDF output for one hot folder: "<output>~<kind>"
SHEET, PREPENDED = "sheet", "prepended"  # the kinds besides sidecars (json, xml)


def plan(
    hotfolders: Sequence[str], outputs: Sequence[Output], ticket: JobTicket,
    config: Mapping[str, LocalHotFolder | SftpHotFolder],
) -> list[Delivery]:
    """A pending delivery for every output to every hot folder, under templated names,
    each followed by its sidecar ticket and its separate job sheet where the hot folder
    wants them (a hot folder with `job_sheet = "prepend"` gets the output with its sheet
    before page 1 instead of the output itself)."""
    planned: list[Delivery] = []
    for name in hotfolders:
        folder = config[name]
        sheet = _sheet_mode(folder.job_sheet, ticket, name)
        for output, final in zip(outputs, _final_names(folder.filename, ticket, outputs),
                                 strict=True):
            sends = [(PREPENDED if sheet == "prepend" else None, final)]
            if folder.ticket != "none":
                sends.append((folder.ticket, sidecar_name(final, folder.ticket)))
            if sheet == "separate":
                sends.append((SHEET, sheet_name(final)))
            planned += [Delivery(name, output.name if kind is None
                                 else f"{output.name}{DERIVED_MARK}{kind}",
                                 str(PurePosixPath(folder.path) / path), states.DELIVERY_PENDING)
                        for kind, path in sends]
    paths = [d.path for d in planned]
    for path in {p for p in paths if paths.count(p) > 1}:
        raise OutputFailed(f"two outputs of job {ticket.job_id} would be delivered as {path}; "
                           "a hot folder's path or filename template must tell them apart")
    return planned


def _sheet_mode(mode: str, ticket: JobTicket, hotfolder: str) -> str:
    """The hot folder's `job_sheet`, except that a product too small for a readable
    sheet before its first page gets its sheet separately."""
    trim = ticket.product.trim
    fits = jobsheet.fits(trim.width_mm / MM_PER_PT, trim.height_mm / MM_PER_PT)
    if mode == "prepend" and not fits:
        logs.event(log, logging.INFO, "jobsheet.separate", job=ticket.job_id,
                   hotfolder=hotfolder, reason=f"a {trim.width_mm:g} x {trim.height_mm:g} mm "
                   f"page is under {jobsheet.MIN_SIDE_MM:g} mm on a side: the sheet goes as "
                   "its own A4 file")
        return "separate"
    return mode


def sheet_name(final: str) -> str:
    """A separate job sheet's name: the output's, with `_sheet` before `.pdf`."""
    stem, dot, ending = final.rpartition(".")
    if dot and ending.lower() == "pdf":
        return f"{stem}_sheet.{ending}"
    return f"{final}_sheet.pdf"


def _final_names(template: str, ticket: JobTicket, outputs: Sequence[Output]) -> list[str]:
    """Each output's final name; where the template gives two outputs one name (a
    separate multipart product without `{part}`), `_<part>` goes before the ending."""
    names = [routing.filename(template, ticket, o.part, o.role) for o in outputs]
    if len(set(names)) == len(names):
        return names
    return [routing.with_part(name, o.part) if o.part is not None else name
            for name, o in zip(names, outputs, strict=True)]


def derived_of(delivery: Delivery) -> tuple[str, str] | None:
    """(PDF output name, kind) when `delivery` sends a file made from an output for its
    hot folder: a sidecar ticket (json, xml), a separate job sheet, or the output with
    its sheet prepended."""
    pdf, mark, kind = delivery.output.rpartition(DERIVED_MARK)
    return (pdf, kind) if mark else None


def make_sidecar(delivery: Delivery, ticket: JobTicket, out_dir: Path) -> Output:
    """Write the sidecar file for `delivery` into the working folder."""
    found = derived_of(delivery)
    assert found is not None and found[1] in SUFFIX
    pdf_final = PurePosixPath(delivery.path).name
    pdf_name = pdf_final[: -len(SUFFIX[found[1]])] + ".pdf"
    data = render(found[1], ticket, pdf_name)
    path = out_dir / delivery.output
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Output(delivery.output, str(path), len(data), hashlib.sha256(data).hexdigest(), 0)


def _sheet_file(delivery: Delivery, output: Output, ticket: JobTicket
                ) -> tuple[Path, jobsheet.SheetFacts] | None:
    """Where the job sheet file of `delivery` is kept in the working folder (named for
    the output's bytes and what the sheet says: a recreated output gets a new one), and
    what it says; None for a delivery that sends no sheet."""
    found = derived_of(delivery)
    if found is None or found[1] not in (SHEET, PREPENDED):
        return None
    facts = jobsheet.facts_of(ticket, output.pages, output.part, output.role)
    key = hashlib.sha256(f"{found[1]}|{output.sha256}|{facts!r}".encode()).hexdigest()[:16]
    return Path(output.path).with_name(f"{delivery.output}-{key}.pdf"), facts


def kept_file(delivery: Delivery, outputs: Mapping[str, Output], ticket: JobTicket
              ) -> Output | None:
    """The file `delivery` sends, as recorded (an output) or as kept in the working
    folder (a job sheet made for it); None for a sidecar, whose bytes are not kept, or
    a sheet not made yet."""
    if delivery.output in outputs:
        return outputs[delivery.output]
    found = derived_of(delivery)
    if found is None or found[0] not in outputs:
        return None
    made = _sheet_file(delivery, outputs[found[0]], ticket)
    if made is None:
        return None
    path = made[0]
    kept = safefs.lstat_at(None, str(path))
    if kept is None or not stat.S_ISREG(kept.st_mode) or kept.st_nlink != 1 \
            or kept.st_uid != os.geteuid():
        return None  # not made yet, or not a file of ours alone: it is made again
    return Output(delivery.output, str(path), kept.st_size, sha256_file(path), 0)


def attempt(
    delivery: Delivery, output: Output, transport: Transport, policy: RetryPolicy, now: float,
    control: CopyControl | None = None, *, job_id: str,
) -> Delivery:
    """Try one delivery of job `job_id`; return it as delivered or failed with the
    reason and next time."""
    attempts = delivery.attempts + 1
    try:
        final = transport.put(
            Path(output.path), PurePosixPath(delivery.path).name, size=output.bytes,
            sha256=output.sha256, control=control,
        )
    except CopyAborted:
        return delivery  # not an attempt: it runs again at the next start
    except DeliveryError as exc:  # a NameTaken too: the RIP may take the other file away
        next_at = policy.next_attempt(attempts, exc, now)
        error = exc.for_job(job_id) if isinstance(exc, NameTaken) else exc
        return replace(
            delivery, state=states.DELIVERY_FAILED, attempts=attempts, error=str(error),
            next_attempt_at=next_at, permanent=next_at is None,
        )
    return replace(
        delivery, state=states.DELIVERED, attempts=attempts, error=None, next_attempt_at=None,
        permanent=False, path=final,
    )


@dataclass(frozen=True)
class Withdrawal:
    """What became of a cancelled job's delivered files."""

    withdrawn: list[Delivery]
    taken: list[Delivery]  # the RIP had taken them already
    failed: list[str]  # "hotfolder:path (reason)"

    def summary(self) -> str:
        """The history's words for it, to follow the clean-up's message."""
        said = ""
        for what, found in (("withdrawn from", self.withdrawn),
                            ("already taken by the RIP from", self.taken)):
            if found:
                said += f"; {what} " + ", ".join(f"{d.hotfolder}:{d.path}" for d in found)
        if self.failed:
            said += "; could not be withdrawn, remove by hand: " + ", ".join(self.failed)
        return said


def withdraw(deliveries: Sequence[Delivery], outputs: Sequence[Output], ticket: JobTicket,
             transport_for: Callable[[str], Transport]) -> Withdrawal:
    """Remove each delivered file the RIP has not taken from where it was delivered (its
    recorded path, wherever its hot folder puts files now; a PDF only if it still holds
    the bytes outputd sent). A PDF not recorded as delivered is taken back too where its
    planned path holds those bytes: outputd renamed it into place and stopped before it
    could record that."""
    by_name = {o.name: o for o in outputs}
    result = Withdrawal([], [], [])
    for d in deliveries:
        recorded = d.state == states.DELIVERED
        sent = kept_file(d, by_name, ticket)
        if not recorded and (d.state not in states.DELIVERY_OPEN or sent is None):
            continue
        try:
            removed = transport_for(d.hotfolder).withdraw(
                d.path, sent.sha256 if sent is not None else None)
        except (DeliveryError, ConfigError, KeyError) as exc:
            if recorded:
                result.failed.append(f"{d.hotfolder}:{d.path} ({exc})")
            continue
        if removed:
            result.withdrawn.append(d)
        elif recorded:
            result.taken.append(d)
    return result


# -- the stage ---------------------------------------------------------------


def stage(ctx: StageContext, job: Job) -> Result:
    """Plan the job's deliveries (once, committed on its own), then try each that is
    due, in order."""
    deliveries = ctx.reads.deliveries(job.job_id)
    outputs, rebuilt = _local_outputs(ctx, job)
    if not deliveries:
        where = routing.route(ctx.config, job.ticket)
        if where.checkpoint and job.status == states.OUTPUT_CREATED and not _verified(ctx, job):
            return Result(states.AWAITING_PROOF, "the route holds its jobs for a proof: a "
                          f"person checks the output, then outputd event {job.job_id} "
                          "verified (or rejected)", outputs=rebuilt)
        if where.skip_reason is not None:
            return Result(states.COPY_SKIPPED, where.skip_reason, outputs=rebuilt)
        try:
            planned = plan(where.to, list(outputs.values()), job.ticket,
                           ctx.config.hotfolders)
        except OutputFailed as exc:  # two outputs to one path: nothing is sent
            return Result(states.COPY_FAILED, f"{exc}; an operator must fix the config and "
                          "retry (outputd retry)", level=logging.ERROR, outputs=rebuilt)
        # The plan is recorded before a file is sent: should outputd stop mid-way, where
        # files may have gone is known (and a clean-up finds them).
        return Result(due_at=time.time(), deliveries=planned, outputs=rebuilt)
    paused = ctx.reads.paused()
    tried: list[Delivery] = []
    interrupted = False
    results: list[Delivery] = []
    for d in sorted(deliveries, key=_sending_order):
        done = d
        if _ready_to_send(d, results, paused):
            if not ctx.stopping.is_set():
                done = _attempt(ctx, job, d, outputs)
            if done is d:  # not tried, or cut short: outputd is stopping
                interrupted = True
            else:
                tried.append(done)
        results.append(done)
    return _settle(job, results, tried, interrupted, rebuilt)


def _verified(ctx: StageContext, job: Job) -> bool:
    """Whether a person verified the proof of the output as it is now (a retried
    delivery is not held again; a recreated output is)."""
    verified = False
    for entry in ctx.reads.history(job.job_id):
        if entry.status == states.OUTPUT_CREATION_STARTED:
            verified = False
        elif entry.status == states.VERIFIED:
            verified = True
    return verified


def _local_outputs(ctx: StageContext, job: Job) -> tuple[dict[str, Output], list[Output] | None]:
    """The job's outputs by name, and (only when they were made again here, since this
    node took the job over from another whose working folder it cannot see) the list
    to record."""
    outputs = ctx.reads.outputs(job.job_id)
    if all(Path(o.path).exists() for o in outputs):
        return {o.name: o for o in outputs}, None
    logs.event(log, logging.INFO, "output.rebuild", **job.log_context(),
               reason="the working folder is not on this node")
    if any(not path.exists() for path, _ in ctx.sources(job)):
        ctx.refix(job)  # the fix-ups' copies were made on the other node too
    try:
        outputs = ctx.pdf_call("assemble", job.ticket, ctx.sources(job),
                               ctx.layout.outputs(job.job_id))
    except StageError as exc:
        raise StageError(f"job {job.job_id}: cannot rebuild its output here: {exc}") from exc
    return {o.name: o for o in outputs}, outputs


def _sending_order(d: Delivery) -> tuple[str, str, int]:
    """Per hot folder and output: the PDF (with its sheet prepended or not) first, then
    its sidecar, then its separate sheet."""
    found = derived_of(d)
    if found is None:
        return d.hotfolder, d.output, 0
    return d.hotfolder, found[0], {PREPENDED: 0, SHEET: 2}.get(found[1], 1)


def _ready_to_send(d: Delivery, earlier: list[Delivery], paused: set[str]) -> bool:
    """Not yet delivered, not paused, due, and (a sidecar or separate sheet) after its
    PDF."""
    if d.state in states.DELIVERY_DONE or d.hotfolder in paused:
        return False
    if d.state == states.DELIVERY_FAILED and (
            d.permanent or (d.next_attempt_at or 0) > time.time()):
        return False
    found = derived_of(d)
    if found is None or found[1] == PREPENDED:
        return True
    pdf = {found[0], f"{found[0]}{DERIVED_MARK}{PREPENDED}"}
    return any(e.hotfolder == d.hotfolder and e.output in pdf
               and e.state == states.DELIVERED for e in earlier)


def _attempt(ctx: StageContext, job: Job, d: Delivery, outputs: dict[str, Output]) -> Delivery:
    if d.hotfolder not in ctx.config.hotfolders:
        return replace(d, state=states.DELIVERY_FAILED, attempts=d.attempts + 1, permanent=True,
                       error=f"hot folder {d.hotfolder} is no longer configured")
    try:
        output = outputs.get(d.output) or _made_for(ctx, job, d, outputs)
    except StageError as exc:
        error = DeliveryError(f"cannot make the job sheet: {exc}")
        next_at = ctx.retry.next_attempt(d.attempts + 1, error, time.time())
        logs.event(log, logging.WARNING, "delivery.failed", **job.log_context(),
                   hotfolder=d.hotfolder, path=d.path, error=str(error))
        return replace(d, state=states.DELIVERY_FAILED, attempts=d.attempts + 1,
                       error=str(error), next_attempt_at=next_at, permanent=next_at is None)
    started = time.monotonic()
    done = attempt(d, output, ctx.transport(d.hotfolder), ctx.retry, time.time(),
                   CopyControl(ctx.abort, ctx.tick), job_id=job.job_id)
    seconds = time.monotonic() - started
    if done is d:
        logs.event(log, logging.WARNING, "delivery.interrupted", **job.log_context(),
                   hotfolder=d.hotfolder, path=d.path,
                   reason="outputd is stopping; it resumes at the next start")
        return d
    if ctx.metrics is not None:
        ctx.metrics.delivery(d.hotfolder, done.state, seconds, output.bytes)
    level = logging.INFO if done.state == states.DELIVERED else logging.WARNING
    if done.state == states.DELIVERY_FAILED and done.next_attempt_at is None:
        level = logging.ERROR
    logs.event(log, level, f"delivery.{done.state}", **job.log_context(),
               hotfolder=d.hotfolder, bytes=output.bytes, ms=int(seconds * 1000),
               path=done.path, attempt=done.attempts, error=done.error)
    return done


def _made_for(ctx: StageContext, job: Job, d: Delivery, outputs: dict[str, Output]
              ) -> Output:
    """The file a sidecar or job sheet delivery sends, made now (a sheet made before is
    used again: the same bytes go to the hot folder after a stop)."""
    kept = kept_file(d, outputs, job.ticket)
    if kept is not None:
        return kept
    found = derived_of(d)
    if found is None or found[0] not in outputs:
        raise StageError(f"job {job.job_id} has no output {d.output}")
    made = _sheet_file(d, outputs[found[0]], job.ticket)
    if made is None:
        return make_sidecar(d, job.ticket, ctx.layout.outputs(job.job_id))
    path, facts = made
    started = time.monotonic()
    try:
        sheet = ctx.pdf_call("job_sheet", found[1], facts, outputs[found[0]].path, str(path))
    except Exception as exc:  # the PDF process's error (a limit broken, a bad page)
        raise StageError(str(exc) if isinstance(exc, StageError)
                         else f"{type(exc).__name__}: {exc}") from exc
    logs.event(log, logging.INFO, "jobsheet.made", **job.log_context(), kind=found[1],
               file=path.name, ms=int((time.monotonic() - started) * 1000))
    return replace(sheet, name=d.output)


def _settle(job: Job, results: list[Delivery], tried: list[Delivery], interrupted: bool,
            rebuilt: list[Output] | None) -> Result:
    """The job's status after this round: delivered everywhere, failed (and when to
    try again), or still on its way."""
    if all(d.state in states.DELIVERY_DONE for d in results):
        where = ", ".join(f"{d.hotfolder}:{d.path}" for d in results)
        return Result(states.IN_HOT_FOLDER, f"delivered to {where}", deliveries=results,
                      tried=tried, outputs=rebuilt)
    failed = [d for d in results if d.state == states.DELIVERY_FAILED]
    retry_at = [d.next_attempt_at for d in failed if d.next_attempt_at is not None]
    due = min(retry_at) if retry_at else None
    if interrupted:
        due = time.time()  # cut short by a stop: resume at the next start
    tried_and_failed = any(d.state == states.DELIVERY_FAILED for d in tried)
    if tried_and_failed or (failed and job.status != states.COPY_FAILED):
        first = failed[0]
        note = "" if due is not None else "; an operator must retry (outputd retry)"
        return Result(states.COPY_FAILED, f"{first.hotfolder}: {first.error}{note}", due_at=due,
                      level=logging.WARNING if due is not None else logging.ERROR,
                      deliveries=results, tried=tried, outputs=rebuilt)
    return Result(due_at=due, deliveries=results, tried=tried, outputs=rebuilt)
