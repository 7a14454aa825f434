"""What systemd sees: READY/STATUS/RELOADING/STOPPING, and a watchdog that only pets
while the workers make progress or are idle."""

from __future__ import annotations

import os
import threading
import time

from outputd.daemon.sdnotify import sd_notify


def watchdog_interval() -> float | None:
    """Half of WATCHDOG_USEC in seconds, when the watchdog is meant for this process."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2_000_000


class Progress:
    """Each worker's last sign of life: idle, or busy since its last step."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: dict[str, float] = {}  # worker → monotonic time of its last progress

    def busy(self, worker: str) -> None:
        with self._lock:
            self._busy[worker] = time.monotonic()

    def idle(self, worker: str) -> None:
        with self._lock:
            self._busy.pop(worker, None)

    def tick(self, worker: str) -> None:
        """Progress within a long step (a chunk copied, a stage done)."""
        with self._lock:
            if worker in self._busy:
                self._busy[worker] = time.monotonic()

    def wedged(self, limit_s: float) -> list[str]:
        """Workers that have shown no progress for longer than `limit_s`."""
        now = time.monotonic()
        with self._lock:
            return sorted(w for w, since in self._busy.items() if now - since > limit_s)

    def busy_count(self) -> int:
        with self._lock:
            return len(self._busy)


def ready(status: str) -> None:
    """Tell systemd the daemon is ready, with a status line."""
    sd_notify(f"READY=1\nSTATUS={status}")


def status(text: str) -> None:
    """Update the status line `systemctl status` shows."""
    sd_notify(f"STATUS={text}")


def reloading() -> None:
    """Tell systemd a reload has begun."""
    sd_notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")


def stopping() -> None:
    """Tell systemd the daemon is stopping."""
    sd_notify("STOPPING=1")


def pet() -> None:
    """Pet systemd's watchdog."""
    sd_notify("WATCHDOG=1")
