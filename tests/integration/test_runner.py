"""The pipeline in-process: a job through its stages against real folders and SQLite."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from outputd import states
from outputd.daemon.worker import Services
from outputd.errors import DeliveryError
from outputd.intake.accept import Intake
from outputd.transports.memory import MemoryTransport
from tests import helpers
from tests.helpers import job_ticket, make_pdf, write_config


@pytest.fixture
def env(tmp_path: Path):
    services = helpers.services(write_config(tmp_path))
    yield services
    services.store.close()


def accept(env: Services, job_id: str, **changes) -> Path:
    make_pdf(env.layout.intake / job_id / "a.pdf")
    ticket = env.layout.intake / f"{job_id}.json"
    ticket.write_text(json.dumps(job_ticket(job_id, [f"{job_id}/a.pdf"], **changes)))
    assert Intake(env.store, env.layout, "n").handle(ticket).result == "accepted"
    return env.layout.source_file(job_id, f"{job_id}/a.pdf")


run = helpers.run_jobs


def test_a_crash_after_the_rename_before_the_commit_leaves_one_copy(env: Services):
    source = accept(env, "J-1")
    hot = Path(env.config.hotfolders["rip1"].path)
    hot.mkdir(parents=True)
    # The previous life renamed the file into place, then died before recording it.
    (hot / "5001_J-1_FLYER-A5_q250.pdf").write_bytes(source.read_bytes())
    run(env)
    job = env.store.jobs.get("J-1")
    assert job.status == states.IN_HOT_FOLDER
    assert os.listdir(hot) == ["5001_J-1_FLYER-A5_q250.pdf"]


def test_a_failed_delivery_is_retried_with_back_off_then_succeeds(env: Services):
    accept(env, "J-1")
    hot = Path(env.config.hotfolders["rip1"].path)
    hot.parent.mkdir(parents=True)
    hot.write_text("the share is not mounted")  # a file where the folder should be
    run(env)
    job = env.store.jobs.get("J-1")
    assert job.status == states.COPY_FAILED
    delivery = env.store.deliveries.of("J-1")[0]
    assert "not a folder" in delivery.error
    assert delivery.permanent and job.due_at is None  # waits for an operator
    hot.unlink()
    env.store.events.add(["J-1"], "retry", "alice", "")
    run(env)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER
    statuses = [h.status for h in env.store.jobs.history("J-1")]
    assert statuses[-3:] == [states.COPY_FAILED, states.OUTPUT_CREATED, states.IN_HOT_FOLDER]


def flaky(failures: int) -> MemoryTransport:
    """A hot folder that refuses its first `failures` puts, the way one that is down does."""
    return MemoryTransport("rip1", [DeliveryError("connection refused")] * failures)


def test_a_transient_failure_is_retried_at_the_back_off_time(env: Services):
    hot = flaky(2)
    env.runtime.transports._transports["rip1"] = hot
    accept(env, "J-1")
    before = time.time()
    run(env)
    job = env.store.jobs.get("J-1")
    assert job.status == states.COPY_FAILED
    initial = env.config.retry.initial_s
    assert before + initial - 0.01 <= job.due_at <= time.time() + initial
    delivery = env.store.deliveries.of("J-1")[0]
    assert (delivery.attempts, delivery.error, delivery.permanent) == (
        1, "connection refused", False)
    run(env)
    assert hot.puts == 1  # not due yet: no retry storm
    time.sleep(job.due_at - time.time() + 0.01)
    run(env)
    assert env.store.deliveries.of("J-1")[0].attempts == 2
    time.sleep(env.store.jobs.get("J-1").due_at - time.time() + 0.01)
    run(env)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER
    assert hot.puts == 3 and hot.writes == 1
    assert list(hot.files) == ["5001_J-1_FLYER-A5_q250.pdf"]


def test_static_output_is_the_source_untouched(env: Services):
    source = accept(env, "J-1")
    run(env)
    output = env.store.deliveries.outputs("J-1")[0]
    assert output.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert output.pages == 2
    assert Path(output.path).read_bytes() == source.read_bytes()


def test_test_mode_jobs_are_skipped_by_route(env: Services):
    accept(env, "J-1", test_mode=True)
    run(env)
    job = env.store.jobs.get("J-1")
    assert job.status == states.COPY_SKIPPED
    assert "skip" in env.store.jobs.history("J-1")[-1].message


def test_an_unpaid_job_waits_and_paid_releases_it(env: Services):
    accept(env, "J-1", payment_status="Pending")
    run(env)
    assert env.store.jobs.get("J-1").status == states.ORDERED
    assert env.store.jobs.get("J-1").due_at is None
    env.store.events.add(["J-1"], "paid", "shop", "")
    run(env)
    job = env.store.jobs.get("J-1")
    assert job.status == states.IN_HOT_FOLDER and job.payment_status == "Paid"


def test_a_node_taking_over_rebuilds_the_working_folder(env: Services):
    accept(env, "J-1")
    env.runtime.transports._transports["rip1"] = flaky(1)
    run(env)
    assert env.store.jobs.get("J-1").status == states.COPY_FAILED
    env.layout.clear_work("J-1")  # as seen from another node: no working folder here
    time.sleep(env.store.jobs.get("J-1").due_at - time.time() + 0.01)
    run(env)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER
    assert Path(env.store.deliveries.outputs("J-1")[0].path).exists()


def test_shipping_before_delivery_drops_it_and_its_temp_file(env: Services):
    accept(env, "J-1")
    env.store.hotfolders.set_paused("rip1", True)
    run(env)
    assert env.store.deliveries.of("J-1")[0].state == "pending"
    hot = Path(env.config.hotfolders["rip1"].path)
    hot.mkdir(parents=True, exist_ok=True)
    stale = hot / ".5001_J-1_FLYER-A5_q250.pdf.part"
    stale.write_bytes(b"%PDF- half a copy")  # as a copy cut short by a crash leaves it
    env.store.events.add(["J-1"], "shipped", "shop", "")
    run(env)
    job = env.store.jobs.get("J-1")
    assert job.status == states.CLEAN_UP
    assert env.store.jobs.history("J-1")[-1].message == (
        "working folder cleared; not delivered to rip1")
    delivery = env.store.deliveries.of("J-1")[0]
    assert delivery.state == "skipped" and delivery.error == "Shipped before delivery"
    assert not stale.exists()


def test_a_static_job_takes_one_transaction_per_stage(env: Services, monkeypatch):
    """store → stage → store: from the intake to InHotFolder, one transaction to take the
    job in, one to claim it, one per stage (each status change, and the delivery plan),
    one to release it. Fails if a stage writes the store on its own again."""
    opened = []
    real = env.store.engine.transaction

    def counted():
        opened.append(1)
        return real()

    monkeypatch.setattr(env.store.engine, "transaction", counted)
    accept(env, "J-1")
    assert len(opened) == 1  # the job and its first history entry
    run(env)
    history = [h.status for h in env.store.jobs.history("J-1")]
    assert history == [states.ORDERED, states.VALIDATION_FINISHED,
                       states.OUTPUT_CREATION_STARTED, states.OUTPUT_CREATED,
                       states.IN_HOT_FOLDER]
    stages = len(history) - 1 + 1  # each status change, and the delivery plan before
    # any file is sent (where files may have gone is known, should outputd stop)
    # intake, claim, the stages, release, and run()'s last claim that finds nothing
    assert len(opened) == 1 + 1 + stages + 1 + 1


def test_a_cancelled_job_takes_back_a_file_delivered_but_not_yet_recorded(env: Services):
    """A crash after the rename into the hot folder, before the stage's commit, leaves a
    delivery pending whose file is there; a cancel then must still take it back."""
    source = accept(env, "J-1")
    env.store.hotfolders.set_paused("rip1", True)
    run(env)
    assert env.store.deliveries.of("J-1")[0].state == "pending"
    hot = Path(env.config.hotfolders["rip1"].path)
    hot.mkdir(parents=True, exist_ok=True)
    (hot / "5001_J-1_FLYER-A5_q250.pdf").write_bytes(source.read_bytes())
    (hot / "5002_J-9_OTHER_q1.pdf").write_bytes(b"%PDF- another job's")
    env.store.events.add(["J-1"], "cancelled", "shop", "")
    run(env)
    assert env.store.jobs.get("J-1").status == states.CLEAN_UP
    assert os.listdir(hot) == ["5002_J-9_OTHER_q1.pdf"]
    assert env.store.deliveries.of("J-1")[0].state == "withdrawn"
    assert "withdrawn from rip1" in env.store.jobs.history("J-1")[-1].message


def test_a_shipped_job_records_a_file_delivered_but_not_yet_recorded(env: Services):
    """A stop after the rename into the hot folder, before the stage's commit, then the
    order ships: the file is there, so the delivery is recorded as made, not skipped."""
    source = accept(env, "J-1")
    env.store.hotfolders.set_paused("rip1", True)
    run(env)
    hot = Path(env.config.hotfolders["rip1"].path)
    hot.mkdir(parents=True, exist_ok=True)
    (hot / "5001_J-1_FLYER-A5_q250.pdf").write_bytes(source.read_bytes())
    env.store.events.add(["J-1"], "shipped", "shop", "")
    run(env)
    assert env.store.jobs.get("J-1").status == states.CLEAN_UP
    assert env.store.deliveries.of("J-1")[0].state == "delivered"
    assert env.store.jobs.history("J-1")[-1].message == "working folder cleared"
    assert os.listdir(hot) == ["5001_J-1_FLYER-A5_q250.pdf"]


def test_a_clean_static_file_placed_again_leaves_no_temp_link(env: Services):
    """A stop after the output was linked into place, before it was recorded: placing
    it again finds the same file there (rename does nothing then) and leaves no temp."""
    source = accept(env, "J-1")
    out = env.layout.outputs("J-1")
    out.mkdir(parents=True)
    os.link(source, out / "J-1.pdf")  # the earlier try's output
    run(env)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER
    assert sorted(os.listdir(out)) == ["J-1.pdf"]


def test_a_verified_job_waiting_for_a_paused_hot_folder_goes_on_when_it_resumes(
        tmp_path: Path):
    """A proof verified while its hot folder is paused waits in Verified; resuming the
    hot folder wakes it like a job waiting in OutputCreated."""
    routes = '[[routes]]\nmatch = {}\nto = ["rip1"]\ncheckpoint = true\n'
    env = helpers.services(write_config(tmp_path, routes=routes))
    try:
        accept(env, "J-1")
        run(env)
        assert env.store.jobs.get("J-1").status == states.AWAITING_PROOF
        env.store.hotfolders.set_paused("rip1", True)
        env.store.events.add(["J-1"], "verified", "alice", "")
        run(env)
        job = env.store.jobs.get("J-1")
        assert (job.status, job.due_at) == (states.VERIFIED, None)
        assert [d.state for d in env.store.deliveries.of("J-1")] == ["pending"]
        assert env.store.deliveries.waiting_for("rip1") == 1
        env.store.hotfolders.set_paused("rip1", False)
        env.store.hotfolders.wake("rip1")
        run(env)
        assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER
        assert [d.state for d in env.store.deliveries.of("J-1")] == ["delivered"]
    finally:
        env.store.close()


class _ResumingWhilePutting(MemoryTransport):
    """A hot folder during whose copy another hot folder is resumed (an operator's
    `outputd resume` while a large file goes out)."""

    def __init__(self, name: str, resume: Callable[[], None]) -> None:
        super().__init__(name)
        self.resume = resume

    def put(self, source: Path, final_name: str, **kwargs: Any) -> str:
        self.resume()
        return super().put(source, final_name, **kwargs)


def test_resuming_a_hot_folder_during_a_copy_to_another_loses_no_wake_up(tmp_path: Path):
    """The stage read the paused hot folders before the resume; the wake-up the resume
    gave the job must outlive the stage's own result (which found nothing more due)."""
    hotfolders = "".join(
        f'[hotfolders.{name}]\nkind = "local"\npath = "hot/{name}"\n'
        'filename = "{job_id}.pdf"\n\n' for name in ("rip1", "rip2"))
    routes = '[[routes]]\nmatch = {}\nto = ["rip1", "rip2"]\n'
    env = helpers.services(write_config(tmp_path, hotfolders=hotfolders, routes=routes))
    try:
        def resume() -> None:
            env.store.hotfolders.set_paused("rip2", False)
            env.store.hotfolders.wake("rip2")

        env.runtime.transports._transports["rip1"] = _ResumingWhilePutting("rip1", resume)
        env.runtime.transports._transports["rip2"] = MemoryTransport("rip2")
        env.store.hotfolders.set_paused("rip2", True)
        accept(env, "J-1")
        run(env)
        job = env.store.jobs.get("J-1")
        assert job.status == states.IN_HOT_FOLDER, (job.status, job.due_at)
        assert {d.hotfolder: d.state for d in env.store.deliveries.of("J-1")} == {
            "rip1": "delivered", "rip2": "delivered"}
    finally:
        env.store.close()


