"""The client checkers stay linear in a big fleet: a commit meets only the
clients of its assignee, not every client (a run of 9,808 clients and
232,000 events took 139 s in ``delivery`` when it did; 1.9 s now).

Cost is counted in calls (Python and C functions, ``sys.setprofile``), not
time: the same input makes the same calls on any machine."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest
from checks_support import fleet_history

from harness.checks import CHECKERS, CheckResult, catch_up, delivery
from harness.history import History

SMALL, LARGE = 100, 400  # clients


def _calls(check: Callable[[History], CheckResult], history: History) -> int:
    made = 0

    def profile(_frame: FrameType, event: str, _arg: Any) -> None:
        nonlocal made
        made += event in ("call", "c_call")

    sys.setprofile(profile)
    try:
        check(history)
    finally:
        sys.setprofile(None)
    return made


#: Every checker that judges clients and their receipts (valid on the fleet).
CLIENT_CHECKERS = (
    "catch_up",
    "delivery",
    "delivery_latency",
    "exactly_once",
    "no_leaks",
    "no_phantoms",
    "reconnection",
)


@pytest.mark.parametrize("name", CLIENT_CHECKERS)
def test_four_times_the_clients_cost_about_four_times_the_calls(name: str) -> None:
    check: Callable[[History], CheckResult] = CHECKERS[name]
    small, large = fleet_history(SMALL), fleet_history(LARGE)
    assert check(large).valid is True
    ratio = _calls(check, large) / _calls(check, small)
    # Linear: 4. A loop over every client for every commit: 16.
    assert ratio < 6, f"{name}: {ratio:.1f} times the calls for 4 times the clients"


def test_every_alert_of_the_fleet_is_judged() -> None:
    history = fleet_history(SMALL)
    judged = delivery(history)
    assert judged.counts["expected"] == judged.counts["delivered"] == 2 * SMALL
    caught = catch_up(history)
    assert caught.counts["outages"] == caught.counts["owed"] == SMALL
