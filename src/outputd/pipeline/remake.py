"""Remaking a job's output (recreate, reopen): what the earlier output left in hot folders
is taken back first, so that the RIP never prints an output that is being made again,
and outputd keeps each delivery on record until its file is taken back or known taken.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from outputd import logs, states
from outputd.model import Job, Result
from outputd.pipeline import cleanup

if TYPE_CHECKING:
    from outputd.pipeline.stages import StageContext

log = logging.getLogger(__name__)
RETRY_S = 30.0  # a hot folder that could not be reached is tried again after this


@dataclass(frozen=True)
class TakenBack:
    """What became of the earlier output's files: `said` follows the history's message;
    `waiting` (some could not be taken back yet) is the Result to commit instead of going
    on: the deliveries still to take back stay on record and the job is looked at again
    later."""

    said: str
    waiting: Result | None = None


def take_back(ctx: StageContext, job: Job) -> TakenBack:
    """Withdraw the job's delivered files that the RIP has not taken, with any temp file
    a cut-short copy left. A delivery to a hot folder that is no longer configured cannot
    be reached: it is named for removal by hand and forgotten."""
    deliveries = ctx.reads.deliveries(job.job_id)
    if not deliveries:
        return TakenBack("")
    cleanup.drop_temps(ctx, [d for d in deliveries if d.state in states.DELIVERY_OPEN])
    known = [d for d in deliveries if d.hotfolder in ctx.config.hotfolders]
    found = cleanup.withdraw(ctx, job, known, ctx.reads.outputs(job.job_id))
    said = found.summary()
    unreachable = [f"{d.hotfolder}:{d.path} (hot folder {d.hotfolder} is no longer configured)"
                   for d in deliveries if d not in known and d.state == states.DELIVERED]
    if unreachable:
        said += "; could not be withdrawn, remove by hand: " + ", ".join(unreachable)
    if not found.failed:
        return TakenBack(said)
    retry_in = RETRY_S
    logs.event(log, logging.WARNING, "output.withdraw_failed", **job.log_context(),
               files=", ".join(found.failed), retry_in_s=retry_in)
    withdrawn = {id(d) for d in found.withdrawn}
    kept = [replace(d, state=states.WITHDRAWN, error="taken back: output made again")
            if id(d) in withdrawn else d for d in deliveries]
    return TakenBack(said, Result(due_at=time.time() + retry_in, deliveries=kept))


def delete_output(ctx: StageContext, job: Job) -> Result:
    """Take back the old output from the hot folders where the RIP has not taken it, and
    remove it from the working folder, before the job's output is made again."""
    taken = take_back(ctx, job)
    if taken.waiting is not None:
        return taken.waiting
    ctx.layout.clear_work(job.job_id)
    return Result(states.OUTPUT_DELETE, "old output removed" + taken.said, due_at=time.time(),
                  outputs=[], deliveries=[])
