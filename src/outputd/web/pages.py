"""The board's doors: the one-time setup link that creates the first admin, the login
form, logging out, and the page a login lands on (the board itself comes next).

Plain HTML forms, no script. Every form carries a CSRF token: the login form's is also
in a short-lived cookie (double submit), a session's is kept with the session."""

from __future__ import annotations

import html
import ipaddress
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from outputd.errors import RequestRefused
from outputd.ops import accounts
from outputd.ops.access import Forbidden
from outputd.web import render
from outputd.web.site import SESSION_COOKIE, Site, TooManyFailures, source_key

router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "outputd_login"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A page of the board's doors; `body` is HTML built here, its values escaped."""
    return render.page("plain.html", None, status=status, title=title, body=Markup(body))


def _secure(request: Request, site: Site) -> bool:
    """Whether the browser reached us over HTTPS (as a trusted proxy says, if any)."""
    peer = request.client.host if request.client else ""
    try:
        trusted = any(ipaddress.ip_address(peer) in ipaddress.ip_network(p, strict=False)
                      for p in site.config.web.trusted_proxies)
    except ValueError:
        trusted = False
    if trusted:
        return request.headers.get("x-forwarded-proto", "").lower() == "https"
    return request.url.scheme == "https"


def _field(name: str, kind: str = "text", auto: str = "off") -> str:
    return (f"<p><label>{html.escape(name.replace('_', ' ').capitalize())}<br>"
            f"<input name=\"{name}\" type=\"{kind}\" autocomplete=\"{auto}\" required>"
            "</label></p>")


@router.get("/setup")
def setup_form(request: Request, token: str = "") -> HTMLResponse:
    """The form behind the setup link that `outputd web` logs while no user exists."""
    return _page("Create the first admin", (
        "<form method=\"post\" action=\"/setup\">"
        f"<input type=\"hidden\" name=\"token\" value=\"{html.escape(token)}\">"
        + _field("username", auto="username") + _field("password", "password", "new-password")
        + _field("password_again", "password", "new-password")
        + "<p><button type=\"submit\">Create</button></p></form>"))


@router.post("/setup")
def setup(request: Request, username: Annotated[str, Form()],
          password: Annotated[str, Form()], password_again: Annotated[str, Form()],
          token: Annotated[str, Form()] = "") -> Response:
    """Create the first admin; the link works once. The link's token comes in the form,
    or in the link itself (`curl -d username=… LINK`)."""
    site = Site.of(request)
    token = token or request.query_params.get("token", "")
    if password != password_again:
        return _page("Create the first admin", "<p>The two passwords differ.</p>", 400)
    try:
        accounts.first_admin(site.store, token, username, password)
    except Forbidden as exc:
        return _page("Setup link used", f"<p>{html.escape(str(exc))}.</p>", 403)
    except RequestRefused as exc:
        return _page("Create the first admin", f"<p>{html.escape(str(exc))}.</p>", 400)
    return RedirectResponse("/login", status_code=303)


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    """The login form, with a CSRF token also set as a short-lived cookie."""
    site = Site.of(request)
    csrf = secrets.token_urlsafe(24)
    answer = _page("Log in", (
        "<form method=\"post\" action=\"/login\">"
        f"<input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">"
        + _field("username", auto="username") + _field("password", "password",
                                                        "current-password")
        + "<p><button type=\"submit\">Log in</button></p></form>"))
    answer.set_cookie(LOGIN_COOKIE, csrf, max_age=3600, path="/login", httponly=True,
                      samesite="lax", secure=_secure(request, site))
    return answer


@router.post("/login")
def login(request: Request, username: Annotated[str, Form()],
          password: Annotated[str, Form()], csrf_token: Annotated[str, Form()]) -> Response:
    """Check the form's CSRF token and the password; start a session."""
    site = Site.of(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return _page("Log in", "<p>The form has expired: <a href=\"/login\">log in "
                     "again</a>.</p>", 403)
    keys = (source_key(request), f"user:{username}")
    try:
        site.failures.check(*keys)
    except TooManyFailures as exc:
        return _page("Log in", f"<p>{html.escape(str(exc))}.</p>", 429)
    started = accounts.login(site.store, username, password, site.config.web.session_hours)
    if started is None:
        site.failures.failed(*keys)
        return _page("Log in", "<p>The name or the password is wrong. <a href=\"/login\">"
                     "Try again</a>.</p>", 401)
    answer = RedirectResponse("/", status_code=303)
    answer.set_cookie(SESSION_COOKIE, started[0], max_age=int(
        site.config.web.session_hours * 3600), path="/", httponly=True, samesite="lax",
        secure=_secure(request, site))
    answer.delete_cookie(LOGIN_COOKIE, path="/login")
    return answer


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    """End the session (its CSRF token in the form, as for every change)."""
    site = Site.of(request)
    site.caller(request, csrf_token)  # a session, and its CSRF token: else 401 or 403
    accounts.logout(site.store, request.cookies.get(SESSION_COOKIE, ""))
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(SESSION_COOKIE, path="/")
    return answer
