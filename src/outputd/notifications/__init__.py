"""Telling the storefront, the MIS and the operators: webhooks and email from the outbox."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from outputd.config import NotifyConfig
from outputd.model import iso
from outputd.store.outbox import OutboxPolicy, StatusChange


@dataclass(frozen=True)
class Policy:
    """Which notifications a status change owes under one config, and their body."""

    config: NotifyConfig

    def owed(self, status: str) -> Sequence[tuple[str, str]]:
        """(kind, target) pairs: a webhook per URL that asks for `status`, and the mail."""
        found = [("webhook", w.url) for w in self.config.webhooks
                 if not w.statuses or status in w.statuses]
        email = self.config.email
        if email.smtp_host and email.to and status in email.statuses:
            found.append(("email", "email"))
        return found

    def body(self, change: StatusChange) -> str:
        """The JSON a webhook posts (and a mail is written from), with its own event id."""
        return json.dumps({
            "event_id": uuid.uuid4().hex,
            "at": iso(change.at),
            "job_id": change.job_id,
            "order_id": change.order_id,
            "storefront": change.storefront,
            "status": change.status,
            "message": change.message,
            "outputs": change.outputs,
            "deliveries": change.deliveries,
        }, ensure_ascii=False)


def policy(config: NotifyConfig) -> Policy:
    """The outbox policy under `config`."""
    return Policy(config)


@dataclass(frozen=True)
class Following:
    """The policy of whatever config is current (a daemon's, swapped by a reload)."""

    current: Callable[[], OutboxPolicy]

    def owed(self, status: str) -> Sequence[tuple[str, str]]:
        return self.current().owed(status)

    def body(self, change: StatusChange) -> str:
        return self.current().body(change)
