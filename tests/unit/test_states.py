from __future__ import annotations

import pytest

from outputd import states
from outputd.errors import TransitionRefused


def test_the_happy_path_is_allowed_step_by_step():
    path = [states.ORDERED, states.VALIDATION_FINISHED, states.OUTPUT_CREATION_STARTED,
            states.OUTPUT_CREATED, states.IN_HOT_FOLDER, states.SHIPPED, states.CLEAN_UP,
            states.REOPENED, states.VALIDATION_FINISHED]
    for current, new in zip(path, path[1:], strict=False):
        states.check("J-1", current, new)


@pytest.mark.parametrize(("current", "new"), [
    (states.ORDERED, states.IN_HOT_FOLDER),            # no skipping preflight
    (states.VALIDATION_FAILED, states.OUTPUT_CREATED),
    (states.REJECTED, states.VALIDATION_FINISHED),     # a rejected job never proceeds
    (states.IN_HOT_FOLDER, states.BLOCKED),            # only waiting jobs can be held
    (states.OUTPUT_CREATION_STARTED, states.BLOCKED),  # never mid-work
    (states.CLEAN_UP, states.VALIDATION_FINISHED),
    (states.IN_HOT_FOLDER, states.APPROVED),
])
def test_forbidden_transitions_are_refused_with_the_job_named(current, new):
    assert not states.allowed(current, new)
    with pytest.raises(TransitionRefused, match=f"job J-7 cannot go from {current} to {new}"):
        states.check("J-7", current, new)


def test_every_status_can_finish_the_order_and_every_table_entry_is_a_known_status():
    for status in states.ALL:
        assert states.allowed(status, states.SHIPPED)
        assert states.allowed(status, states.CANCELLED)
        assert states.TRANSITIONS[status] <= states.ALL


def test_groups_are_consistent():
    assert states.GATE <= states.HOLDABLE
    assert not (states.GATE & states.RESTING)
    for failed, resume in states.RETRY_FROM.items():
        assert states.allowed(failed, resume)


def test_stations_follow_delivery_in_any_order_until_clean_up():
    delivered = (states.IN_HOT_FOLDER, states.IN_PRODUCTION, *states.STATION_STATUSES)
    for current in delivered:
        for station in states.STATION_STATUSES - {current}:
            assert states.allowed(current, station), (current, station)
        assert states.allowed(current, states.SHIPPED)
    for current in (states.ORDERED, states.OUTPUT_CREATED, states.COPY_FAILED,
                    states.CLEAN_UP, states.SHIPPED, states.BLOCKED):
        for station in states.STATION_STATUSES:
            assert not states.allowed(current, station), (current, station)
    assert states.STATION_STATUSES <= states.RESTING  # the daemon has nothing to do there
