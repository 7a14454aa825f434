"""The ASGI application of `outputd web`: who is asking, errors as problem+json, limits,
security headers; the routes (web/routes.py) each parse, call one operation, answer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.routing import Match

from outputd import logs
from outputd.config import Config
from outputd.errors import (
    OutputdError,
)
from outputd.layout import Layout
from outputd.ops.accounts import TokenCheck
from outputd.store import Store
from outputd.web import board, folders, pages, routes
from outputd.web.site import Site, problem, status_of

log = logging.getLogger(__name__)
PREFIX = "/api/v1"
MAX_BODY_BYTES = 64 << 10  # a JSON or form body; uploads have their own limits
UPLOAD_PATH = f"{PREFIX}/jobs"
_HEADERS = {
    # the board's own script, style and images only: no inline script, no framing
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_app(config: Config, store: Store) -> FastAPI:
    """The application serving `/api/v1` over `store`."""
    app = FastAPI(title="outputd", version="1", openapi_url=f"{PREFIX}/openapi.json",
                  docs_url=None, redoc_url=None,
                  description="Submit print jobs, follow them and act on them (DESIGN §12).")
    site = Site(config, store, Layout(config), TokenCheck(store))
    app.state.site = site
    app.include_router(routes.router, prefix=PREFIX)
    app.include_router(pages.router)
    app.include_router(board.router)
    app.include_router(folders.router)
    app.mount("/static", StaticFiles(packages=[("outputd.web", "static")]), name="static")

    @app.exception_handler(OutputdError)
    async def refused(request: Request, exc: OutputdError) -> JSONResponse:
        return problem(status_of(exc), str(exc), getattr(exc, "retry_after", None))

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

    app.add_middleware(_Guard, timeout_s=config.web.client_timeout_s)  # type: ignore[arg-type]
    return app


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _Refused(Exception):
    """Stops the app: the body is too large or too slow, or the client reads nothing."""


class _Guard:
    """Refuses a body over MAX_BODY_BYTES before it is read whole, disconnects a client
    that sends its body or reads the answer slower than one part per `timeout_s`, adds
    the security headers to every answer, and logs each request in one line (never its
    headers)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]],
                 timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

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
            await problem(413, f"the body is over {MAX_BODY_BYTES} bytes")(
                scope, receive, lambda message: send(_secured(message)))
            return
        seen = 0
        status = 500
        body_done = False
        started_answer = False
        refused: Response | None = None  # ours, in place of whatever the app answers then
        slow = None

        async def counted() -> MutableMapping[str, Any]:
            nonlocal seen, body_done, refused, slow
            if body_done:  # from here on, only a wait for the client to go away
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                slow = f"sent nothing of its body for {self.timeout_s:g} s"
                refused = problem(408, f"the client {slow}")
                refused.headers["Connection"] = "close"
                raise _Refused from None
            seen += len(message.get("body", b""))
            body_done = not message.get("more_body", False)
            if seen > MAX_BODY_BYTES and not upload:
                refused = problem(413, f"the body is over {MAX_BODY_BYTES} bytes")
                raise _Refused
            return message

        async def headed(message: MutableMapping[str, Any]) -> None:
            nonlocal status, started_answer, slow
            if refused is not None and not started_answer:
                return  # the app's answer to the exception it was given: ours is sent
            if message["type"] == "http.response.start":
                status = message["status"]
                started_answer = True
            try:
                await asyncio.wait_for(send(_secured(message)), self.timeout_s)
            except TimeoutError:  # the connection is closed with the answer cut
                slow = f"read nothing of the answer for {self.timeout_s:g} s"
                raise _Refused from None

        try:
            await self.app(scope, counted, headed)
        except _Refused:
            pass
        finally:
            if refused is not None and not started_answer:
                status = refused.status_code
                await refused(scope, receive, lambda message: send(_secured(message)))
            state = scope.get("state") or {}
            logs.event(log, logging.INFO, "web.request", method=scope["method"],
                       path=logs.printable(scope["path"]), status=status,
                       ms=int((time.monotonic() - started) * 1000), by=state.get("by"),
                       slow=slow)


def _secured(message: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """An answer's first message with the security headers added (a route's own
    Cache-Control, a preview's, is kept)."""
    if message["type"] == "http.response.start":
        headers = list(message.get("headers", []))
        present = {name.lower() for name, _ in headers}
        message["headers"] = headers + [(k.lower().encode(), v.encode())
                                        for k, v in _HEADERS.items()
                                        if k.lower().encode() not in present]
    return message
