"""The `outputd` command line as a subprocess: search filters, exit codes, refusals."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys

from tests.conftest import Site
from tests.helpers import job_ticket, make_pdf

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named in Python 3.10+ on Linux only


def submit(site: Site, job_id: str, **overrides) -> None:
    make_pdf(site.intake / job_id / "art.pdf")
    ticket = site.root / f"{job_id}.json"
    ticket.write_text(json.dumps(job_ticket(job_id, [f"{job_id}/art.pdf"], **overrides)))
    done = site.cli("submit", str(ticket))
    assert f"accepted job {job_id}" in done.stdout
    assert not (site.intake / job_id).exists()  # its file was taken in with it


def ids(jobs: list[dict]) -> list[str]:
    return sorted(job["job_id"] for job in jobs)


def test_jobs_filters_find_the_right_jobs(site: Site, daemon_factory):
    submit(site, "J-1", order_id="8001", customer={"username": "alice", "email": "a@x.example"})
    submit(site, "J-2", order_id="8001", customer={"username": "bob", "email": "bob@y.example"})
    submit(site, "J-3", order_id="8002", storefront="beta",
           customer={"username": "carol", "email": "carol@y.example"})
    submit(site, "J-4", order_id="8003", payment_status="Pending")
    make_pdf(site.intake / "J-5" / "art.pdf", width_mm=100, height_mm=100)
    (site.root / "J-5.json").write_text(json.dumps(job_ticket("J-5", ["J-5/art.pdf"],
                                                              order_id="8004")))
    site.cli("submit", str(site.root / "J-5.json"))
    daemon_factory()
    for job_id in ("J-1", "J-2", "J-3"):
        site.wait_status(job_id, "InHotFolder")
    site.wait_status("J-5", "ValidationFailed")
    log = site.log.read_text()  # jobs taken in by `outputd submit` are in the daemon's log
    assert log.count("job.accepted job=J-1 order=8001 status=Ordered by=") == 1

    assert ids(site.jobs("--search", "bob")) == ["J-2"]
    assert ids(site.jobs("--search", "y.example")) == ["J-2", "J-3"]
    assert ids(site.jobs("--search", "8001")) == ["J-1", "J-2"]
    assert ids(site.jobs("--search", "J-3")) == ["J-3"]
    assert ids(site.jobs("--search", "A@X.EXAMPLE")) == ["J-1"]
    assert ids(site.jobs("--order", "8001")) == ["J-1", "J-2"]
    assert ids(site.jobs("--storefront", "beta")) == ["J-3"]
    assert ids(site.jobs("--status", "InHotFolder")) == ["J-1", "J-2", "J-3"]
    assert ids(site.jobs("--status", "Ordered")) == ["J-4"]
    assert ids(site.jobs("--status", "ValidationFailed")) == ["J-5"]
    assert ids(site.jobs("--history-status", "ValidationFinished")) == ["J-1", "J-2", "J-3"]
    assert ids(site.jobs("--history-status", "ValidationFailed")) == ["J-5"]
    assert ids(site.jobs("--status", "InHotFolder", "--limit", "2")) != []
    assert len(site.jobs("--limit", "2")) == 2

    assert ids(site.jobs("--payment-status", "Pending")) == ["J-4"]
    assert ids(site.jobs("--payment-status", "Paid", "--storefront", "beta")) == ["J-3"]
    assert ids(site.jobs("--approval", "NotRequired", "--order", "8001")) == ["J-1", "J-2"]
    assert ids(site.jobs("--test-mode")) == []
    assert len(site.jobs("--live")) == 5

    site.cli("event", "J-1", "cancelled")
    site.wait_status("J-1", "CleanUp")
    assert ids(site.jobs()) == ["J-2", "J-3", "J-4", "J-5"]  # cancelled: left out
    assert ids(site.jobs("--cancelled")) == ["J-1", "J-2", "J-3", "J-4", "J-5"]
    assert ids(site.jobs("--history-status", "Cancelled")) == ["J-1"]

    listing = site.cli("jobs", "--order", "8001", "--cancelled").stdout
    assert "J-1" in listing and "J-2" in listing and "J-3" not in listing
    shown = site.cli("show", "J-4").stdout
    assert "waiting     for payment" in shown


def test_exit_codes_and_refusals(site: Site):
    submit(site, "J-1")
    unknown = site.cli("show", "J-404", check=False)
    assert unknown.returncode == 1
    assert "there is no job J-404" in unknown.stderr

    refused = site.cli("event", "J-1", "approved", check=False)
    assert refused.returncode == 1
    assert "J-1 is Ordered" in refused.stderr
    assert site.show("J-1")["history"][-1]["status"] == "Ordered"  # nothing recorded

    assert site.cli("event", "J-1", "bogus", check=False).returncode == 2
    assert site.cli("retry", "J-1", check=False).returncode == 1
    assert site.cli("jobs", "--status", "Nonsense", check=False).returncode == 2

    # --config before the command works as well as after it.
    before = subprocess.run(
        [sys.executable, "-m", "outputd", "--config", str(site.config), "show", "J-1", "--json"],
        capture_output=True, text=True, check=True,
    )
    assert json.loads(before.stdout)["job_id"] == "J-1"

    site.config.write_text(site.config.read_text() + "\n[bogus]\nkey = 1\n")
    bad = site.cli("status", check=False)
    assert bad.returncode == 2
    assert "bogus" in bad.stderr and "not a known key" in bad.stderr


def test_a_duplicate_ticket_is_a_no_op_and_a_different_one_is_refused(site: Site):
    submit(site, "J-1")
    ticket = site.root / "J-1.json"
    again = site.cli("submit", str(ticket))
    assert "identical ticket" in again.stdout
    changed = json.loads(ticket.read_text())
    changed["quantity"] = 999
    ticket.write_text(json.dumps(changed))
    refused = site.cli("submit", str(ticket), check=False)
    assert refused.returncode == 1
    assert "already exists with a different ticket" in refused.stderr
    assert site.show("J-1")["quantity"] == 250


def test_show_json_has_the_contract_fields(site: Site):
    submit(site, "J-1")
    job = site.show("J-1")
    for key in ("job_id", "order_id", "storefront", "test_mode", "product_type", "sku",
                "quantity", "status", "payment_status", "approval", "cancelled",
                "created_at", "updated_at", "outputs", "deliveries", "preflight", "history"):
        assert key in job
    assert job["created_at"].endswith("Z")
    assert job["history"][0]["status"] == "Ordered"
    assert job["history"][0]["by"] not in ("", "outputd")  # the user who submitted it


def test_show_and_jobs_read_the_store_without_the_validation_models(site: Site):
    submit(site, "J-1", customer={"username": "alice", "email": "a@x.example"},
           process_after="2030-01-01T08:00:00+02:00")
    probe = (
        "import sys\n"
        "from outputd.cli.main import main\n"
        f"assert main(['show', 'J-1', '--config', {str(site.config)!r}]) == 0\n"
        f"assert main(['jobs', '--search', 'alice', '--config', {str(site.config)!r}]) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'"
        " or m in ('outputd.tickets', 'outputd.config')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "J-1" in done.stdout and "alice" in done.stdout

    shown = site.show("J-1")
    assert shown["process_after"] == "2030-01-01T08:00:00+02:00"
    assert shown["customer"] == {"username": "alice", "email": "a@x.example"}
    assert shown["files"] == [{"path": "J-1/art.pdf", "role": "part"}]

    # An operator can still look at jobs while a config mistake stops the daemon...
    site.config.write_text(site.config.read_text() + "\n[bogus]\nx = 1\n")
    assert ids(site.jobs("--search", "alice")) == ["J-1"]
    assert site.show("J-1")["status"] == "Ordered"
    # ...and every other command still refuses the config, naming the key.
    refused = site.cli("status", check=False)
    assert refused.returncode == 2 and "bogus is not a known key" in refused.stderr


def test_reading_before_the_first_start_makes_no_store(site: Site):
    done = site.cli("jobs", check=False)
    assert done.returncode == 1
    assert "there is no store at" in done.stderr and "outputd run creates it" in done.stderr
    assert not site.state.exists()
    assert site.cli("show", "J-1", check=False).returncode == 1
    assert not site.state.exists()


def test_what_a_user_can_get_wrong_is_one_sentence_never_a_traceback(site: Site):
    submit(site, "J-1")
    forgot = site.cli("event", "J-1", check=False)
    assert forgot.returncode == 2
    assert "which event for J-1? outputd event J-1 EVENT" in forgot.stderr
    helped = site.cli("event", "--help")
    assert "events: paid, approved" in " ".join(helped.stdout.split())
    backup = site.cli("backup", "/nonexistent/x.db", check=False)
    assert backup.returncode == 1 and "Traceback" not in backup.stderr
    assert backup.stderr.startswith("outputd: /nonexistent")
    version = subprocess.run([sys.executable, "-m", "outputd", "--version"],
                             capture_output=True, text=True, check=True)
    assert version.stdout.startswith("outputd ")
    listing = site.cli("jobs").stdout.splitlines()
    assert listing[0].split()[:3] == ["JOB", "ORDER", "STOREFRONT"]
    for n in range(8):
        submit(site, f"K-{n}")
    # A reader that stops after one byte, on a pipe of one page: the rest meets EPIPE.
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen([sys.executable, "-m", "outputd", "jobs", "--json", "--config",
                             str(site.config)], stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    assert os.read(read_end, 1) == b"["
    os.close(read_end)
    _, err = proc.communicate(timeout=60)
    assert err == b"" and proc.returncode == 0


def test_check_config_as_root_makes_no_hot_folder_the_service_could_not_write(site: Site):
    if os.geteuid() != 0:
        import pytest
        pytest.skip("only root can make a folder the service user cannot write")
    done = site.cli("check-config")
    assert "rip1: " in done.stdout and "is not there yet; not made now" in done.stdout
    assert not site.hot.exists()


def test_late_lists_jobs_past_their_due_time_not_yet_in_a_hot_folder(site: Site,
                                                                      daemon_factory):
    submit(site, "J-1", due_at="2020-01-01T12:00:00Z", payment_status="Pending")
    submit(site, "J-2", due_at="2099-01-01T12:00:00+01:00", payment_status="Pending")
    submit(site, "J-3", payment_status="Pending")  # no due time: never late
    submit(site, "J-4", due_at="2020-01-01T12:00:00Z", payment_status="Pending")
    submit(site, "J-5", due_at="2020-01-01T12:00:00Z")
    daemon_factory()
    site.cli("event", "J-4", "cancelled")
    site.wait_status("J-4", "CleanUp")
    site.wait_status("J-5", "InHotFolder")
    assert ids(site.jobs("--late")) == ["J-1"]  # J-5 reached the RIP: not late (DESIGN §15)
    assert ids(site.jobs("--late", "--cancelled")) == ["J-1"]  # a cancelled job never is
    site.cli("event", "J-1", "paid")
    site.wait_status("J-1", "InHotFolder")
    assert ids(site.jobs("--late")) == []
    assert [h["status"] for h in site.show("J-1")["history"]].count("Late") == 1


def test_users_and_tokens_are_managed_from_the_command_line(site: Site):
    added = site.cli("user", "add", "ann", "--role", "operator", "--storefront", "acme",
                     "--password-stdin", stdin="a long password 1\n")
    assert added.stdout.strip() == "user ann added as operator for acme"
    users = json.loads(site.cli("user", "list", "--json").stdout)
    assert [(u["name"], u["role"], u["storefronts"]) for u in users] == [
        ("ann", "operator", ["acme"])]
    assert "password" not in json.dumps(users).replace("password_changed_at", "")
    made = site.cli("token", "add", "mis", "--role", "submitter", "--storefront", "acme")
    lines = made.stdout.splitlines()
    assert len(lines) == 1 and re.fullmatch(r"odt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", lines[0])
    listed = site.cli("token", "list").stdout
    assert "mis" in listed and lines[0] not in listed and lines[0][21:] not in listed
    taken = site.cli("user", "add", "mis", "--role", "admin", "--password-stdin",
                     stdin="a long password 2\n", check=False)
    assert taken.returncode == 1 and "already a token named mis" in taken.stderr
    short = site.cli("user", "passwd", "ann", "--password-stdin", stdin="short\n",
                     check=False)
    assert short.returncode == 1 and "at least 12 characters" in short.stderr
    site.cli("token", "revoke", "mis")
    assert "(revoked)" in site.cli("token", "list").stdout
    again = site.cli("token", "revoke", "mis", check=False)
    assert again.returncode == 1 and "not revoked already" in again.stderr
    site.cli("user", "remove", "ann")
    assert json.loads(site.cli("user", "list", "--json").stdout) == []
