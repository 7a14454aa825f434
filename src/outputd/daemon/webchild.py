"""`outputd web` as a supervised child of `outputd run` (when `[web] listen` is set):
started with the daemon, started again if it dies (waiting longer each time it dies
young), stopped with the daemon. Production never waits on it: it is its own process
and talks to the daemon only through the store."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

from outputd import logs

log = logging.getLogger(__name__)
STOP_WAIT_S = 10.0
MAX_DELAY_S = 60.0


class WebChild:
    """One `outputd web` process, kept running."""

    def __init__(self, config_path: str | None) -> None:
        self.command = [sys.executable, "-m", "outputd", "web", "--with-parent"]
        if config_path:
            self.command += ["--config", config_path]
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.delay = 1.0
        self.next_start = 0.0

    def start(self) -> None:
        """Start the child (its output goes where the daemon's does). Its standard input
        is a pipe this process never writes: when this process ends, however it ends,
        the child reads the end of it and stops."""
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE)
        self.started_at = time.monotonic()
        logs.event(log, logging.INFO, "web.started", pid=self.proc.pid)

    def check(self) -> None:
        """Start it again if it has died (called every few seconds)."""
        if self.proc is None or self.proc.poll() is None:
            return
        now = time.monotonic()
        if not self.next_start:
            young = now - self.started_at < 30
            self.delay = min(self.delay * 2, MAX_DELAY_S) if young else 1.0
            self.next_start = now + self.delay
            logs.event(log, logging.ERROR, "web.exited", code=self.proc.returncode,
                       restart_in_s=self.delay)
        if now >= self.next_start:
            self.next_start = 0.0
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.start()

    def stop(self) -> None:
        """Stop the child: SIGTERM, then SIGKILL after STOP_WAIT_S."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.poll() is not None:
                return
            proc.terminate()
            try:
                proc.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
