"""Shared fixtures: a temp config tree, and the real `outputd` command as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import write_config

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """The path of a command a test needs: skipped on a laptop without it, failed in CI."""
    import shutil

    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed"
        if IN_CI:
            pytest.fail(f"{message}; .ci/run must install it")
        pytest.skip(message)
    return path



class Site:
    """A config file with its intake, state and hot folders, all under tmp_path."""

    def __init__(self, root: Path, **config: Any) -> None:
        self.root = root
        self.config = write_config(root, **config)
        self.intake = root / "intake"
        self.intake.mkdir(parents=True, exist_ok=True)
        self.hot = root / "hot" / "rip1"
        self.state = root / "state"
        self.log = root / "daemon.log"

    @classmethod
    def of_config(cls, config: Path) -> Site:
        """The command and waiting helpers over a config file made elsewhere."""
        site = cls.__new__(cls)
        site.root, site.config = config.parent, config
        return site

    def cli(self, *args: str, check: bool = True, stdin: str = ""
            ) -> subprocess.CompletedProcess[str]:
        """Run `outputd ARGS --config …` (with `stdin` as its input) and return the
        finished process."""
        done = subprocess.run(
            [sys.executable, "-m", "outputd", *args, "--config", str(self.config)],
            capture_output=True, text=True, timeout=60, input=stdin,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"outputd {' '.join(args)} exited {done.returncode}: "
                                 f"{done.stderr}")
        return done

    def show(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.cli("show", job_id, "--json").stdout)
        return result

    def jobs(self, *filters: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = json.loads(self.cli("jobs", "--json", *filters).stdout)
        return result

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")

    def wait_status(self, job_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            done = self.cli("show", job_id, "--json", check=False)
            if done.returncode != 0:
                return None
            job: dict[str, Any] = json.loads(done.stdout)
            return job if job["status"] == status else None
        return self.wait_for(reached, timeout, f"{job_id} to reach {status}")  # type: ignore[no-any-return]


class DaemonProcess:
    """`outputd run` as a real subprocess, with its log in a file."""

    def __init__(self, site: Site, env: dict[str, str] | None = None) -> None:
        self.site = site
        before = site.log.read_text().count("daemon.ready") if site.log.exists() else 0
        self.log = open(site.log, "a")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "outputd", "run", "--config", str(site.config)],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        site.wait_for(
            lambda: site.log.read_text().count("daemon.ready") > before or self.proc.poll(),
            timeout=30, what="the daemon to be ready")
        if self.proc.poll() is not None:
            raise AssertionError(f"outputd run exited at start: {site.log.read_text()}")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()


PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped after it)."""
    import uuid

    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    name = f"outputd_t_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE DATABASE {name}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Site:
    """A site on SQLite; `parametrize("site", ["sqlite", "postgresql"], indirect=True)`
    runs a test on both engines."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return Site(tmp_path / "site", store_url=request.getfixturevalue("pg_url"))
    return Site(tmp_path / "site")


@pytest.fixture
def web(site: Site) -> Iterator[Any]:
    """`outputd web` on a free loopback port for `site` (tests/web.py), stopped after."""
    from tests.web import Web

    server = Web(site)
    yield server
    server.stop()


@pytest.fixture
def daemon_factory(site: Site) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(**kwargs: Any) -> DaemonProcess:
        process = DaemonProcess(site, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.kill()
