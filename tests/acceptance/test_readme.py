"""The README's worked example and its first five minutes over HTTP, run as written: the
bundled config in a folder of its own, `outputd run` as `make run` starts it, and the
README's shell blocks run by bash with curl (only the port is changed, and the setup
link is the one the daemon logged)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Site, require_tool
from tests.sshd import free_port

ROOT = Path(__file__).resolve().parents[2]


def blocks() -> list[str]:
    """The README's sh blocks, in order."""
    return re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def block_with(text: str) -> str:
    found = [block for block in blocks() if text in block]
    assert len(found) == 1, f"one README block should hold {text!r}"
    return found[0]


class Shop:
    """A checkout's config and var/ in a folder of its own, with `.venv/bin` pointing at
    this interpreter, and `outputd run` going in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "config").mkdir(parents=True)
        shutil.copy(ROOT / "config" / "outputd.toml", root / "config" / "outputd.toml")
        venv = root / ".venv" / "bin"
        venv.mkdir(parents=True)
        for name, command in (("python", ""), ("outputd", " -m outputd")):
            (venv / name).write_text(f'#!/bin/sh\nexec "{sys.executable}"{command} "$@"\n')
            (venv / name).chmod(0o755)
        self.port = free_port()
        self.env = {**os.environ, "OUTPUTD_WEB__LISTEN": f"127.0.0.1:{self.port}",
                    "OUTPUTD_METRICS__LISTEN": ""}
        self.env.pop("OUTPUTD_CONFIG", None)
        self.log_path = root / "run.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(venv / "outputd"), "run"], cwd=root, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.site = Site.of_config(root / "config" / "outputd.toml")

    def text(self) -> str:
        return self.log_path.read_text()

    def sh(self, script: str) -> str:
        """Run a README block with bash in the shop's folder, in the shell variables the
        blocks before it set (as one terminal would); its output."""
        script = script.replace("127.0.0.1:8080", f"127.0.0.1:{self.port}")
        script = ("[ -f .shell ] && . ./.shell\n" + script
                  + "\nfor v in LINK TOKEN; do [ -n \"${!v:-}\" ] && declare -p $v; done "
                  "> .shell || true\n")
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=self.root,
                              env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    require_tool("curl")
    running = Shop(tmp_path / "shop")
    yield running
    running.stop()


def test_the_readme_worked_example_and_first_five_minutes_work_as_written(shop: Shop):
    site = shop.site
    site.wait_for(lambda: "web.listening" in shop.text() or shop.proc.poll() is not None,
                  timeout=60, what="outputd run to bring up the API")
    assert shop.proc.poll() is None, shop.text()
    link = re.search(r'web\.setup .*url="?(http://\S+?)"?(\s|$)', shop.text(), re.M)
    assert link, shop.text()

    shop.sh(block_with("mkdir -p var/intake/J-1001"))
    landed = shop.root / "var" / "hot" / "rip1" / "5001_J-1001_FLYER-A5_q250.pdf"
    site.wait_for(landed.exists, timeout=60, what="the worked example's flyer to land")
    shop.sh(block_with(".venv/bin/outputd show J-1001"))
    site.wait_status("J-1001", "CleanUp", timeout=60)

    first = block_with("LINK=")
    first = re.sub(r"LINK='[^']*'", f"LINK='{link.group(1)}'", first)
    out = shop.sh(first).splitlines()
    assert out[0] == "303", out  # the setup link made the admin
    assert out[-1] == "201", out
    job = json.loads(out[-2])
    assert job["job_id"] == "J-2001" and job["status"] == "Ordered"
    users = json.loads(site.cli("user", "list", "--json").stdout)
    assert [(u["name"], u["role"]) for u in users] == [("admin", "admin")]
    site.wait_status("J-2001", "InHotFolder", timeout=60)

    out = shop.sh(block_with('"event": "shipped"')).splitlines()
    assert json.loads(out[0])["status"] == "InHotFolder"
    assert out[-1] == "202" and json.loads(out[-2])["recorded"] == ["J-2001"]
    shipped = site.wait_status("J-2001", "CleanUp", timeout=60)
    assert [(h["by"], h["message"]) for h in shipped["history"]
            if h["status"] == "Shipped"] == [("shop", "UPS 1Z999")]
    assert (shop.root / "var" / "hot" / "rip1" / "5002_J-2001_FLYER-A5_q250.pdf").exists()
