"""The board's HTML: Jinja2 templates (web/templates) with autoescaping, and the helpers
they use (times, status groups, forms)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from outputd import states
from outputd.ops.access import Caller

# What an action's button says.
LABELS = {"approved": "Approve", "rejected": "Reject", "verified": "Proof verified",
          "override": "Override preflight", "paid": "Mark paid", "retry": "Retry",
          "hold": "Hold", "release": "Release", "shipped": "Mark shipped",
          "ready_for_collection": "Mark ready for collection", "completed": "Mark completed",
          "recreate": "Recreate", "reopen": "Reopen", "renotify": "Notify again",
          "cancelled": "Cancel", "artworking": "Artworking", "reprographics": "Reprographics",
          "printed": "Printed", "finishing": "Finishing", "packing": "Packing",
          "awaiting_parts": "Awaiting parts"}


def _when(at: str | float | None) -> str:
    """An ISO 8601 (or epoch) time as the board shows it before the browser turns it into
    its own zone: `2026-11-29 16:02 UTC`."""
    if at is None or at == "":
        return ""
    moment = (datetime.fromtimestamp(at) if isinstance(at, (int, float))
              else datetime.fromisoformat(str(at).replace("Z", "+00:00")))
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _query(params: dict[str, Any], **changes: Any) -> str:
    """`?a=1&b=2` of `params` with `changes` (None removes a key), empty values left out."""
    merged = {**params, **changes}
    kept = {k: v for k, v in merged.items() if v not in (None, "", False)}
    return "?" + urlencode(kept) if kept else "?"


@functools.cache
def environment() -> Environment:
    """The templates, loaded once."""
    env = Environment(loader=PackageLoader("outputd.web", "templates"),
                      autoescape=select_autoescape(default=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["group"] = states.group
    env.globals["query"] = _query
    env.globals["words"] = lambda event: event.replace("_", " ")
    env.globals["label"] = lambda event: LABELS.get(event, event.replace("_", " "))
    return env


def page(template: str, caller: Caller | None, csrf: str = "", status: int = 200,
         **context: Any) -> HTMLResponse:
    """A board page for `caller` (None before logging in)."""
    html = environment().get_template(template).render(caller=caller, csrf=csrf, **context)
    return HTMLResponse(html, status_code=status)
