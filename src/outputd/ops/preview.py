"""Page previews: page n of a job's output (or of its source files before there is one)
as a PNG, rendered by poppler's `pdftoppm` in a process of its own under the same time
and memory limits as preflight, and kept in the job's working folder, which clean-up
removes. A hostile PDF fails its own preview and nothing else."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from outputd import safefs, states
from outputd.config import Config
from outputd.errors import RequestRefused
from outputd.layout import Layout
from outputd.ops import jobs
from outputd.ops.access import Caller
from outputd.store import Store

MIN_WIDTH, MAX_WIDTH, DEFAULT_WIDTH = 64, 2000, 300
FILE = "<file>"  # in a command: the file, as the descriptor the child inherits
_RENDERS = threading.BoundedSemaphore(2)  # a page of 50 thumbnails forks two at a time


class NoPreview(RequestRefused):
    """The page cannot be previewed (no such page, or the file fails to render)."""


class PreviewGone(RequestRefused):
    """The job is cleaned up: its output and previews were removed."""


def page_png(config: Config, store: Store, layout: Layout, caller: Caller, job_id: str,
             page: int, width: int = DEFAULT_WIDTH) -> bytes:
    """The PNG of page `page` (1-based) at `width` pixels wide."""
    job = jobs.get(store, caller, job_id)
    if job.status == states.CLEAN_UP:
        raise PreviewGone(f"job {job_id} is CleanUp: its previews were removed with its "
                          "working folder")
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise NoPreview(f"width is from {MIN_WIDTH} to {MAX_WIDTH} pixels")
    if page < 1:
        raise NoPreview("pages are numbered from 1")
    outputs = [o.path for o in store.deliveries.outputs(job_id)]
    files = outputs or [str(layout.source_file(job_id, f["path"]))
                        for f in job.ticket_data.get("files", [])]
    limits = config.limits
    run = _runner(limits.job_timeout_s, limits.job_memory_mb)
    for path in files:
        with _opened(path, job_id) as (fd, st):
            key = hashlib.sha256(f"{path}|{st.st_size}|{st.st_mtime_ns}|{page}|{width}"
                                 .encode()).hexdigest()[:32]
            cached = f"{key}.png"
            kept = _cache(layout, job_id, cached, None)
            if kept is not None:
                return kept
            count = _pages(run, fd, job_id) if len(files) > 1 else page
            if page > count:
                page -= count
                continue
            png = _render(run, fd, page, width, job_id)
            _cache(layout, job_id, cached, png)
            return png
    raise NoPreview(f"job {job_id} has no page {page}")


def render_file(config: Config, path: str, page: int, width: int, job_id: str) -> bytes:
    """Page `page` of one of a job's files as a PNG, under the preview's limits (for
    the preflight report); NoPreview when it cannot be drawn."""
    run = _runner(config.limits.job_timeout_s, config.limits.job_memory_mb)
    with _opened(path, job_id) as (fd, _):
        return _render(run, fd, page, width, job_id)


def page_size_mm(config: Config, path: str, page: int, job_id: str
                 ) -> tuple[float, float] | None:
    """The size of page `page` as shown (its /Rotate applied), in mm, read by poppler's
    pdfinfo under the preview's limits; None when it cannot be read."""
    run = _runner(config.limits.job_timeout_s, config.limits.job_memory_mb)
    try:
        with _opened(path, job_id) as (fd, _):
            info = run(["pdfinfo", "-f", str(page), "-l", str(page), FILE], fd,
                       job_id).decode(errors="replace")
    except NoPreview:
        return None
    size = re.search(r"^Page\s+\d+\s+size:\s+([\d.]+) x ([\d.]+) pts", info, re.M)
    turned = re.search(r"^Page\s+\d+\s+rot:\s+(\d+)", info, re.M)
    if size is None:
        return None
    w, h = float(size.group(1)) * 25.4 / 72, float(size.group(2)) * 25.4 / 72
    return (h, w) if turned and int(turned.group(1)) % 180 else (w, h)


