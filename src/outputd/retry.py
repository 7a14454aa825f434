"""When a failed delivery or notification is tried again: exponential back-off from
`[retry]`, the one policy for hot folders, webhooks and mail."""

from __future__ import annotations

from outputd.config import RetryConfig
from outputd.errors import DeliveryError, PermanentDeliveryError


class RetryPolicy:
    """Decides the next attempt time after a failure, or None to give up."""

    def __init__(self, config: RetryConfig) -> None:
        self.config = config

    def delay(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt."""
        return float(min(self.config.max_s, self.config.initial_s * 2 ** max(attempts - 1, 0)))

    def next_attempt(self, attempts: int, error: DeliveryError, now: float, *,
                     give_up: bool = True) -> float | None:
        """After the `attempts`-th failure: None for a permanent error, or once
        `max_attempts` is reached unless `give_up` is False (webhooks: a receiver down
        for hours still gets every event when it returns)."""
        if isinstance(error, PermanentDeliveryError):
            return None
        if give_up and attempts >= self.config.max_attempts:
            return None
        return now + self.delay(attempts)
