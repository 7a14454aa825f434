"""Delivery: which files go to which hot folder, and one attempt at one of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath

from outputd import routing
from outputd.config import LocalHotFolder, SftpHotFolder
from outputd.errors import CopyAborted, DeliveryError
from outputd.model import Delivery, Output
from outputd.retry import RetryPolicy
from outputd.tickets import JobTicket
from outputd.transports.base import CopyControl, Transport


def plan(
    hotfolders: Sequence[str], outputs: Sequence[Output], ticket: JobTicket,
    config: Mapping[str, LocalHotFolder | SftpHotFolder],
) -> list[Delivery]:
    """A pending delivery for every output to every hot folder, under templated names."""
    return [
        Delivery(
            hotfolder=name,
            output=output.name,
            path=str(PurePosixPath(config[name].path) / routing.filename(
                config[name].filename, ticket, output.part, output.role)),
            state="pending",
        )
        for name in hotfolders
        for output in outputs
    ]


def attempt(
    delivery: Delivery, output: Output, transport: Transport, policy: RetryPolicy, now: float,
    control: CopyControl | None = None,
) -> Delivery:
    """Try one delivery; return it as delivered or failed with the reason and next time."""
    attempts = delivery.attempts + 1
    try:
        final = transport.put(
            Path(output.path), PurePosixPath(delivery.path).name, size=output.bytes,
            sha256=output.sha256, control=control,
        )
    except CopyAborted:
        return delivery  # not an attempt: it runs again at the next start
    except DeliveryError as exc:
        next_at = policy.next_attempt(attempts, exc, now)
        return replace(
            delivery, state="failed", attempts=attempts, error=str(exc),
            next_attempt_at=next_at, permanent=next_at is None,
        )
    return replace(
        delivery, state="delivered", attempts=attempts, error=None, next_attempt_at=None,
        permanent=False, path=final,
    )
