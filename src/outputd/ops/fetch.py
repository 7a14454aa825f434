"""`outputd fetch`: a job's outputs copied to a folder, for an operator who must send a
file by hand."""

from __future__ import annotations

import os
from pathlib import Path

from outputd import safefs, states
from outputd.errors import RequestRefused
from outputd.fileutil import private_temp, sha256_fd
from outputd.store import Store


def fetch_outputs(store: Store, job_id: str, folder: Path) -> list[Path]:
    """Copy each output of the job into `folder` under its own name, checked against the
    sha256 recorded when it was made; never replacing a file there. Raises
    RequestRefused with the reason when there is nothing to fetch."""
    job = store.jobs.get(job_id)
    if job.status == states.CLEAN_UP:
        raise RequestRefused(f"job {job_id} is CleanUp: its output was removed with its "
                             f"working folder (outputd reopen {job_id} makes it again)")
    outputs = store.deliveries.outputs(job_id)
    if not outputs:
        raise RequestRefused(f"job {job_id} is {job.status} and has no output yet")
    if not folder.is_dir():
        raise RequestRefused(f"{folder} is not a folder")
    fetched = []
    for output in outputs:
        target = folder / output.name
        if os.path.lexists(target):
            raise RequestRefused(f"{target} exists; fetch never replaces a file")
        try:
            fd, _ = safefs.open_regular(None, output.path)
        except (FileNotFoundError, safefs.Refused):
            raise RequestRefused(f"job {job_id}: its output {output.name} is not on this "
                                 "node (it was made by another)") from None
        with os.fdopen(fd, "rb") as src, private_temp(target) as temp:
            if sha256_fd(src.fileno()) != output.sha256:
                raise RequestRefused(f"job {job_id}: {output.path} is not the output that "
                                     "was made (its sha256 differs)")
            with open(temp, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            os.link(temp, target)
        fetched.append(target)
    return fetched
