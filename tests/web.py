"""`outputd web` as its users reach it: the server as a subprocess on a free loopback
port, a client for it, and the helpers that make jobs and tokens for a test."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

from tests.conftest import Site
from tests.helpers import job_ticket, make_pdf
from tests.sshd import free_port


class Web:
    """`outputd web` on a free port, and a client for it."""

    def __init__(self, site: Site, settings: str = "") -> None:
        self.site = site
        base = site.config.read_text()
        self.log = open(site.root / "web.log", "a")  # noqa: SIM115 - closed in stop()
        for _ in range(3):  # a free port may be taken by another process before we bind
            self.port = free_port()
            site.config.write_text(base + f'\n[web]\nlisten = "127.0.0.1:{self.port}"\n'
                                   + settings)
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "outputd", "web", "--config", str(site.config)],
                stdout=self.log, stderr=subprocess.STDOUT)
            site.wait_for(lambda: self.proc.poll() is not None or self._answers(),
                          timeout=30, what="outputd web to answer")
            if self.proc.poll() is None:
                return
        raise AssertionError((site.root / "web.log").read_text())

    def _answers(self) -> bool:
        try:
            self.call("GET", "/api/v1/openapi.json")
        except OSError:
            return False
        return True

    def call(self, method: str, path: str, token: str | None = None, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
        data = None if body is None else (
            body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                         method=method, headers=dict(headers or {}))
        if data is not None and not request.has_header("Content-type"):
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def json(self, method: str, path: str, token: str | None = None, body: Any = None
             ) -> tuple[int, Any]:
        status, _, raw = self.call(method, path, token, body)
        return status, json.loads(raw) if raw else None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)
        self.log.close()


def multipart(*parts: tuple[str, str | None, bytes]) -> tuple[dict[str, str], bytes]:
    """A multipart/form-data body of (name, filename or None, content) parts."""
    boundary = "----outputd-test-boundary-7f3a"
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename else "")
        body += (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
                 + ("Content-Type: application/octet-stream\r\n" if filename else "")
                 + "\r\n").encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body


def upload(site: Site, job_id: str, padding: int = 0, **changes: Any
           ) -> tuple[dict[str, str], bytes]:
    """A job's ticket and its one file (`padding` bytes larger), as a storefront would
    send them."""
    pdf = make_pdf(site.root / "staged" / job_id / "a.pdf", padding=padding)
    ticket = json.dumps(job_ticket(job_id, [f"{job_id}/a.pdf"], **changes)).encode()
    return multipart(("ticket", None, ticket), (f"{job_id}/a.pdf", "a.pdf", pdf.read_bytes()))


def token(site: Site, name: str, role: str, *storefronts: str) -> str:
    args = [arg for shop in storefronts for arg in ("--storefront", shop)]
    return site.cli("token", "add", name, "--role", role, *args).stdout.strip()


def submit(site: Site, job_id: str, **changes: Any) -> None:
    make_pdf(site.intake / job_id / "a.pdf")
    path = site.root / f"{job_id}.json"
    path.write_text(json.dumps(job_ticket(job_id, [f"{job_id}/a.pdf"], **changes)))
    site.cli("submit", str(path))
