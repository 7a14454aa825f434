"""Remaking a job's output (recreate, reopen), cancelling it, and holding it, through the
in-process worker against real folders and SQLite: outputd never loses track of a file
it put in a hot folder until it took it back or the RIP took it."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from watchdog.events import FileSystemEvent

from outputd import states
from outputd.daemon.pickup import PickupWatcher
from outputd.daemon.worker import Services
from outputd.errors import DeliveryError
from outputd.intake.accept import Intake
from outputd.model import Result
from outputd.ops.access import Caller
from outputd.ops.events import record_event
from outputd.transports.memory import MemoryTransport
from tests import helpers
from tests.helpers import job_ticket, make_pdf, write_config

FINAL = "5001_J-1_FLYER-A5_q250.pdf"
run = helpers.run_jobs


@pytest.fixture
def env(tmp_path: Path):
    services = helpers.services(write_config(tmp_path))
    yield services
    services.store.close()


def accept(env: Services, **changes: object) -> None:
    make_pdf(env.layout.intake / "J-1" / "a.pdf", label="first")
    ticket = env.layout.intake / "J-1.json"
    ticket.write_text(json.dumps(job_ticket("J-1", ["J-1/a.pdf"], **changes)))
    assert Intake(env.store, env.layout, "n").handle(ticket).result == "accepted"


def ask(env: Services, event: str, message: str = "") -> None:
    """Record `event` as the CLI does (checked against the job's status first)."""
    done = record_event(env.store, env.layout, Caller.local("alice"), ["J-1"], event, message)
    assert done.jobs == ["J-1"], f"{event} was not recorded: {done}"


def hot(env: Services) -> Path:
    return Path(env.config.hotfolders["rip1"].path)


def spoil_source(env: Services) -> None:
    """The kept upload replaced by a file of the wrong size: preflight fails on it."""
    source = env.layout.source_file("J-1", "J-1/a.pdf")
    bad = make_pdf(source.with_name("bad.pdf"), width_mm=100, height_mm=100, label="bad")
    os.replace(bad, source)


def delivered(env: Services) -> int:
    return [h.status for h in env.store.jobs.history("J-1")].count(states.IN_HOT_FOLDER)


def test_a_cancel_after_recreate_takes_back_the_file_delivered_before(env: Services):
    accept(env)
    run(env)
    assert os.listdir(hot(env)) == [FINAL]
    ask(env, "recreate")
    ask(env, "cancelled")  # both applied before the old output is removed
    run(env)
    assert env.store.jobs.get("J-1").status == states.CLEAN_UP
    assert os.listdir(hot(env)) == []
    assert env.store.deliveries.of("J-1")[0].state == states.WITHDRAWN


def test_recreate_takes_back_the_old_file_before_making_the_new_one(env: Services):
    accept(env)
    run(env)
    spoil_source(env)
    ask(env, "recreate")
    run(env)
    job = env.store.jobs.get("J-1")
    assert job.status == states.VALIDATION_FAILED
    assert os.listdir(hot(env)) == []  # the RIP must not print the output being remade
    removed = next(h for h in env.store.jobs.history("J-1") if h.status == states.OUTPUT_DELETE)
    assert removed.message == f"old output removed; withdrawn from rip1:{hot(env) / FINAL}"
    ask(env, "cancelled")
    run(env)
    assert env.store.jobs.get("J-1").status == states.CLEAN_UP
    assert os.listdir(hot(env)) == []


def test_recreate_after_an_override_takes_back_the_overridden_output(env: Services):
    accept(env)
    run(env)
    spoil_source(env)
    ask(env, "recreate")
    run(env)
    ask(env, "override", "the customer wants it as it is")
    run(env)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER and delivered(env) == 2
    assert os.listdir(hot(env)) == [FINAL]
    ask(env, "recreate")
    run(env)
    assert env.store.jobs.get("J-1").status == states.VALIDATION_FAILED
    ask(env, "cancelled")
    run(env)
    assert env.store.jobs.get("J-1").status == states.CLEAN_UP
    assert os.listdir(hot(env)) == []


def test_recreate_leaves_a_file_the_rip_has_taken_and_delivers_the_new_one(env: Services):
    accept(env)
    run(env)
    (hot(env) / FINAL).unlink()  # the RIP took it
    ask(env, "recreate")
    run(env)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER and delivered(env) == 2
    assert os.listdir(hot(env)) == [FINAL]
    removed = next(h for h in env.store.jobs.history("J-1") if h.status == states.OUTPUT_DELETE)
    assert "already taken by the RIP from rip1" in removed.message


class Unreachable(MemoryTransport):
    """A hot folder held in memory that cannot be reached while `down` is set."""

    down = False

    def withdraw(self, final_name: str, sha256: str | None) -> bool:
        if self.down:
            raise DeliveryError("connection refused")
        return super().withdraw(final_name, sha256)


def test_recreate_waits_while_the_old_file_cannot_be_taken_back(env: Services):
    """A hot folder outputd cannot reach keeps the old delivery on record: the job waits
    in RecreationRequested and tries again, rather than forget the file."""
    rip = Unreachable("rip1")
    env.runtime.transports._transports["rip1"] = rip
    accept(env)
    run(env)
    assert list(rip.files) == [FINAL]
    rip.down = True
    ask(env, "recreate")
    run(env)
    job = env.store.jobs.get("J-1")
    assert job.status == states.RECREATION_REQUESTED
    assert job.due_at is not None and job.due_at > time.time() + 10
    assert [d.state for d in env.store.deliveries.of("J-1")] == [states.DELIVERED]
    rip.down = False
    env.store.jobs.update("J-1", due_at=time.time())  # its time to look again has come
    run(env)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER and delivered(env) == 2
    assert rip.writes == 2 and list(rip.files) == [FINAL]
    removed = next(h for h in env.store.jobs.history("J-1") if h.status == states.OUTPUT_DELETE)
    assert removed.message == f"old output removed; withdrawn from rip1:memory://rip1/{FINAL}"


def test_recreate_names_a_file_in_a_hot_folder_no_longer_configured(env: Services):
    accept(env)
    run(env)
    job = env.store.jobs.get("J-1")
    gone = replace(env.store.deliveries.of("J-1")[0], hotfolder="rip0")  # since removed
    env.store.jobs.save(job, Result(deliveries=[gone]))
    ask(env, "recreate")
    run(env)
    removed = next(h for h in env.store.jobs.history("J-1") if h.status == states.OUTPUT_DELETE)
    assert removed.message == (
        f"old output removed; could not be withdrawn, remove by hand: rip0:{gone.path} "
        "(hot folder rip0 is no longer configured)")


def test_reopen_takes_back_what_the_rip_has_not_taken_and_a_cancel_finds_the_rest(
        env: Services):
    accept(env)
    run(env)
    ask(env, "shipped")
    run(env)
    assert env.store.jobs.get("J-1").status == states.CLEAN_UP
    assert os.listdir(hot(env)) == [FINAL]  # shipped: left for the RIP
    spoil_source(env)
    ask(env, "reopen")
    run(env)
    job = env.store.jobs.get("J-1")
    assert job.status == states.VALIDATION_FAILED
    assert os.listdir(hot(env)) == []
    assert env.store.jobs.history("J-1")[-1].message.endswith(
        f"; withdrawn from rip1:{hot(env) / FINAL}")
    ask(env, "cancelled")
    run(env)
    assert env.store.jobs.get("J-1").status == states.CLEAN_UP
    assert os.listdir(hot(env)) == []


def test_a_reopened_cancelled_job_is_live_again_and_can_be_cancelled_again(env: Services):
    accept(env)
    run(env)
    ask(env, "cancelled")
    run(env)
    assert env.store.jobs.get("J-1").cancelled
    assert os.listdir(hot(env)) == []
    ask(env, "reopen")
    run(env)
    job = env.store.jobs.get("J-1")
    assert job.status == states.IN_HOT_FOLDER and not job.cancelled
    assert os.listdir(hot(env)) == [FINAL]
    ask(env, "cancelled")  # recorded, not "already so"
    run(env)
    job = env.store.jobs.get("J-1")
    assert job.status == states.CLEAN_UP and job.cancelled
    assert os.listdir(hot(env)) == []


def test_an_approval_given_while_held_takes_effect_on_release(env: Services):
    accept(env, approval="AwaitingApproval")
    run(env)
    assert env.store.jobs.get("J-1").status == states.UNAPPROVED_ORDER
    ask(env, "hold")
    run(env)
    ask(env, "approved")  # noted; the hold stands
    run(env)
    job = env.store.jobs.get("J-1")
    assert job.status == states.BLOCKED and job.approval == "Approved"
    ask(env, "release")
    run(env)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER
    statuses = [h.status for h in env.store.jobs.history("J-1")]
    assert statuses[statuses.index(states.BLOCKED):][:3] == [
        states.BLOCKED, states.APPROVED, states.APPROVED]  # the note, then the release


def test_a_job_held_unapproved_is_released_unapproved_without_an_approval(env: Services):
    accept(env, approval="AwaitingApproval", payment_status="Pending")
    run(env)
    ask(env, "hold")
    ask(env, "paid")  # noted while held: payment is not approval
    run(env)
    ask(env, "release")
    run(env)
    job = env.store.jobs.get("J-1")
    assert job.status == states.UNAPPROVED_ORDER and job.payment_status == "Paid"
    again = record_event(env.store, env.layout, Caller.local("alice"), ["J-1"], "paid")
    assert again.already == ["J-1"]
    ask(env, "approved")
    run(env)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER


def test_a_file_taken_back_and_delivered_again_is_not_taken_by_the_rip(tmp_path: Path):
    """With watch_pickup, the removal of the old file by a recreate is not the RIP taking
    the new one, however late the watcher hears of it."""
    folder = ('[hotfolders.rip1]\nkind = "local"\npath = "hot/rip1"\n'
              'filename = "{order_id}_{job_id}_{sku}_q{quantity}.pdf"\nwatch_pickup = true\n')
    env = helpers.services(write_config(tmp_path, hotfolders=folder))
    took, hears = threading.Event(), threading.Event()

    class Late(PickupWatcher):
        """Hears of a removal only once `hears` is set (a busy machine)."""

        def on_deleted(self, event: FileSystemEvent) -> None:
            hears.wait(20)
            super().on_deleted(event)

    watcher = Late(env.store, env.config.hotfolders, took.set)
    try:
        accept(env)
        make_pdf(env.layout.intake / "J-2" / "a.pdf", label="second")
        ticket = env.layout.intake / "J-2.json"
        ticket.write_text(json.dumps(job_ticket("J-2", ["J-2/a.pdf"], order_id="5002")))
        assert Intake(env.store, env.layout, "n").handle(ticket).result == "accepted"
        run(env)
        watcher.start()
        ask(env, "recreate")
        run(env)
        assert delivered(env) == 2
        hears.set()
        # The RIP takes J-2's file: heard after the recreate's removal of J-1's old one.
        (hot(env) / "5002_J-2_FLYER-A5_q250.pdf").unlink()
        deadline = time.monotonic() + 20
        while not env.store.events.pending("J-2"):
            assert time.monotonic() < deadline, "the watcher did not hear the RIP take J-2"
            took.wait(0.1)
        assert [e.event for e in env.store.events.pending("J-2")] == ["picked_up"]
        assert env.store.events.pending("J-1") == []
        assert os.listdir(hot(env)) == [FINAL]
    finally:
        hears.set()
        watcher.stop()
        env.store.close()
