"""Delivery: which files go to which hot folder, and one attempt at one of them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from outputd import states
from outputd.config import LocalHotFolder, SftpHotFolder
from outputd.errors import ConfigError, CopyAborted, DeliveryError, OutputFailed
from outputd.model import Delivery, Output
from outputd.pipeline import routing
from outputd.pipeline.sidecar import SUFFIX, render, sidecar_name
from outputd.retry import RetryPolicy
from outputd.tickets import JobTicket
from outputd.transports.base import CopyControl, Transport

SIDECAR_MARK = "~"  # output name of a sidecar: "<pdf output>~json"; sorts after its PDF


def plan(
    hotfolders: Sequence[str], outputs: Sequence[Output], ticket: JobTicket,
    config: Mapping[str, LocalHotFolder | SftpHotFolder],
) -> list[Delivery]:
    """A pending delivery for every output to every hot folder, under templated names,
    each followed by its sidecar ticket where the hot folder wants one."""
    planned: list[Delivery] = []
    for name in hotfolders:
        folder = config[name]
        for output, final in zip(outputs, _final_names(folder.filename, ticket, outputs),
                                 strict=True):
            planned.append(Delivery(name, output.name, str(PurePosixPath(folder.path) / final),
                                    states.DELIVERY_PENDING))
            if folder.ticket != "none":
                planned.append(Delivery(
                    name, f"{output.name}{SIDECAR_MARK}{folder.ticket}",
                    str(PurePosixPath(folder.path) / sidecar_name(final, folder.ticket)),
                    states.DELIVERY_PENDING))
    paths = [d.path for d in planned]
    for path in {p for p in paths if paths.count(p) > 1}:
        raise OutputFailed(f"two outputs of job {ticket.job_id} would be delivered as {path}; "
                           "a hot folder's path or filename template must tell them apart")
    return planned


def _final_names(template: str, ticket: JobTicket, outputs: Sequence[Output]) -> list[str]:
    """Each output's final name; where the template gives two outputs one name (a
    separate multipart product without `{part}`), `_<part>` goes before the ending."""
    names = [routing.filename(template, ticket, o.part, o.role) for o in outputs]
    if len(set(names)) == len(names):
        return names
    return [routing.with_part(name, o.part) if o.part is not None else name
            for name, o in zip(names, outputs, strict=True)]


def sidecar_of(delivery: Delivery) -> tuple[str, str] | None:
    """(PDF output name, kind) when `delivery` is a sidecar ticket."""
    pdf, mark, kind = delivery.output.rpartition(SIDECAR_MARK)
    return (pdf, kind) if mark else None


def make_sidecar(delivery: Delivery, ticket: JobTicket, out_dir: Path) -> Output:
    """Write the sidecar file for `delivery` into the working folder."""
    found = sidecar_of(delivery)
    assert found is not None
    pdf_final = PurePosixPath(delivery.path).name
    pdf_name = pdf_final[: -len(SUFFIX[found[1]])] + ".pdf"
    data = render(found[1], ticket, pdf_name)
    path = out_dir / delivery.output
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Output(delivery.output, str(path), len(data), hashlib.sha256(data).hexdigest(), 0)


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
            delivery, state=states.DELIVERY_FAILED, attempts=attempts, error=str(exc),
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


def withdraw(deliveries: Sequence[Delivery], outputs: Sequence[Output],
             transport_for: Callable[[str], Transport]) -> Withdrawal:
    """Remove each delivered file the RIP has not taken from its hot folder (a PDF only
    if it still holds the output's bytes)."""
    sha = {o.name: o.sha256 for o in outputs}
    result = Withdrawal([], [], [])
    for d in deliveries:
        if d.state != states.DELIVERED:
            continue
        try:
            removed = transport_for(d.hotfolder).withdraw(PurePosixPath(d.path).name,
                                                          sha.get(d.output))
        except (DeliveryError, ConfigError, KeyError) as exc:
            result.failed.append(f"{d.hotfolder}:{d.path} ({exc})")
            continue
        (result.withdrawn if removed else result.taken).append(d)
    return result