def test_a_cancelled_job_takes_back_its_file_from_where_it_went_before_a_reload(
        env: Services, tmp_path: Path):
    """A reload moved the hot folder (its path and filename changed): the file delivered
    before is withdrawn from where it was delivered, not looked for in the new place
    and said to be taken by the RIP."""
    from outputd.config import load_config
    from outputd.daemon.worker import Runtime

    accept(env, "J-1")
    run(env)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER
    old = Path(env.config.hotfolders["rip1"].path)
    delivered = old / "5001_J-1_FLYER-A5_q250.pdf"
    assert env.store.deliveries.of("J-1")[0].path == str(delivered)
    moved = '[hotfolders.rip1]\nkind = "local"\npath = "hot/rip1-new"\nfilename = "{job_id}.pdf"\n'
    env.runtime = Runtime.build(
        load_config(write_config(tmp_path, hotfolders=moved)), env.runtime)
    env.store.events.add(["J-1"], "cancelled", "shop", "")
    run(env)
    assert env.store.jobs.get("J-1").status == states.CLEAN_UP
    assert not delivered.exists()
    assert env.store.deliveries.of("J-1")[0].state == "withdrawn"
    message = env.store.jobs.history("J-1")[-1].message
    assert f"withdrawn from rip1:{delivered}" in message and "taken" not in message


def test_a_cancelled_job_whose_file_cannot_be_reached_says_so(env: Services,
                                                               tmp_path: Path):
    """The folder a file was delivered to is a link now: outputd does not follow it, and
    the history says the file could not be withdrawn, not that the RIP took it."""
    accept(env, "J-1")
    run(env)
    old = Path(env.config.hotfolders["rip1"].path)
    elsewhere = tmp_path / "elsewhere"
    old.rename(elsewhere)
    old.symlink_to(elsewhere)
    env.store.events.add(["J-1"], "cancelled", "shop", "")
    run(env)
    assert env.store.jobs.get("J-1").status == states.CLEAN_UP
    assert (elsewhere / "5001_J-1_FLYER-A5_q250.pdf").exists()
    assert env.store.deliveries.of("J-1")[0].state == "delivered"
    message = env.store.jobs.history("J-1")[-1].message
    assert "could not be withdrawn, remove by hand: rip1:" in message
    assert "taken" not in message
