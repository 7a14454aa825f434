"""The ASGI application of `outputd web`: who is asking, errors as problem+json, limits,
security headers; the routes (web/routes.py) each parse, call one operation, answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from outputd import logs
from outputd.config import Config
from outputd.errors import (
    BadRequest,
    IntakeDeferred,
    OutputdError,
    RequestRefused,
    TicketConflict,
    TicketError,
    UnknownHotFolder,
    UnknownJob,
    UnknownOrder,
)
from outputd.layout import Layout
from outputd.ops.access import Forbidden
from outputd.ops.accounts import TokenCheck
from outputd.store import Store
from outputd.web import pages, routes
from outputd.web.site import Gone, NotFound, Site, TooManyFailures, Unauthorized, problem
from outputd.web.upload import TooLarge

log = logging.getLogger(__name__)
PREFIX = "/api/v1"
MAX_BODY_BYTES = 64 << 10  # a JSON or form body; uploads have their own limits
UPLOAD_PATH = f"{PREFIX}/jobs"
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# The HTTP status of each error an operation raises (the most specific class first).
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (Unauthorized, 401), (TooManyFailures, 429), (Forbidden, 403), (UnknownJob, 404),
    (UnknownOrder, 404), (UnknownHotFolder, 404), (NotFound, 404), (Gone, 410), (TooLarge, 413),
    (BadRequest, 400), (TicketConflict, 409), (TicketError, 400), (IntakeDeferred, 503),
    (RequestRefused, 409),
)


def create_app(config: Config, store: Store) -> FastAPI:
    """The application serving `/api/v1` over `store`."""
    app = FastAPI(title="outputd", version="1", openapi_url=f"{PREFIX}/openapi.json",
                  docs_url=None, redoc_url=None,
                  description="Submit print jobs, follow them and act on them (DESIGN §12).")
    site = Site(config, store, Layout(config), TokenCheck(store))
    app.state.site = site
    app.include_router(routes.router, prefix=PREFIX)
    app.include_router(pages.router)

    @app.exception_handler(OutputdError)
    async def refused(request: Request, exc: OutputdError) -> JSONResponse:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
        return problem(status, str(exc), getattr(exc, "retry_after", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return problem(400, f"{where or 'the request'}: {first.get('msg', 'is not valid')}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        answer = problem(exc.status_code, str(exc.detail))
        answer.headers.update(exc.headers or {})
        if exc.status_code == 405:  # every method of every route at this path
            methods = {m for route in request.app.routes
                       if route.matches(request.scope)[0] != Match.NONE
                       for m in getattr(route, "methods", None) or ()}
            answer.headers["Allow"] = ", ".join(sorted(methods))
        return answer

    app.add_middleware(_Guard)  # type: ignore[arg-type]
    return app


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _TooLarge(Exception):
    pass


class _Guard:
    """Refuses a body over MAX_BODY_BYTES before it is read whole, adds the security
    headers to every answer, and logs each request in one line (never its headers)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        length = dict(scope.get("headers") or []).get(b"content-length")
        upload = scope["method"] == "POST" and scope["path"] == UPLOAD_PATH  # limits its own
        if upload:
            length = None
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            await problem(413, f"the body is over {MAX_BODY_BYTES} bytes")(scope, receive, send)
            return
        seen = 0
        status = 500

        async def counted() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY_BYTES and not upload:
                raise _TooLarge
            return message

        async def headed(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", [])) + [
                    (k.lower().encode(), v.encode()) for k, v in _HEADERS.items()]
            await send(message)

        try:
            await self.app(scope, counted, headed)
        except _TooLarge:
            status = 413
            await problem(413, f"the body is over {MAX_BODY_BYTES} bytes")(scope, receive, send)
        finally:
            state = scope.get("state") or {}
            logs.event(log, logging.INFO, "web.request", method=scope["method"],
                       path=logs.printable(scope["path"]), status=status,
                       ms=int((time.monotonic() - started) * 1000), by=state.get("by"))
