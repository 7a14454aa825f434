"""What the routes share: the site they serve, who is asking, and errors as answers."""

from __future__ import annotations

import http
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse

from outputd.config import Config
from outputd.errors import OutputdError, RequestRefused
from outputd.layout import Layout
from outputd.ops.access import Caller
from outputd.ops.accounts import TokenCheck
from outputd.store import Store


class Unauthorized(OutputdError):
    """No credentials, or credentials that are not valid."""


class NotFound(RequestRefused):
    """No such thing (an output of a job that has none of that name)."""


class Gone(RequestRefused):
    """What was asked for existed and is no more (an output after CleanUp)."""


def problem(status: int, detail: str) -> JSONResponse:
    """An `application/problem+json` answer with one sentence in `detail`."""
    body = {"type": "about:blank", "title": http.HTTPStatus(status).phrase,
            "status": status, "detail": detail}
    headers = {"WWW-Authenticate": 'Bearer realm="outputd"'} if status == 401 else None
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")


@dataclass
class Site:
    """What the routes work with: the config, the store, the folders, token checks."""

    config: Config
    store: Store
    layout: Layout
    tokens: TokenCheck

    def caller(self, request: Request) -> Caller:
        """Who sent `request` (a bearer token); Unauthorized without a valid one."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("this needs a token: send Authorization: Bearer <token>")
        caller = self.tokens.caller(token.strip())
        if caller is None:
            raise Unauthorized("the token is not valid (unknown, revoked or mistyped)")
        request.state.by = caller.name
        return caller
