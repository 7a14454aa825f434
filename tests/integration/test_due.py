"""A job is due exactly when a stage can do something for it: every status, every event,
against the real store and worker (the stall of two station scans, and its kin)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from outputd import states
from outputd.daemon.worker import Services, Worker
from outputd.intake.accept import Intake
from outputd.model import BY_DAEMON, JobFilter
from outputd.pipeline.stages import STAGES
from outputd.store import open_store
from outputd.tickets import JobTicket, parse_ticket
from tests import helpers
from tests.helpers import job_ticket, write_config

# Every request a person, a station or the storefront may make (DESIGN §4, §8, §15).
REQUESTS = (*states.EVENTS, "retry")


@pytest.fixture
def env(tmp_path: Path):
    services = helpers.services(write_config(tmp_path))
    yield services
    services.store.close()


def place(env: Services, job_id: str, status: str, **ticket: object) -> None:
    """A job put straight into `status`, asked to be looked at now."""
    body = json.dumps(job_ticket(job_id, [f"{job_id}/a.pdf"], **ticket)).encode()
    ticket = parse_ticket(body)
    assert isinstance(ticket, JobTicket)
    env.store.jobs.add(ticket, hashlib.sha256(body).hexdigest(),
                       status, "placed by the test", BY_DAEMON, due_at=time.time())


def due(env: Services, job_id: str) -> float | None:
    return env.store.jobs.get(job_id).due_at


def test_the_stage_table_covers_exactly_the_statuses_that_are_worked():
    assert STAGES.keys() == states.WORKED
    assert states.WORKED | states.RESTING == states.ALL
    assert not states.WORKED & states.RESTING
    assert states.STATION_STATUSES <= states.RESTING
    assert {states.BLOCKED, states.UNAPPROVED_ORDER, states.READY_FOR_COLLECTION,
            states.AWAITING_PROOF, states.IN_HOT_FOLDER} <= states.RESTING


@pytest.mark.parametrize("status", sorted(states.ALL))
def test_a_job_placed_in_any_status_is_due_only_where_a_stage_works(env: Services, status):
    place(env, "J-1", status)
    assert (due(env, "J-1") is not None) == (status in states.WORKED)
    claimed = env.store.claims.take("n", 30)
    assert (claimed is not None) == (status in states.WORKED)


@pytest.mark.parametrize("status", sorted(states.ALL))
def test_every_event_leaves_the_job_due_exactly_when_a_stage_can_work_it(
        env: Services, status):
    worker = Worker(env)
    for number, event in enumerate(REQUESTS):
        job_id = f"J-{number}"
        place(env, job_id, status)
        job = env.store.jobs.get(job_id)
        env.store.events.add([job_id], event, "tester", f"{event} by the walk")
        applied = env.store.events.pending(job_id)[0]
        saved = env.store.jobs.save(job, worker._apply(job, applied))
        now = env.store.jobs.get(job_id)
        assert now.status == saved.status
        assert (now.due_at is not None) == (now.status in states.WORKED), (
            f"{status} + {event} → {now.status} with due_at {now.due_at}")
        assert not env.store.events.pending(job_id)  # applied or refused, never left


def test_two_station_scans_leave_the_queue_free_for_new_jobs(env: Services):
    for job_id in ("J-A", "J-B"):
        helpers.make_pdf(env.layout.intake / job_id / "a.pdf")
        (env.layout.intake / f"{job_id}.json").write_text(
            json.dumps(job_ticket(job_id, [f"{job_id}/a.pdf"])))
        assert Intake(env.store, env.layout, "n").handle(
            env.layout.intake / f"{job_id}.json").result == "accepted"
    helpers.run_jobs(env)
    for job_id, station in (("J-A", "printed"), ("J-B", "ready_for_collection")):
        assert env.store.jobs.get(job_id).status == states.IN_HOT_FOLDER
        env.store.events.add([job_id], station, "cutter", "scanned")
    helpers.run_jobs(env)
    assert env.store.jobs.get("J-A").status == states.PRINTED
    assert env.store.jobs.get("J-B").status == states.READY_FOR_COLLECTION
    assert env.store.claims.take("n", 30) is None  # nothing to do: nothing claimed
    assert env.store.jobs.next_due() is None


def test_hold_then_release_back_to_unapproved_rests_the_job(env: Services):
    place(env, "J-1", states.ORDERED, approval="AwaitingApproval", payment_status="Pending")
    helpers.run_jobs(env)
    assert env.store.jobs.get("J-1").status == states.UNAPPROVED_ORDER
    for event in ("hold", "release"):
        env.store.events.add(["J-1"], event, "operator", event)
        helpers.run_jobs(env)
    job = env.store.jobs.get("J-1")
    assert (job.status, job.due_at) == (states.UNAPPROVED_ORDER, None)
    assert env.store.claims.take("n", 30) is None


def _claim_log_rows(env: Services) -> int:
    with env.store.engine.reader() as cur:
        return int(cur.execute("SELECT COUNT(*) FROM claim_log").fetchone()[0])


def test_a_claim_that_did_nothing_leaves_no_claim_log_row_and_is_counted(
        env: Services, caplog):
    place(env, "J-1", states.PRINTED)
    with env.store.engine.transaction() as cur:  # a due time the store no longer writes
        cur.execute("UPDATE jobs SET due_at = ? WHERE job_id = 'J-1'", (time.time(),))
    worker = Worker(env)
    job = env.store.claims.take("n", 30)
    assert job is not None and _claim_log_rows(env) == 1
    assert worker.process(job) is False
    worker.work(job, "n")
    assert _claim_log_rows(env) == 0
    assert "job.idle_claim" in caplog.text and due(env, "J-1") is None  # said, and mended
    # a claim that worked stays in the log, released
    place(env, "J-2", states.ORDERED, payment_status="Pending")
    job = env.store.claims.take("n", 30)
    assert job is not None and job.job_id == "J-2"
    worker.work(job, "n")
    assert due(env, "J-2") is None  # waits for payment
    with env.store.engine.reader() as cur:
        rows = cur.execute("SELECT job_id, released_at FROM claim_log").fetchall()
    assert [r[0] for r in rows] == ["J-2"] and rows[0][1] is not None


def test_the_claim_log_does_not_grow_while_jobs_rest(env: Services):
    """Jobs resting everywhere a job rests, each with a due time as an old store left
    them: each is claimed once, for nothing, leaves no row, and is never claimed again."""
    for number, status in enumerate(sorted(states.RESTING)):
        place(env, f"J-{number}", status)
    with env.store.engine.transaction() as cur:
        cur.execute("UPDATE jobs SET due_at = ?", (time.time(),))
    helpers.run_jobs(env)
    assert _claim_log_rows(env) == 0
    assert all(job.due_at is None for job in env.store.jobs.matching(JobFilter()))
    for _ in range(50):
        assert env.store.claims.take("n", 30) is None


def test_a_store_written_before_the_rule_is_mended_at_open(tmp_path: Path):
    config = write_config(tmp_path)
    env = helpers.services(config)
    place(env, "J-1", states.ORDERED)
    place(env, "J-2", states.PRINTED)
    with env.store.engine.transaction() as cur:  # as the old daemon left it
        cur.execute("UPDATE jobs SET due_at = 1 WHERE job_id = 'J-2'")
        cur.execute("DELETE FROM schema_version WHERE version = "
                    "(SELECT MAX(version) FROM schema_version)")
    url = env.config.store.url
    env.store.close()
    store = open_store(url)
    try:
        assert store.jobs.get("J-2").due_at is None
        assert store.jobs.get("J-1").due_at is not None
    finally:
        store.close()
