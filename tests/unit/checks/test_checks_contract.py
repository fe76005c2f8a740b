"""The contract's client-side invariants on hand-written histories: each checker
passes on a good history, fails on one that violates it, and is unknown
without the evidence it needs."""

from __future__ import annotations

from typing import Any

from checks_support import Clock, new_history

from harness.checks import (
    FinalState,
    catch_up,
    delivery,
    exactly_once,
    monotonic_reads,
    no_leaks,
)
from harness.history import History


def receive(
    h: History, clock: Clock, t: float, alert: int, *, via: str = "live", user: int = 7, **kw: Any
) -> None:
    clock.t = t
    h.receive(f"c{user}", user_id=user, event="new_alert", alert_id=alert, via=via, **kw)


def session(h: History, clock: Clock, t: float, kind: str, user: int = 7) -> None:
    clock.t = t
    h.session(f"c{user}", kind, user_id=user)  # type: ignore[arg-type]


# -- exactly_once ----------------------------------------------------------------


def test_exactly_once_passes_when_the_client_drops_catch_up_repeats() -> None:
    h, clock = new_history()
    receive(h, clock, 1.0, 5)
    receive(h, clock, 2.0, 5, via="sync", repeat=True, surfaced=False)
    result = exactly_once(h)
    assert result.valid is True
    assert result.counts["dropped_repeats"] == 1


def test_exactly_once_fails_when_an_alert_is_surfaced_live_and_again_by_sync() -> None:
    h, clock = new_history()
    receive(h, clock, 1.0, 5)
    receive(h, clock, 2.0, 5, via="sync", repeat=True, surfaced=True)
    result = exactly_once(h)
    assert result.valid is False
    assert result.counterexamples[0]["paths"] == ["live", "sync"]


def test_exactly_once_is_unknown_without_receipts() -> None:
    h, _ = new_history()
    assert exactly_once(h).valid == "unknown"


# -- delivery: live duplicates vs catch-up repeats ---------------------------------


def committed(h: History, clock: Clock, t: float, alert: int, user: int = 7) -> None:
    clock.t = t
    h.commit(alert_id=alert, project_id=1, assignee_id=user)


def test_delivery_counts_a_second_live_push_even_when_the_client_dropped_it() -> None:
    h, clock = new_history()
    session(h, clock, 0.0, "connect")
    committed(h, clock, 0.5, 5)
    receive(h, clock, 0.6, 5)
    receive(h, clock, 0.7, 5, repeat=True, surfaced=False)  # the server pushed it twice
    result = delivery(h)
    assert result.valid is False
    assert result.counts["duplicated"] == 1


def test_delivery_accepts_a_live_push_after_catch_up_already_brought_it() -> None:
    h, clock = new_history()
    session(h, clock, 0.0, "connect")
    session(h, clock, 1.0, "disconnect")
    committed(h, clock, 1.5, 5)
    session(h, clock, 2.0, "reconnect")
    receive(h, clock, 2.1, 5, via="sync")
    receive(h, clock, 2.2, 5, repeat=True, surfaced=False)  # the relay's own push
    result = delivery(h)
    assert result.valid is True
    assert result.counts["duplicated"] == 0


# -- no_leaks over sync answers and HTTP reads -------------------------------------

MEMBERS = [{"project_id": 1, "user_id": 7}, {"project_id": 1, "user_id": 8}]


def read(h: History, clock: Clock, t: float, user: int, items: list[dict[str, Any]]) -> None:
    clock.t = t
    op = h.invoke(f"u{user}", "read_alerts", {"user_id": user})
    clock.t = t + 0.01
    h.ok(op, {"alerts": len(items), "items": items})


def test_no_leaks_catches_another_users_alert_in_a_sync_answer() -> None:
    h, clock = new_history()
    committed(h, clock, 0.5, 5, user=8)
    receive(h, clock, 1.0, 5, via="sync", user=7)
    result = no_leaks(h, FinalState(memberships=MEMBERS))
    assert result.valid is False
    assert result.counterexamples[0]["kind"] == "other_user"


def test_no_leaks_catches_another_users_alert_in_an_http_read() -> None:
    h, clock = new_history()
    committed(h, clock, 0.5, 5, user=8)
    committed(h, clock, 0.6, 6, user=7)
    read(h, clock, 1.0, 7, [{"id": 6, "projectId": 1}])
    assert no_leaks(h, FinalState(memberships=MEMBERS)).valid is True
    read(h, clock, 2.0, 7, [{"id": 6, "projectId": 1}, {"id": 5, "projectId": 1}])
    result = no_leaks(h, FinalState(memberships=MEMBERS))
    assert result.valid is False
    assert result.counterexamples[0]["kind"] == "read_other_user"
    assert result.counts["reads"] == 2


