"""Webhooks and email from the durable outbox, through the real daemon."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Site
from tests.helpers import drop_ticket, job_ticket, make_pdf
from tests.receivers import SmtpReceiver, WebhookReceiver
from tests.sshd import free_port

SECRET = b"a shared secret"


def notify_site(tmp_path: Path, *, hook: str = "", smtp_port: int = 0, statuses: str = "[]",
                routes: str | None = None, batch_s: float = 1) -> Site:
    (tmp_path / "secret").write_bytes(SECRET + b"\n")
    extra = ""
    if hook:
        extra += (f'[[notify.webhooks]]\nurl = "{hook}"\nsecret_file = "{tmp_path / "secret"}"\n'
                  f"statuses = {statuses}\ntimeout_s = 2\n\n")
    if smtp_port:
        extra += (f'[notify.email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_port}\n'
                  'sender = "outputd@shop.example"\nto = ["ops@shop.example"]\n'
                  f"batch_s = {batch_s}\ntimeout_s = 2\n\n")
    return Site(tmp_path / "site", extra=extra, routes=routes)


def drop(site: Site, job_id: str, **changes) -> None:
    make_pdf(site.intake / job_id / "art.pdf")
    drop_ticket(site.intake, job_ticket(job_id, [f"{job_id}/art.pdf"], **changes))


def history(site: Site, job_id: str) -> list[str]:
    return [h["status"] for h in site.show(job_id)["history"]]


def test_webhooks_are_signed_and_carry_the_status(tmp_path: Path):
    receiver = WebhookReceiver()
    site = notify_site(tmp_path, hook=receiver.url)
    daemon = DaemonProcess(site)
    try:
        drop(site, "J-1")
        site.wait_status("J-1", "InHotFolder")
        site.wait_for(lambda: len(receiver.calls) == 5, timeout=10, what="5 webhooks")
        for call in receiver.calls:
            expected = "sha256=" + hmac.new(SECRET, call["raw"], hashlib.sha256).hexdigest()
            assert call["headers"]["X-Outputd-Signature"] == expected
        bodies = receiver.bodies()
        assert [b["status"] for b in bodies] == ["Ordered", "ValidationFinished",
                                                 "OutputCreationStarted", "OutputCreated",
                                                 "InHotFolder"]
        last = bodies[-1]
        assert set(last) == {"event_id", "at", "job_id", "order_id", "storefront", "status",
                             "message", "outputs", "deliveries"}
        assert last["deliveries"][0]["state"] == "delivered"
        assert last["outputs"][0]["name"] == "J-1.pdf"
        site.wait_for(lambda: history(site, "J-1").count("MisNotified") == 5, timeout=5)
        assert site.show("J-1")["status"] == "InHotFolder"  # notes leave the status alone
    finally:
        daemon.stop()
        receiver.close()


def test_a_failing_receiver_gets_every_event_once_in_order(tmp_path: Path):
    receiver = WebhookReceiver(fail_first=3)
    site = notify_site(tmp_path, hook=receiver.url)
    daemon = DaemonProcess(site)
    try:
        for job_id in ("J-1", "J-2"):
            drop(site, job_id)
        for job_id in ("J-1", "J-2"):
            site.wait_status(job_id, "InHotFolder")
        site.wait_for(lambda: len(receiver.bodies()) == 10, timeout=20, what="10 events")
        bodies = receiver.bodies()
        ids = [b["event_id"] for b in bodies]
        assert len(set(ids)) == 10
        for job_id in ("J-1", "J-2"):
            statuses = [b["status"] for b in bodies if b["job_id"] == job_id]
            assert statuses == ["Ordered", "ValidationFinished", "OutputCreationStarted",
                                "OutputCreated", "InHotFolder"]
        notes = history(site, "J-1") + history(site, "J-2")
        assert notes.count("MisFailed") == 3
        assert notes.count("MisNotificationRetrigger") == 3
        first = history(site, "J-1")
        if "MisFailed" in first:
            assert first.index("MisFailed") < first.index("MisNotified")
    finally:
        daemon.stop()
        receiver.close()


def test_pending_events_survive_a_kill(tmp_path: Path):
    port = free_port()
    site = notify_site(tmp_path, hook=f"http://127.0.0.1:{port}/hook")
    daemon = DaemonProcess(site)
    for n in range(10):
        drop(site, f"J-{n}")
    site.wait_for(lambda: len(site.jobs("--status", "InHotFolder")) == 10, timeout=30)
    status = site.cli("status", "--json").stdout
    assert json.loads(status)["outbox_depth"] == 50  # nobody listens yet
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait()
    receiver = WebhookReceiver(port=port)  # the receiver comes back
    daemon = DaemonProcess(site)
    try:
        site.wait_for(lambda: len(receiver.calls) >= 50, timeout=60, what="50 events")
        time.sleep(1)
        ids = Counter(b["event_id"] for b in receiver.bodies())
        assert len(ids) == 50
        assert [i for i, n in ids.items() if n > 1] == []  # none twice
    finally:
        daemon.stop()
        receiver.close()


def test_a_failure_burst_is_one_summary_mail_and_single_failures_one_each(tmp_path: Path):
    smtp = SmtpReceiver()
    # a mail waits batch_s for others like it: longer than 30 preflights take on a busy
    # machine, so the burst is one burst however slow the machine is
    site = notify_site(tmp_path, smtp_port=smtp.port, batch_s=8)
    daemon = DaemonProcess(site)
    try:
        site.cli("pause", "rip1")
        for n in range(30):
            make_pdf(site.intake / f"J-{n}" / "art.pdf", width_mm=100, height_mm=100)
            drop_ticket(site.intake, job_ticket(f"J-{n}", [f"J-{n}/art.pdf"]))
        site.wait_for(lambda: len(site.jobs("--status", "ValidationFailed")) == 30, timeout=30)
        site.wait_for(lambda: json.loads(site.cli("status", "--json").stdout)[
            "outbox_depth"] == 0, timeout=60, what="every mail sent")
        assert len(smtp.messages) == 1
        mail = smtp.messages[0]
        assert "30 jobs are ValidationFailed" in mail["Subject"]
        text = mail.get_payload()
        assert "J-17" in text and "outputd jobs --status ValidationFailed" in text
        assert "SentEmail" in history(site, "J-3")

        make_pdf(site.intake / "J-X" / "art.pdf", width_mm=100, height_mm=100)
        drop_ticket(site.intake, job_ticket("J-X", ["J-X/art.pdf"], order_id="777"))
        site.wait_for(lambda: len(smtp.messages) == 2, timeout=30, what="a second mail")
        single = smtp.messages[1]
        assert single["Subject"] == "outputd: job J-X is ValidationFailed"
        body = single.get_payload()
        assert "Order:      777" in body and "outputd show J-X" in body
    finally:
        daemon.stop()
        smtp.close()


def test_smtp_down_is_recorded_and_production_carries_on(tmp_path: Path):
    site = notify_site(tmp_path, smtp_port=free_port())
    daemon = DaemonProcess(site)
    try:
        make_pdf(site.intake / "J-1" / "art.pdf", width_mm=100, height_mm=100)
        drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
        drop(site, "J-2")
        site.wait_status("J-2", "InHotFolder")
        site.wait_for(lambda: "SentEmailFailed" in history(site, "J-1"), timeout=10)
        assert site.show("J-1")["status"] == "ValidationFailed"
    finally:
        daemon.stop()


def test_renotify_sends_the_current_status_again(tmp_path: Path):
    receiver = WebhookReceiver()
    site = notify_site(tmp_path, hook=receiver.url, statuses='["InHotFolder"]')
    daemon = DaemonProcess(site)
    try:
        drop(site, "J-1")
        site.wait_status("J-1", "InHotFolder")
        site.wait_for(lambda: len(receiver.calls) == 1, timeout=10)
        site.cli("event", "J-1", "renotify")
        site.wait_for(lambda: len(receiver.calls) == 2, timeout=10)
        first, second = receiver.bodies()
        assert first["status"] == second["status"] == "InHotFolder"
        assert first["event_id"] != second["event_id"]
        assert "MisNotificationRetrigger" in history(site, "J-1")
    finally:
        daemon.stop()
        receiver.close()


def test_a_job_given_by_outputd_submit_owes_its_webhooks_too(tmp_path: Path):
    receiver = WebhookReceiver()
    site = notify_site(tmp_path, hook=receiver.url, statuses='["Ordered", "InHotFolder"]')
    daemon = DaemonProcess(site)
    try:
        make_pdf(site.intake / "J-1" / "art.pdf")
        ticket = tmp_path / "J-1.json"
        ticket.write_text(json.dumps(job_ticket("J-1", ["J-1/art.pdf"])))
        site.cli("submit", str(ticket))
        site.wait_status("J-1", "InHotFolder")
        site.wait_for(lambda: len(receiver.calls) == 2, timeout=10, what="2 webhooks")
        assert [b["status"] for b in receiver.bodies()] == ["Ordered", "InHotFolder"]
    finally:
        daemon.stop()
        receiver.close()


def test_check_config_tries_webhooks_and_smtp(tmp_path: Path):
    receiver = WebhookReceiver()
    smtp = SmtpReceiver()
    site = notify_site(tmp_path, hook=receiver.url, smtp_port=smtp.port)
    try:
        done = site.cli("check-config")
        assert "answers HTTP 405" in done.stdout and "accepts connections" in done.stdout
    finally:
        receiver.close()
        smtp.close()
    failed = site.cli("check-config", check=False)
    assert failed.returncode == 1 and "did not answer" in failed.stdout



@pytest.mark.parametrize("code", [301, 302])
def test_a_webhook_answered_with_a_redirect_is_a_failure_naming_where_it_points(
        tmp_path: Path, code: int):
    receiver = WebhookReceiver(redirect=code)
    site = notify_site(tmp_path, hook=receiver.url + "?token=s3cr3t-t0ken",
                       statuses='["InHotFolder"]')
    daemon = DaemonProcess(site)
    try:
        drop(site, "J-1")
        site.wait_status("J-1", "InHotFolder")
        site.wait_for(lambda: "MisFailed" in history(site, "J-1"), what="MisFailed")
        job = site.show("J-1")
        failed = [h["message"] for h in job["history"] if h["status"] == "MisFailed"][0]
        moved = receiver.url.replace("/hook", "/new?***")
        assert f"answered HTTP {code}, a redirect to {moved}" in failed
        assert "MisNotified" not in history(site, "J-1")
        assert receiver.gets == []  # the POST was never re-sent as a GET
        shown = site.cli("show", "J-1").stdout + json.dumps(job) + site.log.read_text()
        assert "s3cr3t-t0ken" not in shown and "t0ps3cret" not in shown
        assert "/hook?***" in shown
    finally:
        daemon.stop()
        receiver.close()


def test_a_file_name_with_a_line_break_stops_no_mail(tmp_path: Path):
    smtp = SmtpReceiver()
    site = notify_site(tmp_path, smtp_port=smtp.port)
    site.config.write_text(site.config.read_text().replace(
        "batch_s = 1\n", "batch_s = 1\nsummary_after = 1\n"))
    daemon = DaemonProcess(site)
    try:
        for job_id in ("J-1", "J-2"):  # one reason, so one summary mail with it in its Subject
            make_pdf(site.intake / job_id / "a\nb.pdf", width_mm=100, height_mm=100)
            drop_ticket(site.intake, job_ticket(job_id, [f"{job_id}/a\nb.pdf"]))
        make_pdf(site.intake / "J-3" / "art.pdf", width_mm=100, height_mm=100)
        drop_ticket(site.intake, job_ticket("J-3", ["J-3/art.pdf"]))
        for job_id in ("J-1", "J-2", "J-3"):
            site.wait_status(job_id, "ValidationFailed")
        site.wait_for(lambda: all("SentEmail" in history(site, j) for j in ("J-1", "J-2", "J-3")),
                      timeout=30, what="every failure mailed")
        subjects = [m["Subject"] for m in smtp.messages]
        assert "outputd: job J-3 is ValidationFailed" in subjects
        summary = [s for s in subjects if "2 jobs are ValidationFailed" in s]
        assert len(summary) == 1 and "\n" not in summary[0] and "a b.pdf" in summary[0]
    finally:
        daemon.stop()
        smtp.close()
