"""When a failed delivery is tried again: exponential back-off from `[retry]`."""

from __future__ import annotations

from outputd.config import RetryConfig
from outputd.errors import DeliveryError, PermanentDeliveryError


class RetryPolicy:
    """Decides the next attempt time for a failed delivery, or None to give up."""

    def __init__(self, config: RetryConfig) -> None:
        self.config = config

    def delay(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt."""
        return float(min(self.config.max_s, self.config.initial_s * 2 ** max(attempts - 1, 0)))

    def next_attempt(self, attempts: int, error: DeliveryError, now: float) -> float | None:
        if isinstance(error, PermanentDeliveryError) or attempts >= self.config.max_attempts:
            return None
        return now + self.delay(attempts)
