"""Two jobs whose hot folder filename template gives one name: the second never replaces
the first's file; it fails, is retried with back-off, and lands once the name is free."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from outputd import states
from outputd.daemon.worker import Services
from outputd.intake.accept import Intake
from tests import helpers
from tests.helpers import job_ticket, make_pdf, write_config

NAME = "300_FLYER-A5_q250.pdf"  # what both jobs of order 300 are called in rip1


@pytest.fixture
def env(tmp_path: Path):
    hotfolders = ('[hotfolders.rip1]\nkind = "local"\npath = "hot/rip1"\n'
                  'filename = "{order_id}_{sku}_q{quantity}.pdf"\n')
    services = helpers.services(write_config(tmp_path, hotfolders=hotfolders))
    yield services
    services.store.close()


def accept(env: Services, job_id: str) -> bytes:
    """A job of order 300 whose PDF is its own (its bytes differ from any other's)."""
    pdf = make_pdf(env.layout.intake / job_id / "a.pdf", label=job_id)
    ticket = env.layout.intake / f"{job_id}.json"
    ticket.write_text(json.dumps(job_ticket(job_id, [f"{job_id}/a.pdf"], order_id="300")))
    data = pdf.read_bytes()
    assert Intake(env.store, env.layout, "n").handle(ticket).result == "accepted"
    return data


def test_the_second_job_to_one_name_fails_and_the_first_file_stays(env: Services):
    first = accept(env, "J-1")
    helpers.run_jobs(env)
    second = accept(env, "J-2")
    assert first != second
    before = time.time()
    helpers.run_jobs(env)
    hot = Path(env.config.hotfolders["rip1"].path)

    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER
    assert os.listdir(hot) == [NAME]
    assert (hot / NAME).read_bytes() == first  # intact: J-2 did not replace it
    job = env.store.jobs.get("J-2")
    assert job.status == states.COPY_FAILED
    delivery = env.store.deliveries.of("J-2")[0]
    reason = (f"job J-2: hot folder rip1: {hot / NAME} already holds another file; "
              "outputd never replaces a file it did not put there for this job")
    assert delivery.state == states.DELIVERY_FAILED and delivery.error == reason
    assert env.store.jobs.history("J-2")[-1].message == f"rip1: {reason}"
    assert not delivery.permanent  # retried with back-off: the RIP may take the file
    assert job.due_at is not None and job.due_at >= before + env.config.retry.initial_s - 0.01

    # Cancelling the first job takes its own file back: not "already taken by the RIP".
    env.store.events.add(["J-1"], "cancelled", "shop", "")
    helpers.run_jobs(env)
    assert "withdrawn from rip1" in env.store.jobs.history("J-1")[-1].message
    assert os.listdir(hot) == []

    # The name is free now: the second job's retry delivers its own bytes.
    time.sleep(max(0.0, env.store.jobs.get("J-2").due_at - time.time()) + 0.01)
    helpers.run_jobs(env)
    assert env.store.jobs.get("J-2").status == states.IN_HOT_FOLDER
    assert (hot / NAME).read_bytes() == second
    assert env.store.deliveries.of("J-2")[0].attempts == 2


def test_a_recreated_job_with_new_bytes_takes_its_own_old_file_back(env: Services):
    first = accept(env, "J-1")
    helpers.run_jobs(env)
    make_pdf(env.layout.source_file("J-1", "J-1/a.pdf"), label="J-1 corrected")
    env.store.events.add(["J-1"], "recreate", "alice", "")
    helpers.run_jobs(env)
    hot = Path(env.config.hotfolders["rip1"].path)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER
    assert os.listdir(hot) == [NAME]
    assert (hot / NAME).read_bytes() != first
