"""Serving the application with uvicorn on `[web] listen`."""

from __future__ import annotations

import logging

from outputd import logs
from outputd.config import Config
from outputd.errors import ConfigError
from outputd.ops import accounts
from outputd.store import open_store

log = logging.getLogger(__name__)


def serve(config: Config) -> int:
    """Serve `/api/v1` on `[web] listen` until SIGTERM or SIGINT; returns the exit status."""
    import uvicorn

    from outputd.web.app import create_app

    logs.setup(config.daemon.log_format)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # our own lines say it
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
        ))
        logs.event(log, logging.INFO, "web.listening", listen=config.web.listen)
        server.run()
    finally:
        store.close()
    logs.event(log, logging.INFO, "web.stopped")
    return 0
