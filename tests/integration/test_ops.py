"""The operations against a real SQLite store and folders: what a limited caller can see
and do, through the same functions the CLI (and the API) call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from outputd.config import load_config
from outputd.errors import RequestRefused, UnknownJob
from outputd.intake.accept import Intake
from outputd.layout import Layout
from outputd.model import JobFilter
from outputd.ops import events, jobs
from outputd.ops.access import OPERATOR, SUBMITTER, Caller, Forbidden
from outputd.store import open_store
from tests.helpers import job_ticket, make_pdf, write_config


@pytest.fixture
def shop(tmp_path: Path):
    config = load_config(write_config(tmp_path))
    layout = Layout(config)
    layout.create()
    store = open_store(config.store.url)
    intake = Intake(store, layout, "node-a")
    for job_id, storefront in (("A-1", "alpha"), ("A-2", "alpha"), ("B-1", "beta")):
        make_pdf(layout.intake / job_id / "a.pdf")
        ticket = job_ticket(job_id, [f"{job_id}/a.pdf"], storefront=storefront,
                            order_id=f"O-{job_id}")
        (layout.intake / f"{job_id}.json").write_text(json.dumps(ticket))
        assert intake.handle(layout.intake / f"{job_id}.json").result == "accepted"
    yield store, layout, intake
    store.close()


def test_a_limited_operator_sees_and_acts_on_its_storefront_only(shop):
    store, layout, _ = shop
    alpha = Caller("ann", OPERATOR, frozenset({"alpha"}))
    bodies, total = jobs.search(store, alpha, JobFilter(limit=10))
    assert sorted(b["job_id"] for b in bodies) == ["A-1", "A-2"] and total == 2
    assert jobs.show(store, alpha, "A-1")["storefront"] == "alpha"
    with pytest.raises(UnknownJob):
        jobs.show(store, alpha, "B-1")
    with pytest.raises(UnknownJob):
        events.target_jobs(store, alpha, "B-1", None)
    with pytest.raises(RequestRefused, match="no jobs for order O-B-1"):
        events.target_jobs(store, alpha, None, "O-B-1")
    done = events.record_event(store, layout, alpha, ["A-1"], "hold")
    assert done.jobs == ["A-1"]
    assert store.events.pending("A-1")[0].by == "ann"
    with pytest.raises(UnknownJob):
        events.record_event(store, layout, alpha, ["B-1"], "hold")
    assert store.events.pending("B-1") == []


def test_a_role_that_may_not_is_refused_before_anything_is_recorded(shop):
    store, layout, intake = shop
    operator = Caller("ann", OPERATOR)
    with pytest.raises(Forbidden, match="may not record approved"):
        events.record_event(store, layout, operator, ["A-1"], "approved")
    with pytest.raises(Forbidden, match="may not pause"):
        events.pause(store, Caller("mis", SUBMITTER), "rip1", ["rip1"], True)
    assert store.events.pending("A-1") == [] and store.hotfolders.paused() == set()
    ticket = json.dumps(job_ticket("B-2", ["B-2/a.pdf"], storefront="beta")).encode()
    with pytest.raises(Forbidden, match="may not act for storefront beta"):
        intake.submit(ticket, Caller("shop-a", SUBMITTER, frozenset({"alpha"})))
    assert store.jobs.find("B-2") is None
