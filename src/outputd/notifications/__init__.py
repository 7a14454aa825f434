"""Telling the storefront, the MIS and the operators: webhooks and email from the outbox."""

from __future__ import annotations

from collections.abc import Sequence

from outputd.config import NotifyConfig
from outputd.store.outbox import OutboxPolicy


def policy(config: NotifyConfig) -> OutboxPolicy:
    """The outbox policy: which notifications a status change owes under `config`."""

    def owed(status: str) -> Sequence[tuple[str, str]]:
        found = [("webhook", w.url) for w in config.webhooks
                 if not w.statuses or status in w.statuses]
        email = config.email
        if email.smtp_host and email.to and status in email.statuses:
            found.append(("email", "email"))
        return found

    return owed
