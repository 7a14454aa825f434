"""Serving the application with uvicorn on `[web] listen`."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from outputd import logs
from outputd.config import Config
from outputd.errors import ConfigError
from outputd.ops import accounts
from outputd.store import open_store

log = logging.getLogger(__name__)
_CUT = "ASGI callable returned without completing response."


def serve(config: Config, with_parent: bool = False) -> int:
    """Serve `/api/v1` on `[web] listen` until SIGTERM or SIGINT; returns the exit status.
    `with_parent`: started by `outputd run`, which holds the other end of our standard
    input; stop when it closes (the daemon is gone, even by SIGKILL), so that no board
    outlives its daemon and keeps the port from the next one's."""
    import uvicorn

    from outputd.web.app import create_app

    logs.setup(config.daemon.log_format)
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.setLevel(logging.WARNING)  # our own lines say it
    # an answer cut off because the client read nothing: web.request says so (slow=…)
    uvicorn_log.addFilter(lambda record: record.getMessage() != _CUT)
    host, _, port = config.web.listen.rpartition(":")
    if not config.web.listen or not port.isdigit():
        raise ConfigError('web.listen must be "host:port" (e.g. "127.0.0.1:8080") for '
                          "outputd web to serve")
    store = open_store(config.store.url)
    try:
        secret = accounts.open_setup(store)
        if secret is not None:  # one-time: it creates the first admin, then is dead
            logs.event(log, logging.WARNING, "web.setup",
                       url=f"http://{config.web.listen}/setup?token={secret}",
                       then="open it to create the first admin")
        server = uvicorn.Server(uvicorn.Config(
            create_app(config, store), host=host.strip("[]") or "127.0.0.1", port=int(port),
            log_config=None, access_log=False, server_header=False, proxy_headers=False,
            timeout_keep_alive=5, limit_concurrency=200, h11_max_incomplete_event_size=16384,
            http=_deadline_protocol(config.web.client_timeout_s),
        ))
        logs.event(log, logging.INFO, "web.listening", listen=config.web.listen)
        if with_parent:
            threading.Thread(target=_stop_with_parent, args=(server,), name="parent",
                             daemon=True).start()
        server.run()
    finally:
        store.close()
    logs.event(log, logging.INFO, "web.stopped")
    return 0


def _stop_with_parent(server: Any) -> None:
    """Wait for the end of standard input (the parent's end of the pipe closed), then
    stop serving."""
    while sys.stdin.buffer.read(4096):
        pass
    logs.event(log, logging.WARNING, "web.parent_gone",
               then="stopping: the daemon that started this board is gone")
    server.should_exit = True


def _deadline_protocol(timeout_s: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol with a deadline for each request's headers: uvicorn
    times out only an idle kept-alive connection, so a client that opens a connection
    and sends its headers a byte at a time would hold it for ever (the bodies and the
    answers have theirs in web/app.py)."""

    class HeaderDeadline(H11Protocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._timer is not None:
                self._timer.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_later(timeout_s, self._late)

        def _late(self) -> None:
            # IDLE: no request's headers have come whole since the timer was armed
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                logs.event(log, logging.INFO, "web.slow_client", client=_peer(self.client),
                           waited_s=timeout_s, then="disconnected before its headers came")
                self.transport.close()

    return HeaderDeadline


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"
