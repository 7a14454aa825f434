"""Webhook POSTs, signed with HMAC-SHA256 of the exact body."""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.parse
import urllib.request

from outputd.config import WebhookConfig
from outputd.errors import DeliveryError

SIGNATURE_HEADER = "X-Outputd-Signature"


def secret_of(config: WebhookConfig) -> bytes:
    """The webhook's signing secret, read from its file."""
    if config.secret is not None:
        return config.secret.get_secret_value().encode()
    if config.secret_file is not None:
        try:
            return config.secret_file.read_bytes().strip()
        except OSError as exc:
            raise DeliveryError(f"cannot read secret_file {config.secret_file}: "
                                f"{exc.strerror}") from None
    return b""


def signature(secret: bytes, body: bytes) -> str:
    """The HMAC-SHA256 signature header value of a body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def shown(url: str) -> str:
    """A URL as it may be shown in logs and history: a password and the query string
    (where receivers often take a token) are masked."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = "***" if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as it is: urllib would re-send a POST as a GET without
    its body, and count that as sent."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(config: WebhookConfig, body: bytes) -> int:
    """POST `body`; return the HTTP status, or raise DeliveryError with the reason."""
    url = shown(config.url)
    request = urllib.request.Request(config.url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "User-Agent": "outputd",
        SIGNATURE_HEADER: signature(secret_of(config), body),
    })
    try:
        with _OPENER.open(request, timeout=config.timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            where = shown(exc.headers.get("Location", "") or "") or "nowhere"
            raise DeliveryError(f"{url} answered HTTP {exc.code}, a redirect to {where}; "
                                "a webhook is not re-sent to another address: set its url "
                                "to the one it points to") from None
        raise DeliveryError(f"{url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{url} did not answer: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"{url} answered HTTP {status}")
    return status


def probe(config: WebhookConfig) -> str:
    """Whether the URL answers at all (any HTTP status counts)."""
    try:
        with _OPENER.open(urllib.request.Request(config.url, method="HEAD"),
                          timeout=config.timeout_s) as response:
            return f"answers HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"answers HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DeliveryError(f"{shown(config.url)} did not answer: "
                            f"{getattr(exc, 'reason', exc)}") from None
