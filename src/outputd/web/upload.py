"""A job submitted over HTTP: `multipart/form-data` with a part `ticket` and one part per
file of the ticket, named by its path. Each file is streamed to a private staging folder
beside the sources (never held whole in memory), then taken in by the intake's own
acceptance code, as if it had been dropped in the intake folder. A refused or cut-off
upload leaves nothing behind."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.concurrency import run_in_threadpool
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from outputd import logs, safefs
from outputd.errors import BadRequest, RequestRefused
from outputd.tickets import MAX_TICKET_BYTES

MAX_PARTS = 200
BATCH_BYTES = 1 << 20  # the body is parsed (and written) a megabyte at a time
UPLOADS = ".uploads"
log = logging.getLogger(__name__)


class TooLarge(RequestRefused):
    """A part over its limit (the ticket, or a file over `max_file_bytes`)."""


@dataclass
class _Part:
    name: str = ""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    fd: int | None = None  # a file part being written
    size: int = 0
    data: bytearray | None = None  # the ticket, held (it is small)


@dataclass
class Received:
    """What an upload brought: the ticket's bytes and the files, staged by path."""

    ticket: bytes
    files: list[str]
    staging_fd: int  # the staging folder, open (the caller's: it stays open)


class UploadReader:
    """Parses one multipart body as it arrives, writing file parts into the staging
    folder open as `staging_fd`."""

    def __init__(self, staging_fd: int, boundary: bytes, max_file_bytes: int) -> None:
        self.staging_fd = staging_fd
        self.max_file_bytes = max_file_bytes
        self.parts: list[_Part] = []
        self._field = b""
        self._value = b""
        self._root = os.dup(staging_fd)
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done, "on_part_data": self._data,
            "on_part_end": self._end,
        })

    async def read(self, chunks: AsyncIterator[bytes]) -> Received:
        """Consume the body; raise BadRequest or TooLarge with the reason."""
        try:  # parsing writes the files: off the event loop, so others are served
            pending: list[bytes] = []
            size = 0
            async for chunk in chunks:  # handed over in batches: a hop costs as a chunk
                pending.append(chunk)
                size += len(chunk)
                if size >= BATCH_BYTES:
                    await run_in_threadpool(self._parser.write, b"".join(pending))
                    pending, size = [], 0
            if pending:
                await run_in_threadpool(self._parser.write, b"".join(pending))
            await run_in_threadpool(self._parser.finalize)
        except FormParserError as exc:
            raise BadRequest(f"the upload is not valid multipart/form-data: {exc}") from None
        finally:
            for part in self.parts:
                if part.fd is not None:
                    os.close(part.fd)
                    part.fd = None
            os.close(self._root)
        tickets = [p for p in self.parts if p.name == "ticket"]
        if len(tickets) != 1 or tickets[0].data is None:
            raise BadRequest("the upload needs exactly one part named ticket (the job "
                             "ticket, as a field or a file)")
        files = [p.name for p in self.parts if p.name != "ticket"]
        return Received(bytes(tickets[0].data), files, self.staging_fd)

    # -- parser callbacks (synchronous, called from write) ---------------------

    def _begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise BadRequest(f"an upload has at most {MAX_PARTS} parts")
        self.parts.append(_Part())

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self.parts[-1].headers.append((self._field.lower(), self._value))
        self._field = self._value = b""

    def _headers_done(self) -> None:
        part = self.parts[-1]
        disposition = dict(part.headers).get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        try:
            part.name = options.get(b"name", b"").decode()
        except UnicodeDecodeError:
            raise BadRequest("a part's name is not UTF-8") from None
        if part.name == "ticket":
            part.data = bytearray()
            return
        if not part.name:
            raise BadRequest("every part needs a name: ticket, or the path of a file")
        if any(p.name == part.name for p in self.parts[:-1]):
            raise BadRequest(f"the file {part.name} is sent twice")
        try:
            folder = safefs.walk(self._root, part.name, create=True, mode=0o700)
        except (safefs.Refused, ValueError) as exc:
            raise BadRequest(f"the part name {part.name!r} is not a file path a ticket "
                             f"can name: {exc}") from None
        assert folder is not None
        try:
            part.fd = safefs.create_new(folder, safefs.relative_parts(part.name)[-1], 0o600)
        except OSError as exc:
            raise BadRequest(f"the file {part.name} cannot be received: {exc}") from None
        finally:
            os.close(folder)

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        part.size += end - start
        if part.data is not None:
            if part.size > MAX_TICKET_BYTES:
                raise TooLarge(f"the ticket is over {MAX_TICKET_BYTES} bytes")
            part.data += data[start:end]
            return
        if part.size > self.max_file_bytes:
            raise TooLarge(f"the file {part.name} is over limits.max_file_bytes "
                           f"({self.max_file_bytes} bytes)")
        assert part.fd is not None
        view = memoryview(data)[start:end]
        while view:
            written = os.write(part.fd, view)
            view = view[written:]

    def _end(self) -> None:
        part = self.parts[-1]
        if part.fd is not None:
            os.fdatasync(part.fd)  # its bytes are on disk before the job is accepted
            os.close(part.fd)
            part.fd = None


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary of a Content-Type; BadRequest if it is not multipart."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadRequest("a job is submitted as multipart/form-data (curl -F "
                         "ticket=@ticket.json -F J-1/art.pdf=@art.pdf)")
    return boundary


@contextlib.contextmanager
def staging_folder(sources_root: Path) -> Iterator[int]:
    """A new private folder for one upload in `sources_dir/.uploads` (outputd's own real
    folder: a link or another's folder in its place is moved aside), open as a
    descriptor; removed with whatever is left in it."""
    sources_root.mkdir(parents=True, exist_ok=True)
    with safefs.folder(sources_root) as root_fd:
        uploads_fd, aside = safefs.own_folder(root_fd, UPLOADS, 0o700)
    if aside is not None:
        logs.event(log, logging.WARNING, "web.uploads_replaced", moved_to=aside,
                   then="a new uploads folder is made")
    name = secrets.token_hex(8)
    try:
        os.mkdir(name, 0o700, dir_fd=uploads_fd)
        try:
            with safefs.folder(name, uploads_fd) as staging_fd:
                yield staging_fd
        finally:
            shutil.rmtree(name, dir_fd=uploads_fd, ignore_errors=True)
    finally:
        os.close(uploads_fd)
