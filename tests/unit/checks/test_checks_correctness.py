"""Checkers on hand-written histories: each passes on a good one, fails on a bad one
with counterexamples, and is unknown when the history lacks what it needs."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from checks_support import Clock, new_history

from harness.checks import (
    CheckResult,
    FinalState,
    delivery,
    merge_validity,
    no_duplicates,
    no_leaks,
    no_phantoms,
    queries_per_request,
)
from harness.history import History


def alert(aid: int, project: int, step: int, status: str = "ACTIVE", to: int = 7) -> dict[str, Any]:
    return {
        "id": aid,
        "project_id": project,
        "step_id": step,
        "status": status,
        "assigned_to_id": to,
    }


# -- no_duplicates -------------------------------------------------------------


def test_no_duplicates_passes_with_one_active_alert_per_step() -> None:
    h, _ = new_history()
    h.snapshot("alerts", [alert(1, 1, 1, "COMPLETED"), alert(2, 1, 1), alert(3, 2, 1)])
    final = FinalState(alerts=[alert(1, 1, 1, "COMPLETED"), alert(2, 1, 2), alert(3, 2, 1)])
    result = no_duplicates(h, final)
    assert result.valid is True
    assert result.measurements == {"duplication_rate": 0.0}
    assert result.counts["states"] == 2


def test_no_duplicates_fails_on_a_snapshot_even_when_the_final_state_is_clean() -> None:
    h, _ = new_history()
    h.snapshot("alerts", [alert(1, 1, 5), alert(2, 1, 5), alert(3, 2, 1)], label="mid-run")
    result = no_duplicates(h, FinalState(alerts=[alert(1, 1, 5)]))
    assert result.valid is False
    assert result.counterexamples == (
        {"where": "snapshot #0 (mid-run)", "project_id": "1", "step_id": "5", "alert_ids": [1, 2]},
    )
    # 3 active alerts, 1 surplus copy.
    assert result.measurements["duplication_rate"] == pytest.approx(100 / 3)


def test_no_duplicates_fails_on_the_final_state() -> None:
    h, _ = new_history()
    result = no_duplicates(h, FinalState(alerts=[alert(1, 1, 5), alert(9, 1, 5, "active")]))
    assert result.valid is False
    assert result.counterexamples[0]["where"] == "final"


def test_no_duplicates_is_unknown_without_any_state() -> None:
    h, _ = new_history()
    assert no_duplicates(h).valid == "unknown"
    assert no_duplicates(h, FinalState(memberships=[])).valid == "unknown"


# -- delivery ------------------------------------------------------------------


def connected(h: History, clock: Clock, client: str, user: int, t: float = 0.0) -> None:
    clock.at(t)
    h.session(client, "connect", user_id=user)
    h.session(client, "subscribe", user_id=user, project_id=1)


def test_delivery_passes_when_every_entitled_client_got_each_alert_once() -> None:
    h, clock = new_history()
    connected(h, clock, "a", 7)
    connected(h, clock, "b", 8)  # another user: owed nothing
    h.commit(alert_id=1, project_id=1, assignee_id=7, mono_s=1.0)
    h.commit(alert_id=2, project_id=1, assignee_id=7, mono_s=2.0)
    h.receive("a", user_id=7, event="new_alert", alert_id=1, project_id=1, mono_s=1.01)
    h.receive("a", user_id=7, event="new_alert", alert_id=2, project_id=1, mono_s=2.01)
    result = delivery(h)
    assert result.valid is True, result
    assert result.counts["expected"] == 2
    assert result.counts["delivered"] == 2
    assert result.measurements == {"delivery_rate": 100.0}


def test_delivery_counts_lost_duplicated_reordered_and_late() -> None:
    h, clock = new_history()
    connected(h, clock, "a", 7)
    h.commit(alert_id=1, project_id=1, assignee_id=7, mono_s=1.0)
    h.commit(alert_id=2, project_id=1, assignee_id=7, mono_s=2.0)
    h.commit(alert_id=3, project_id=1, assignee_id=7, mono_s=3.0)
    h.commit(alert_id=4, project_id=1, assignee_id=7, mono_s=4.0)
    h.receive("a", user_id=7, event="new_alert", alert_id=2, mono_s=2.1)
    h.receive("a", user_id=7, event="new_alert", alert_id=1, mono_s=2.2)  # reordered
    h.receive("a", user_id=7, event="new_alert", alert_id=2, mono_s=2.3)  # duplicated
    h.receive("a", user_id=7, event="new_alert", alert_id=3, mono_s=9.0)  # late (6 s)
    result = delivery(h, late_after_ms=1500)  # alert 4: lost
    assert result.valid is False
    counts = result.counts
    assert (counts["expected"], counts["delivered"], counts["lost"]) == (4, 3, 1)
    assert (counts["duplicated"], counts["reordered"], counts["late"]) == (1, 1, 1)
    assert result.measurements["delivery_rate"] == pytest.approx(75.0)
    kinds = {(c["kind"], c["alert_id"]) for c in result.counterexamples}
    assert kinds == {("lost", 4), ("duplicated", 2)}
    strict = delivery(h, late_after_ms=1500, fail_on_reorder=True, fail_on_late=True)
    assert {c["kind"] for c in strict.counterexamples} == {
        "lost",
        "duplicated",
        "reordered",
        "late",
    }


def test_delivery_requires_a_receipt_after_reconnect_for_a_client_that_was_down() -> None:
    h, clock = new_history()
    connected(h, clock, "a", 7)
    h.session("a", "disconnect", user_id=7, mono_s=1.0)
    h.commit(alert_id=1, project_id=1, assignee_id=7, mono_s=2.0)  # committed while down
    h.session("a", "reconnect", user_id=7, mono_s=3.0)
    h.receive("a", user_id=7, event="new_alert", alert_id=1, via="sync", mono_s=3.1)
    h.session("a", "caught_up", user_id=7, mono_s=3.2)
    assert delivery(h).valid is True

    # The same outage without catch-up (the no_rejoin flaw): lost.
    h2, clock2 = new_history()
    connected(h2, clock2, "a", 7)
    h2.session("a", "disconnect", user_id=7, mono_s=1.0)
    h2.commit(alert_id=1, project_id=1, assignee_id=7, mono_s=2.0)
    h2.session("a", "reconnect", user_id=7, mono_s=3.0)
    result = delivery(h2)
    assert result.valid is False
    assert result.counterexamples == (
        {
            "kind": "lost",
            "client": "a",
            "alert_id": 1,
            "project_id": 1,
            "why": "disconnected at commit and not received after reconnect",
        },
    )


def test_delivery_counts_a_client_that_never_came_back_as_lost() -> None:
    h, clock = new_history()
    connected(h, clock, "a", 7)
    h.session("a", "disconnect", user_id=7, mono_s=1.0)
    h.commit(alert_id=1, project_id=1, assignee_id=7, mono_s=2.0)
    result = delivery(h)
    assert result.valid is False
    assert result.counterexamples[0]["why"] == "disconnected at commit and never reconnected"


def test_delivery_sync_repeats_are_not_duplicates_and_closed_clients_are_owed_nothing() -> None:
    h, clock = new_history()
    connected(h, clock, "a", 7)
    connected(h, clock, "b", 7)
    h.session("b", "close", user_id=7, mono_s=0.5)
    h.commit(alert_id=1, project_id=1, assignee_id=7, mono_s=1.0)
    h.receive("a", user_id=7, event="new_alert", alert_id=1, mono_s=1.1)
    h.receive("a", user_id=7, event="new_alert", alert_id=1, via="sync", mono_s=2.0)
    result = delivery(h)
    assert result.valid is True
    assert (result.counts["expected"], result.counts["resynced"]) == (1, 1)


def test_delivery_with_require_subscription_skips_clients_outside_the_room() -> None:
    h, clock = new_history()
    clock.at(0.0)
    h.session("a", "connect", user_id=7)  # never subscribed to project 1
    h.commit(alert_id=1, project_id=1, assignee_id=7, mono_s=1.0)
    assert delivery(h).valid is False
    assert delivery(h, require_subscription=True).valid == "unknown"


def test_delivery_is_unknown_without_commits_or_entitled_clients() -> None:
    h, _ = new_history()
    assert delivery(h).valid == "unknown"
    h.commit(alert_id=1, project_id=1, assignee_id=7, mono_s=1.0)
    unknown = delivery(h)
    assert unknown.valid == "unknown"
    assert "no connected client" in unknown.summary


# -- no_phantoms ---------------------------------------------------------------


def test_no_phantoms_passes_when_every_received_alert_was_committed() -> None:
    h, _ = new_history()
    h.commit(alert_id=1, project_id=1, assignee_id=7)
    h.receive("a", user_id=7, event="new_alert", alert_id=1)
    # Alert 2's request timed out, but the final read shows it committed.
    h.receive("a", user_id=7, event="new_alert", alert_id=2)
    assert no_phantoms(h, FinalState(alerts=[alert(1, 1, 1), alert(2, 1, 2)])).valid is True


def test_no_phantoms_fails_on_an_alert_that_was_rolled_back() -> None:
    h, _ = new_history()
    h.commit(alert_id=1, project_id=1, assignee_id=7)
    h.receive("a", user_id=7, event="new_alert", alert_id=1)
    h.receive("a", user_id=7, event="new_alert", alert_id=66, mono_s=5.0)
    result = no_phantoms(h, FinalState(alerts=[alert(1, 1, 1)]))
    assert result.valid is False
    assert result.counterexamples == (
        {
            "client": "a",
            "user_id": 7,
            "alert_id": 66,
            "event": "new_alert",
            "via": "live",
            "mono_s": 5.0,
        },
    )
    assert result.counts["phantom_alerts"] == 1


def test_no_phantoms_is_unknown_without_commits_or_receipts() -> None:
    h, _ = new_history()
    h.receive("a", user_id=7, event="new_alert", alert_id=1)
    assert no_phantoms(h).valid == "unknown"
    h2, _ = new_history()
    assert no_phantoms(h2, FinalState(alerts=[alert(1, 1, 1)])).valid == "unknown"


# -- no_leaks ------------------------------------------------------------------

MEMBERS = FinalState(memberships=[{"project_id": 1, "user_id": 7}, {"project_id": 1, "user_id": 8}])


def test_no_leaks_passes_when_each_receipt_is_for_its_user_and_project() -> None:
    h, _ = new_history()
    h.commit(alert_id=1, project_id=1, assignee_id=7)
    h.receive("a", user_id=7, event="new_alert", alert_id=1, project_id=1)
    h.receive("b", user_id=8, event="alerts_refresh", project_id=1)
    result = no_leaks(h, MEMBERS)
    assert result.valid is True
    assert result.counts["checked"] == 2


def test_no_leaks_fails_on_another_users_alert_and_a_foreign_project() -> None:
    h, _ = new_history()
    h.commit(alert_id=1, project_id=1, assignee_id=7)
    h.receive("b", user_id=8, event="new_alert", alert_id=1, project_id=1, mono_s=1.0)
    h.receive("c", user_id=9, event="workflow_updated", project_id=1, mono_s=2.0)
    result = no_leaks(h, MEMBERS)
    assert result.valid is False
    assert [c["kind"] for c in result.counterexamples] == ["other_user", "foreign_project"]
    assert result.counterexamples[0]["assignee_id"] == "7"
    assert result.counterexamples[1]["user_id"] == 9


def test_no_leaks_is_unknown_without_facts_or_receipts() -> None:
    h, _ = new_history()
    h.receive("c", user_id=9, event="workflow_updated", project_id=1)
    assert no_leaks(h).valid == "unknown"
    h2, _ = new_history()
    assert no_leaks(h2, MEMBERS).valid == "unknown"


# -- queries_per_request -------------------------------------------------------


def stat(calls: int, query: str = "SELECT 1") -> dict[str, Any]:
    # A stable id: hash() is salted per process, and two texts that shared an
    # id modulo 1000 (one run in a thousand) merged into one statement.
    queryid = zlib.crc32(query.encode())
    return {"queryid": queryid, "query": query, "calls": calls, "total_exec_time": 1.0}


def requests(h: History, clock: Clock, n: int, t: float) -> None:
    for i in range(n):
        clock.at(t + i * 0.01)
        h.ok(h.invoke("c", "complete", {"i": i}))


def test_queries_per_request_measures_statements_between_the_snapshots() -> None:
    h, clock = new_history()
    requests(h, clock, 3, t=0.0)  # before the snapshot: not counted
    clock.at(1.0)
    h.snapshot("pg_stat_statements", [stat(100), stat(10, "BEGIN")], label="before")
    requests(h, clock, 10, t=2.0)
    clock.at(3.0)
    h.snapshot("pg_stat_statements", [stat(150), stat(20, "BEGIN")], label="after")
    result = queries_per_request(h, limit=10)
    assert result.valid is True
    assert result.measurements == {"queries_per_request": pytest.approx(5.0)}
    assert result.counts["requests"] == 10
    assert result.counts["excluded_statements"] == 10


def test_queries_per_request_fails_over_the_limit_listing_the_statements() -> None:
    h, clock = new_history()
    h.snapshot("pg_stat_statements", [], label="before")
    requests(h, clock, 2, t=1.0)
    clock.at(2.0)
    h.snapshot(
        "pg_stat_statements",
        [stat(200, "SELECT * FROM trackers WHERE project_id = $1"), stat(2, "INSERT a")],
        label="after",
    )
    result = queries_per_request(h, limit=10)
    assert result.valid is False
    assert result.counterexamples[0] == {
        "query": "SELECT * FROM trackers WHERE project_id = $1",
        "calls": 200,
        "per_request": 100.0,
    }
    assert queries_per_request(h).valid is True  # no limit: measure only


def test_queries_per_request_judges_each_phase_and_reports_the_worst() -> None:
    # One batch request doing 80 statements (an N+1 over 20 projects) must not
    # hide behind 40 cheap completions: 120 / 41 would be under the limit.
    h, clock = new_history()
    h.snapshot("pg_stat_statements", [stat(0, "SELECT t")], label="before")
    clock.at(1.0)
    h.ok(h.invoke("c", "generate", {"projects": 20}))
    clock.at(2.0)
    h.snapshot("pg_stat_statements", [stat(80, "SELECT t")], label="generated")
    requests(h, clock, 40, t=3.0)
    clock.at(4.0)
    h.snapshot("pg_stat_statements", [stat(80, "SELECT t"), stat(160, "UPDATE a")], label="after")
    result = queries_per_request(h, limit=10)
    assert result.valid is False
    assert result.measurements == {"queries_per_request": pytest.approx(80.0)}
    assert "generate: 80.00 = 80/1" in result.summary
    assert "complete: 4.00 = 160/40" in result.summary
    assert result.counts["requests"] == 41
    assert result.counterexamples[0]["query"] == "SELECT t"


def test_queries_per_request_is_unknown_without_snapshots_or_requests() -> None:
    h, clock = new_history()
    requests(h, clock, 2, t=0.0)
    assert queries_per_request(h).valid == "unknown"
    h2, _ = new_history()
    h2.snapshot("pg_stat_statements", [stat(1)], label="before")
    h2.snapshot("pg_stat_statements", [stat(9)], label="after")
    assert queries_per_request(h2).valid == "unknown"


# -- composition ---------------------------------------------------------------


def test_merge_validity_false_beats_unknown_beats_true() -> None:
    assert merge_validity([True, True]) is True
    assert merge_validity([True, "unknown"]) == "unknown"
    assert merge_validity(["unknown", False, True]) is False
    assert merge_validity([]) is True


def test_check_result_round_trips_through_dict() -> None:
    h, _ = new_history()
    result = no_duplicates(h, FinalState(alerts=[alert(1, 1, 5), alert(2, 1, 5)]))
    assert CheckResult.from_dict(result.to_dict()) == result