def test_no_leaks_catches_a_foreign_projects_alert_in_an_http_read() -> None:
    h, clock = new_history()
    read(h, clock, 1.0, 7, [{"id": 9, "projectId": 2}])  # user 7 is no member of project 2
    result = no_leaks(h, FinalState(memberships=MEMBERS))
    assert result.valid is False
    assert result.counterexamples[0]["kind"] == "read_foreign_project"


# -- monotonic_reads ----------------------------------------------------------------


def item(alert: int, step: int) -> dict[str, Any]:
    return {"id": alert, "projectId": 1, "stepId": step}


def complete(h: History, clock: Clock, start: float, end: float, step: int) -> None:
    clock.t = start
    op = h.invoke("c1", "complete", {"project_id": 1, "line_item_id": step})
    clock.t = end
    h.ok(op, {"alert_id": None})


def test_monotonic_reads_pass_when_lists_only_move_forward() -> None:
    h, clock = new_history()
    read(h, clock, 1.0, 7, [item(5, 10)])
    complete(h, clock, 2.0, 2.5, 10)
    read(h, clock, 3.0, 7, [])
    read(h, clock, 4.0, 7, [])
    result = monotonic_reads(h)
    assert result.valid is True
    assert result.counts["pairs"] == 3


def test_an_alert_that_vanishes_with_no_completion_sent_is_an_older_list() -> None:
    h, clock = new_history()
    read(h, clock, 1.0, 7, [item(5, 10)])
    read(h, clock, 2.0, 7, [])
    result = monotonic_reads(h)
    assert result.valid is False
    assert result.counterexamples[0]["kind"] == "vanished"


def test_a_completed_alert_that_comes_back_after_a_read_without_it_is_caught() -> None:
    h, clock = new_history()
    complete(h, clock, 0.0, 0.5, 10)
    read(h, clock, 1.0, 7, [])
    read(h, clock, 2.0, 7, [item(5, 10)])  # an old cached list
    result = monotonic_reads(h)
    assert result.valid is False
    assert {c["kind"] for c in result.counterexamples} == {"returned"}


def test_an_alert_present_absent_present_is_caught_without_any_completion_known() -> None:
    h2, clock2 = new_history()
    read(h2, clock2, 1.0, 7, [item(5, 10)])
    clock2.t = 1.5
    op = h2.invoke("c1", "complete", {"project_id": 1, "line_item_id": 10})
    clock2.t = 1.55
    h2.info(op, "timeout")  # sent, outcome unknown: explains the gap, not the return
    read(h2, clock2, 2.0, 7, [])
    read(h2, clock2, 3.0, 7, [item(5, 10)])
    result = monotonic_reads(h2)
    assert result.valid is False
    assert "reappeared" in {c["kind"] for c in result.counterexamples}


def test_concurrent_reads_are_not_ordered_and_one_read_is_unknown() -> None:
    h, clock = new_history()
    clock.t = 1.0
    a = h.invoke("u7", "read_alerts", {"user_id": 7})
    b = h.invoke("u7", "read_alerts", {"user_id": 7})
    clock.t = 2.0
    h.ok(a, {"items": [item(5, 10)]})
    h.ok(b, {"items": []})
    assert monotonic_reads(h).valid == "unknown"


# -- catch_up ------------------------------------------------------------------------


def outage_history(*, caught: bool, received_at: float | None) -> History:
    h, clock = new_history()
    session(h, clock, 0.0, "connect")
    committed(h, clock, 0.5, 9)
    receive(h, clock, 0.6, 9)  # the client has seen id 9
    session(h, clock, 1.0, "disconnect")
    committed(h, clock, 1.5, 8)  # id 8 took its id earlier and committed now
    session(h, clock, 2.0, "reconnect")
    if received_at is not None:
        receive(h, clock, received_at, 8, via="sync")
    if caught:
        session(h, clock, 2.5, "caught_up")
    return h


def test_catch_up_passes_when_the_out_of_order_alert_came_by_sync() -> None:
    result = catch_up(outage_history(caught=True, received_at=2.2))
    assert result.valid is True
    assert result.counts["out_of_id_order"] == 1


def test_catch_up_fails_when_the_lower_id_was_not_fetched() -> None:
    result = catch_up(outage_history(caught=True, received_at=None))
    assert result.valid is False
    assert result.counterexamples[0]["id_below_seen"] is True
    # Arriving later (a relay replay, say) is not catching up.
    assert catch_up(outage_history(caught=True, received_at=3.0)).valid is False


def test_catch_up_fails_when_the_client_never_caught_up() -> None:
    result = catch_up(outage_history(caught=False, received_at=2.2))
    assert result.valid is False
    assert "never declared" in result.counterexamples[0]["why"]


def test_catch_up_is_unknown_without_an_outage() -> None:
    h, clock = new_history()
    session(h, clock, 0.0, "connect")
    committed(h, clock, 0.5, 9)
    assert catch_up(h).valid == "unknown"
