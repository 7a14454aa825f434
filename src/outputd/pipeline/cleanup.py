"""The clean-up stage: once the order has shipped (or was cancelled), the job's working
folder is cleared and what the RIP has not taken is withdrawn."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from outputd import logs, states
from outputd.errors import ConfigError, DeliveryError
from outputd.model import Delivery, Job, Output, Result
from outputd.pipeline import deliver
from outputd.transports.base import part_name

if TYPE_CHECKING:
    from outputd.pipeline.stages import StageContext

log = logging.getLogger(__name__)


def stage(ctx: StageContext, job: Job) -> Result:
    """Clear the working folder; deliveries the order no longer needs are dropped, with
    any temp file a cut-short copy left in their hot folder; a cancelled job's delivered
    files are taken back where the RIP has not taken them yet."""
    deliveries = ctx.reads.deliveries(job.job_id)
    outputs = ctx.reads.outputs(job.job_id)
    open_ = [d for d in deliveries if d.state in states.DELIVERY_OPEN]
    landed = [] if job.cancelled else [d for d in open_ if _landed(ctx, job, d, outputs)]
    dropped = [d for d in open_ if d not in landed]
    drop_temps(ctx, dropped)
    withdrawn: list[Delivery] = []
    message = "working folder cleared"
    if dropped:
        message += "; not delivered to " + ", ".join(sorted({d.hotfolder for d in dropped}))
    if job.cancelled:
        found = withdraw(ctx, job, deliveries, outputs)
        withdrawn = found.withdrawn
        message += found.summary()
    ctx.layout.clear_work(job.job_id)
    changed = {id(d): replace(d, state=states.DELIVERY_SKIPPED,
                              error=f"{job.status} before delivery") for d in dropped}
    changed.update({id(d): replace(d, state=states.DELIVERED, error=None) for d in landed})
    changed.update({id(d): replace(d, state=states.WITHDRAWN, error="cancelled")
                    for d in withdrawn})
    return Result(states.CLEAN_UP, message,
                  deliveries=[changed.get(id(d), d) for d in deliveries])


def drop_temps(ctx: StageContext, deliveries: Sequence[Delivery]) -> None:
    """Remove the temp file a cut-short copy of each delivery may have left in its hot
    folder (none is no error, nor is a hot folder that cannot be reached)."""
    for d in deliveries:
        planned = PurePosixPath(d.path)
        with contextlib.suppress(DeliveryError, ConfigError, KeyError):
            ctx.transport(d.hotfolder).remove(str(planned.with_name(part_name(planned.name))))


def withdraw(ctx: StageContext, job: Job, deliveries: Sequence[Delivery],
             outputs: Sequence[Output]) -> deliver.Withdrawal:
    """Take back the job's delivered files the RIP has not taken (deliver.withdraw),
    logging each one taken back."""
    found = deliver.withdraw(deliveries, outputs, job.ticket, ctx.transport)
    for d in found.withdrawn:
        logs.event(log, logging.INFO, "delivery.withdrawn", **job.log_context(),
                   hotfolder=d.hotfolder, path=d.path)
    return found


def _landed(ctx: StageContext, job: Job, d: Delivery, outputs: list[Output]) -> bool:
    """Whether an open delivery's file is at its planned path all the same: renamed into
    place before a stop kept the stage from recording it (then it is delivered)."""
    output = deliver.kept_file(d, {o.name: o for o in outputs}, job.ticket)
    if output is None:  # a sidecar: its bytes are not kept, so it cannot be told apart
        return False
    try:
        return ctx.transport(d.hotfolder).holds(d.path, output.bytes, output.sha256)
    except (DeliveryError, ConfigError, KeyError):
        return False
