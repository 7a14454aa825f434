"""The board's hot folders page (health, pause and resume, retry all) and its admin page
(users, tokens, clearing a storefront's test data with its export)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from outputd.errors import OutputdError, RequestRefused
from outputd.ops import accounts, events, jobs, status
from outputd.ops.access import ROLES, Caller
from outputd.web import render
from outputd.web.board import live, refused, session
from outputd.web.site import Site

router = APIRouter(include_in_schema=False)


@router.get("/hotfolders", response_model=None)
def hotfolders_page(request: Request, fragment: bool = False, said: str = "") -> Response:
    """Each hot folder: health, paused or not, stale files, failed deliveries."""
    found = session(request)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    caller, csrf = found
    site = Site.of(request)
    etag, unchanged = live(request, caller, "hotfolders")
    if fragment and unchanged:
        return Response(status_code=304, headers={"ETag": etag})
    answer = render.page(
        "_hotfolders_live.html" if fragment else "hotfolders.html", caller, csrf,
        folders=status.hotfolders(site.config, site.store, caller), nav="hotfolders",
        may_pause=caller.may("pause") and not caller.storefronts,
        may_retry=caller.may("event:retry"), said=_SAID.get(said, ""),
        live_url="/hotfolders?fragment=1", etag=etag)
    answer.headers["ETag"] = etag
    return answer


_SAID = {"paused": "Paused: nothing more is delivered there until it is resumed.",
         "resumed": "Resumed: the jobs that waited for it go on.",
         "retried": "Retry recorded for its failed deliveries."}


@router.post("/hotfolders/{name}/{action}", response_model=None)
def hotfolder_action(request: Request, name: str, action: str,
                     csrf_token: Annotated[str, Form()] = "") -> Response:
    """Pause, resume, or retry every failed delivery to one hot folder."""
    site = Site.of(request)
    found = session(request)
    known = list(site.config.hotfolders)
    try:
        caller = site.caller(request, csrf_token)
        if action in ("pause", "resume"):
            events.pause(site.store, caller, name, known, action == "pause")
            said = "paused" if action == "pause" else "resumed"
        elif action == "retry":
            events.retry_hotfolder(site.store, site.layout, caller, name, known)
            said = "retried"
        else:
            return Response(status_code=404)
    except OutputdError as exc:
        who, csrf = found or (None, "")
        return refused(exc, who, csrf, back="/hotfolders")
    return RedirectResponse(f"/hotfolders?said={said}", status_code=303)


@router.get("/admin", response_model=None)
def admin_page(request: Request, done: str = "", name: str = "") -> Response:
    """Users and tokens, and clearing a storefront's test data (admins only)."""
    found = session(request)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    caller, csrf = found
    site = Site.of(request)
    try:
        listed = accounts.listing(site.store, caller)
    except OutputdError as exc:
        return refused(exc, caller, csrf)
    said = _DONE[done].format(name=name) if done in _DONE else ""
    return render.page("admin.html", caller, csrf, nav="admin", roles=ROLES, said=said,
                       users=listed["users"], tokens=listed["tokens"])


_DONE = {"user-add": "User {name} added.", "user-remove": "User {name} removed.",
         "token-revoke": "Token {name} revoked."}


@router.post("/admin/{what}", response_model=None)
def admin_action(request: Request, what: str, csrf_token: Annotated[str, Form()] = "",
                 name: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "",
                 storefronts: Annotated[str, Form()] = "",
                 password: Annotated[str, Form()] = "",
                 storefront: Annotated[str, Form()] = "",
                 confirmed: Annotated[str, Form()] = "") -> Response:
    """Add or remove a user, add or revoke a token, or clear a storefront's test data
    (its export is the answer, as a download)."""
    site = Site.of(request)
    found = session(request)
    shops = [s.strip() for s in storefronts.split(",") if s.strip()]
    try:
        caller = site.caller(request, csrf_token)
        if what == "user-add":
            accounts.add_user(site.store, caller, name, role, shops, password)
        elif what == "user-remove":
            accounts.remove_user(site.store, caller, name)
        elif what == "token-add":
            secret = accounts.add_token(site.store, caller, name, role, shops)
            listed = accounts.listing(site.store, caller)
            return render.page("admin.html", caller, found[1] if found else "",
                               nav="admin", roles=ROLES, users=listed["users"],
                               tokens=listed["tokens"], new_token=(name, secret))
        elif what == "token-revoke":
            accounts.revoke_token(site.store, caller, name)
        elif what == "clear-test-data":
            if confirmed != "yes":
                raise RequestRefused("clearing test data cannot be undone: tick the box "
                                     "that says so")
            return _cleared(site, caller, storefront)
        else:
            return Response(status_code=404)
    except OutputdError as exc:
        who, csrf = found or (None, "")
        return refused(exc, who, csrf, back="/admin")
    return RedirectResponse(f"/admin?done={what}&name={quote(name)}", status_code=303)


def _cleared(site: Site, caller: Caller, storefront: str) -> Response:
    """Clear the storefront's test data; its export (the jobs with their history) is the
    download, and is kept nowhere else."""
    with tempfile.TemporaryDirectory(prefix="outputd-export-") as folder:
        export = Path(folder) / "export.json"
        cleared = jobs.clear_test_data(site.store, site.layout, caller, storefront, export)
        data = export.read_bytes()
        os.unlink(export)
    return Response(data, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="test-data-{quote(storefront)}.json"',
        "X-Jobs-Cleared": str(len(cleared))})
