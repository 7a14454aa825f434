"""Real receivers on loopback for notification tests: an HTTP endpoint and an SMTP server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    """Records every POST (headers and body); answers `fail_first` calls with 500, or
    every call with a `redirect` status pointing to another address."""

    def __init__(self, fail_first: int = 0, port: int = 0, redirect: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.gets: list[str] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.calls.append({"headers": dict(self.headers), "raw": raw,
                                           "body": json.loads(raw)})
                    failing = len(receiver.calls) <= receiver.fail_first
                if redirect:
                    self.send_response(redirect)
                    host, port = self.server.server_address[:2]
                    self.send_header("Location", f"http://{host}:{port}/new?token=t0ps3cret")
                else:
                    self.send_response(500 if failing else 204)
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                with receiver.lock:
                    receiver.gets.append(self.path)
                self.send_response(200)
                self.end_headers()

            def do_HEAD(self) -> None:  # noqa: N802
                self.send_response(405)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self, ok_only: bool = True) -> list[dict[str, Any]]:
        with self.lock:
            calls = list(self.calls)
        skip = self.fail_first if ok_only else 0
        return [c["body"] for c in calls[skip:]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """aiosmtpd on loopback, keeping every message."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                from email import message_from_bytes

                receiver.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        from tests.sshd import free_port

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()
