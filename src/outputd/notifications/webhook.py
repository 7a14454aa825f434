"""Webhook POSTs, signed with HMAC-SHA256 of the exact body."""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.request

from outputd.config import WebhookConfig
from outputd.errors import DeliveryError

SIGNATURE_HEADER = "X-Outputd-Signature"


def secret_of(config: WebhookConfig) -> bytes:
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
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def post(config: WebhookConfig, body: bytes) -> int:
    """POST `body`; return the HTTP status, or raise DeliveryError with the reason."""
    request = urllib.request.Request(config.url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "User-Agent": "outputd",
        SIGNATURE_HEADER: signature(secret_of(config), body),
    })
    try:
        with urllib.request.urlopen(request, timeout=config.timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"{config.url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{config.url} did not answer: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"{config.url} answered HTTP {status}")
    return status


def probe(config: WebhookConfig) -> str:
    """Whether the URL answers at all (any HTTP status counts)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(config.url, method="HEAD"),
                                    timeout=config.timeout_s) as response:
            return f"answers HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"answers HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DeliveryError(f"{config.url} did not answer: {getattr(exc, 'reason', exc)}") \
            from None