def _render(run: Callable[[list[str], int, str], bytes], fd: int, page: int, width: int,
            job_id: str) -> bytes:
    with _RENDERS, tempfile.TemporaryDirectory(prefix="outputd-preview-") as folder:
        run(["pdftoppm", "-png", "-f", str(page), "-l", str(page), "-scale-to-x",
             str(width), "-scale-to-y", "-1", "-singlefile", FILE,
             os.path.join(folder, "page")], fd, job_id)
        try:  # a private folder of ours: nothing else can be named there
            return Path(folder, "page.png").read_bytes()
        except FileNotFoundError:
            raise NoPreview(f"job {job_id} has no page {page}") from None


@contextlib.contextmanager
def _opened(path: str, job_id: str) -> Iterator[tuple[int, os.stat_result]]:
    """A job's file, opened without following a link and checked to be a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise NoPreview(f"job {job_id}: {Path(path).name} cannot be read here "
                        f"({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NoPreview(f"job {job_id}: {Path(path).name} is not a regular file")
        yield fd, st
    finally:
        os.close(fd)


def _runner(timeout_s: float, memory_mb: int) -> Callable[[list[str], int, str], bytes]:
    # prlimit (util-linux) sets the limits in the child: no Python code runs between
    # fork and exec in this threaded server
    limits = ["prlimit", f"--as={memory_mb << 20}", f"--cpu={int(timeout_s) + 1}", "--"]

    def run(command: list[str], fd: int, job_id: str) -> bytes:
        os.lseek(fd, 0, os.SEEK_SET)
        command = limits + [f"/dev/fd/{fd}" if arg == FILE else arg for arg in command]
        try:  # the child reads the file this process opened and checked, by descriptor
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout_s, pass_fds=(fd,))
        except subprocess.TimeoutExpired:
            raise NoPreview(f"job {job_id}: the page took longer than limits.job_timeout_s "
                            f"= {timeout_s:g} s to render") from None
        except FileNotFoundError:
            raise NoPreview("previews need poppler's pdftoppm (Debian: poppler-utils)"
                            ) from None
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip().splitlines()
            raise NoPreview(f"job {job_id}: the page cannot be rendered"
                            + (f" ({reason[-1][:200]})" if reason else ""))
        return done.stdout

    return run


def _pages(run: Callable[[list[str], int, str], bytes], fd: int, job_id: str) -> int:
    info = run(["pdfinfo", FILE], fd, job_id).decode(errors="replace")
    found = re.search(r"^Pages:\s+(\d+)", info, re.M)
    if found is None:
        raise NoPreview(f"job {job_id}: a file's pages cannot be counted")
    return int(found.group(1))


def _cache(layout: Layout, job_id: str, name: str, png: bytes | None) -> bytes | None:
    """Read the kept preview `name` (png None), or keep `png` under that name, in the
    job's `previews` folder: outputd's own real folder (a link or another's folder in its
    place is moved aside), used by descriptor; a kept file is opened without following a
    link or waiting on a FIFO, and written aside then renamed. None when there is none
    (or something else is in its place); a preview that cannot be kept is drawn again."""
    with contextlib.suppress(OSError, safefs.Refused):
        work = layout.work(job_id)
        work.mkdir(parents=True, exist_ok=True)
        with safefs.folder(work) as work_fd:
            folder_fd, _ = safefs.own_folder(work_fd, "previews", 0o700)
        try:
            if png is None:
                return _read_kept(folder_fd, name)
            temp = f".{secrets.token_hex(6)}.part"
            with os.fdopen(safefs.create_new(folder_fd, temp, 0o600), "wb") as out:
                out.write(png)
            os.rename(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        finally:
            os.close(folder_fd)
    return None


def _read_kept(folder_fd: int, name: str) -> bytes | None:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder_fd)
    with os.fdopen(fd, "rb") as kept:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.geteuid():
            return None  # not a file of ours alone: a hard link may be someone else's
        data = kept.read()
    return data if data.startswith(b"\x89PNG") else None
