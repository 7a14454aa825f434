"""The print operations board in a real browser: Debian's headless Chromium driven by
Playwright, against `outputd run` and `outputd web` as subprocesses, with the daemon
producing the jobs the pages show."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProcess, Site, require_tool
from tests.helpers import job_ticket, make_pdf
from tests.web import Web, submit

PASSWORD = "a long password 1"
LIVE_S = 15  # generous: the page follows changes within about 2 s


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the module (Debian's, not a downloaded build)."""
    executable = require_tool("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable,
                                             args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


class Shift:
    """A site with its daemon and board running, some jobs, and users of each role."""

    def __init__(self, site: Site, chromium: Any) -> None:
        self.site = site
        self.chromium = chromium
        self.web = Web(site)
        self.base = f"http://127.0.0.1:{self.web.port}"
        self.daemon = DaemonProcess(site)
        for name, role, shops in (("ann", "admin", ()), ("otto", "operator", ()),
                                  ("april", "approver", ()), ("vic", "viewer", ()),
                                  ("lee", "operator", ("acme",))):
            args = [a for shop in shops for a in ("--storefront", shop)]
            site.cli("user", "add", name, "--role", role, *args, "--password-stdin",
                     stdin=PASSWORD + "\n")
        self.contexts: list[Any] = []

    def jobs(self) -> None:
        """J-0 … J-4 (J-3 of storefront beta, J-1 not paid, J-2 awaiting approval, J-4
        by another customer) and J-BAD, the wrong size, which fails its preflight."""
        site = self.site
        special: dict[int, dict[str, Any]] = {
            1: {"payment_status": "Pending"}, 2: {"approval": "AwaitingApproval"},
            3: {"storefront": "beta"},
            4: {"customer": {"username": "mia", "email": "mia@example.org"}}}
        for n in range(5):
            submit(site, f"J-{n}", order_id=f"50{n}", **special.get(n, {}))
        make_pdf(site.intake / "J-BAD" / "a.pdf", width_mm=100, height_mm=100)
        ticket = site.root / "J-BAD.json"
        ticket.write_text(json.dumps(job_ticket("J-BAD", ["J-BAD/a.pdf"], order_id="600")))
        site.cli("submit", str(ticket))
        site.wait_status("J-BAD", "ValidationFailed", timeout=60)
        for job_id in ("J-0", "J-3", "J-4"):
            site.wait_status(job_id, "InHotFolder", timeout=60)

    def page(self, user: str | None, javascript: bool = True) -> Any:
        """A new browser tab, logged in as `user` (None: not logged in)."""
        context = self.chromium.new_context(viewport={"width": 1280, "height": 900},
                                            java_script_enabled=javascript,
                                            accept_downloads=True)
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        if user is not None:
            page.goto(self.base + "/login")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", PASSWORD)
            page.click("button:has-text('Log in')")
            page.wait_for_url(self.base + "/")
        return page

    def stop(self) -> None:
        for context in self.contexts:
            context.close()
        self.daemon.stop()
        self.web.stop()


@pytest.fixture
def shift(site: Site, chromium: Any) -> Iterator[Shift]:
    running = Shift(site, chromium)
    yield running
    running.stop()


def rows(page: Any) -> list[str]:
    return [row.get_attribute("id").removeprefix("job-")
            for row in page.locator("table.jobs tbody tr").all()]


def test_a_job_controller_runs_a_shift_in_the_browser(shift: Shift, tmp_path: Path):
    site = shift.site
    shift.jobs()
    page = shift.page("otto")
    assert set(rows(page)) == {"J-0", "J-1", "J-2", "J-3", "J-4", "J-BAD"}
    # search by email, then filter by payment status (each view is a link)
    page.fill("input[name=search]", "mia@example.org")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**search=mia%40example.org**")
    assert rows(page) == ["J-4"]
    page.goto(shift.base + "/")
    page.fill("input[name=payment_status]", "Pending")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**payment_status=Pending**")
    assert rows(page) == ["J-1"]
    assert "waiting for payment" in page.locator("#job-J-1").inner_text()
    # the failed job, one click from its count, and its reason
    page.goto(shift.base + "/")
    page.click("a:has-text('ValidationFailed')")
    assert rows(page) == ["J-BAD"]
    page.click("a:has-text('J-BAD')")
    assert "page 1 is 100.0 × 100.0 mm" in page.locator("p.error").inner_text()
    page.click("button:has-text('Retry')")  # the same file fails the same way again
    site.wait_for(lambda: [h["status"] for h in site.show("J-BAD")["history"]].count(
        "ValidationFailed") == 2, timeout=60, what="the retried validation")
    assert [h["by"] for h in site.show("J-BAD")["history"] if h["status"] == "Ordered"][
        -1] == "otto"
    shots = Path(os.environ.get("OUTPUTD_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "job-failed.png"), full_page=True)
    page.goto(shift.base + "/")
    page.wait_for_selector("td.thumb img")
    page.screenshot(path=str(shots / "jobs.png"), full_page=True)
    # download an output: the bytes are the ones show --json names
    page.goto(shift.base + "/jobs/J-0")
    with page.expect_download() as download:
        page.click("a:has-text('Download')")
    saved = tmp_path / "J-0.pdf"
    download.value.save_as(saved)
    output = site.show("J-0")["outputs"][0]
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == output["sha256"]
    # ship the order, and see CleanUp come without reloading the page
    page.click("button:has-text('Mark shipped')")
    page.wait_for_selector("p.said")
    page.evaluate("window.stillHere = true")
    page.wait_for_selector("h1 .status:has-text('CleanUp')", timeout=LIVE_S * 1000)
    assert page.evaluate("window.stillHere") is True  # the page was never loaded again
    history = site.show("J-0")["history"]
    assert [h["by"] for h in history if h["status"] == "Shipped"] == ["otto"]
    # pause the hot folder, then resume it
    page.goto(shift.base + "/hotfolders")
    page.click("button:has-text('Pause rip1')")
    page.wait_for_selector("p.said:has-text('Paused')")
    assert json.loads(site.cli("status", "--json").stdout)["hotfolders"]["rip1"]["paused"]
    page.click("button:has-text('Resume rip1')")
    page.wait_for_selector("p.said:has-text('Resumed')")
    assert not json.loads(site.cli("status", "--json").stdout)["hotfolders"]["rip1"][
        "paused"]
    # hold a job: its page says who holds it
    page.goto(shift.base + "/jobs/J-2")
    page.click("button:has-text('Hold')")
    page.wait_for_selector("h1 .status:has-text('Blocked')", timeout=LIVE_S * 1000)
    assert "held by otto" in page.locator("p.why").inner_text()


def test_an_approver_approves_and_the_job_goes_on(shift: Shift):
    site = shift.site
    submit(site, "J-A", approval="AwaitingApproval")
    site.wait_status("J-A", "UnapprovedOrder", timeout=60)
    page = shift.page("april")
    page.goto(shift.base + "/?approval=AwaitingApproval")
    assert rows(page) == ["J-A"]
    page.click("a:has-text('J-A')")
    assert page.locator(".actions button").all_inner_texts() == ["Approve", "Reject"]
    page.click("button:has-text('Approve')")
    page.wait_for_selector("h1 .status:has-text('InHotFolder')", timeout=LIVE_S * 1000)
    assert [h["by"] for h in site.show("J-A")["history"] if h["status"] == "Approved"] == [
        "april"]


def test_a_viewer_sees_no_action_and_a_forged_post_is_refused(shift: Shift):
    site = shift.site
    submit(site, "J-V")
    site.wait_status("J-V", "InHotFolder", timeout=60)
    page = shift.page("vic")
    page.goto(shift.base + "/jobs/J-V")
    assert page.locator(".actions").count() == 0 and page.locator("main button").count() == 0
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    for form in ({"event": "shipped", "csrf_token": csrf}, {"event": "shipped"}):
        answer = page.request.post(shift.base + "/jobs/J-V/events", form=form,
                                   max_redirects=0)
        assert answer.status == 403, form
    answer = page.request.post(shift.base + "/hotfolders/rip1/pause",
                               form={"csrf_token": csrf}, max_redirects=0)
    assert answer.status == 403
    assert site.show("J-V")["status"] == "InHotFolder"


def test_a_storefront_limited_operator_never_sees_another_storefronts_job(shift: Shift):
    site = shift.site
    shift.jobs()
    make_pdf(site.intake / "J-BETA-BAD" / "a.pdf", width_mm=100, height_mm=100)
    ticket = site.root / "beta-bad.json"
    ticket.write_text(json.dumps(job_ticket("J-BETA-BAD", ["J-BETA-BAD/a.pdf"],
                                            storefront="beta", order_id="700")))
    site.cli("submit", str(ticket))
    site.wait_status("J-BETA-BAD", "ValidationFailed", timeout=60)
    page = shift.page("lee")
    assert set(rows(page)) == {"J-0", "J-1", "J-2", "J-4", "J-BAD"}
    assert page.locator(".counts a:has-text('ValidationFailed') strong").inner_text() == "1"
    page.goto(shift.base + "/?storefront=beta")
    assert rows(page) == []
    answer = page.goto(shift.base + "/jobs/J-3")
    assert answer.status == 404 and "J-3" not in page.locator("main").inner_text().replace(
        "job J-3", "")
    assert page.request.get(shift.base + "/api/v1/jobs/J-3/pages/1.png").status == 404


def test_the_board_works_without_javascript(shift: Shift):
    site = shift.site
    submit(site, "J-N", order_id="800")
    submit(site, "J-P", order_id="801", payment_status="Pending")
    site.wait_status("J-N", "InHotFolder", timeout=60)
    page = shift.page("otto", javascript=False)
    page.fill("input[name=search]", "801")
    page.click("button:has-text('Filter')")
    assert rows(page) == ["J-P"]
    page.click("a:has-text('J-P')")
    page.click("button:has-text('Mark paid')")
    assert "Mark paid recorded" in page.locator("p.said").inner_text() or \
        "Paid recorded" in page.locator("p.said").inner_text()
    site.wait_status("J-P", "InHotFolder", timeout=60)
    page.goto(shift.base + "/jobs/J-N")
    page.click("a:has-text('Cancel')")  # what cannot be undone asks first
    page.fill("input[name=message]", "customer called")
    page.click("button:has-text('Yes, cancel')")
    job = site.wait_for(lambda: (j := site.show("J-N"))["cancelled"] and j, timeout=60,
                        what="the cancel")
    assert [h["message"] for h in job["history"] if h["status"] == "Cancelled"] == [
        "customer called"]


def test_an_operator_overrides_a_failed_preflight_on_the_board_with_a_reason(
        shift: Shift, tmp_path: Path):
    site = shift.site
    make_pdf(site.intake / "J-OV" / "a.pdf", width_mm=100, height_mm=100)
    ticket = site.root / "J-OV.json"
    ticket.write_text(json.dumps(job_ticket("J-OV", ["J-OV/a.pdf"], order_id="900")))
    site.cli("submit", str(ticket))
    site.wait_status("J-OV", "ValidationFailed", timeout=60)
    page = shift.page("otto")
    page.goto(shift.base + "/jobs/J-OV")
    first = page.locator("#preflight-h ~ table tbody tr").first  # failures come first
    assert first.locator("td").all_inner_texts()[:3] == ["page_size", "failed", "1, 2"]
    report = page.request.get(shift.base + page.locator(
        "a:has-text('The report as a PDF')").get_attribute("href"))
    assert report.status == 200 and report.body().startswith(b"%PDF-")
    assert b"page_size" in subprocess.run(
        [require_tool("pdftotext"), "-", "-"], input=report.body(), capture_output=True,
        check=True).stdout
    page.click("a:has-text('Override preflight')")
    assert "failed checks stay in its report" in page.locator("main").inner_text()
    shots = Path(os.environ.get("OUTPUTD_SCREENSHOTS", tmp_path))
    page.screenshot(path=str(shots / "override.png"), full_page=True)
    page.click("button:has-text('Yes, override preflight')")  # no reason given
    assert "needs a message saying why" in page.locator("main").inner_text()
    assert site.show("J-OV")["status"] == "ValidationFailed"
    page.goto(shift.base + "/jobs/J-OV/confirm?event=override")
    page.fill("input[name=message]", "the customer wants it at this size")
    page.click("button:has-text('Yes, override preflight')")
    page.wait_for_selector("h1 .status:has-text('InHotFolder')", timeout=LIVE_S * 1000)
    assert [(h["by"], h["message"]) for h in site.show("J-OV")["history"]
            if h["status"] == "ValidationFinished"] == [
        ("otto", "the customer wants it at this size")]
    make_pdf(site.intake / "J-OV2" / "a.pdf", width_mm=100, height_mm=100)
    ticket.write_text(json.dumps(job_ticket("J-OV2", ["J-OV2/a.pdf"], order_id="901")))
    site.cli("submit", str(ticket))
    site.wait_status("J-OV2", "ValidationFailed", timeout=60)
    approver = shift.page("april")  # an approver is not offered an override
    approver.goto(shift.base + "/jobs/J-OV2")
    assert approver.locator(":is(a, button):has-text('Override')").count() == 0
    answer = approver.request.post(shift.base + "/jobs/J-OV2/events", form={
        "event": "override", "message": "x", "confirmed": "yes",
        "csrf_token": approver.locator("input[name=csrf_token]").first.get_attribute(
            "value") or ""}, max_redirects=0)
    assert answer.status == 403


def test_every_page_passes_an_accessibility_check(shift: Shift):
    from axe_playwright_python.sync_playwright import Axe

    shift.jobs()
    axe = Axe()
    anonymous = shift.page(None)
    anonymous.goto(shift.base + "/login")
    pages = [("login", anonymous)]
    page = shift.page("ann")
    found = []
    for path in ("/", "/jobs/J-BAD", "/jobs/J-0", "/jobs/J-0/confirm?event=cancelled",
                 "/hotfolders", "/admin", "/jobs/no-such-job"):
        page.goto(shift.base + path)
        result = axe.run(page)
        found += [f"{path}: {v['id']} ({v['impact']}): {v['help']}"
                  for v in result.response["violations"]
                  if v["impact"] in ("serious", "critical")]
    for name, other in pages:
        result = axe.run(other)
        found += [f"{name}: {v['id']} ({v['impact']}): {v['help']}"
                  for v in result.response["violations"]
                  if v["impact"] in ("serious", "critical")]
    assert found == []
