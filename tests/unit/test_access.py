"""Who may do what (DESIGN §11): the one check the CLI, the intake and the API share."""

from __future__ import annotations

import json

import pytest

from outputd import states
from outputd.errors import UnknownJob
from outputd.model import Job
from outputd.ops.access import ADMIN, APPROVER, OPERATOR, SUBMITTER, VIEWER, Caller, Forbidden
from tests.helpers import job_ticket


def job(storefront: str) -> Job:
    text = json.dumps(job_ticket("J-1", ["J-1/a.pdf"], storefront=storefront))
    return Job("J-1", text, states.ORDERED, "Paid", "NotRequired", False, 0.0, 0.0)


@pytest.mark.parametrize(("role", "allowed", "refused"), [
    (ADMIN, ["submit", "event:approved", "event:hold", "pause", "clear_test_data",
             "accounts"], []),
    (OPERATOR, ["event:shipped", "event:retry", "event:hold", "event:recreate", "pause",
                "download"], ["event:approved", "event:rejected", "submit",
                              "clear_test_data", "accounts"]),
    (APPROVER, ["event:approved", "event:rejected", "download"],
     ["event:shipped", "event:retry", "pause", "submit"]),
    (VIEWER, ["download"], ["event:paid", "event:approved", "pause", "submit"]),
    (SUBMITTER, ["submit", "event:paid", "event:approved", "event:cancelled",
                 "event:completed"], ["event:hold", "event:retry", "event:recreate", "pause",
                                      "download"]),
])
def test_each_role_may_do_what_design_says_and_no_more(role, allowed, refused):
    caller = Caller("who", role)
    for action in allowed:
        caller.require(action)
    for action in refused:
        with pytest.raises(Forbidden, match=f"who \\({role}\\) may not"):
            caller.require(action)


def test_a_limited_caller_finds_no_job_of_another_storefront():
    caller = Caller("shop-a", OPERATOR, frozenset({"alpha"}))
    assert caller.visible(job("alpha")).job_id == "J-1"
    with pytest.raises(UnknownJob, match="there is no job J-1"):
        caller.visible(job("beta"))  # not found, never forbidden: nothing leaks
    with pytest.raises(Forbidden, match="may not act for storefront beta"):
        caller.require("event:shipped", "beta")
    assert caller.only_visible([("alpha", "J-1"), ("beta", "J-2")]) == [("alpha", "J-1")]


def test_the_cli_has_every_right_and_the_intake_its_tickets_storefront():
    local = Caller.local("alice")
    local.require("clear_test_data", "any")
    assert local.visible(job("beta")).job_id == "J-1"
    intake = Caller.intake("outputd", "alpha")
    intake.require("event:hold", "alpha")
    with pytest.raises(UnknownJob):
        intake.visible(job("beta"))
    assert Caller.intake("outputd", None).sees("beta")  # an event ticket naming its job
