"""``linearizable`` and ``right_alert`` on hand-written histories against a seeded
workflow whose id order is not its workflow order."""

from __future__ import annotations

from typing import Any

from checks_support import Clock, new_history

from harness.checks import FinalState, linearizable, right_alert, run_checks
from harness.history import History, Op

# Workflow order: 10, 30, 20 (inactive), 40, 25. By id a walker would go 10 -> 25.
WORKFLOW = [
    {"id": 10, "role": "project_manager", "active": True},
    {"id": 30, "role": "field_director", "active": True},
    {"id": 20, "role": "office_staff", "active": False},
    {"id": 40, "role": "office_staff", "active": True},
    {"id": 25, "role": "administration", "active": True},
]
MEMBERS = {"1": {"project_manager": 7, "field_director": 8, "office_staff": 9, "administration": 6}}
ASSIGNEE = {10: 7, 30: 8, 40: 9, 25: 6}


def complete(
    h: History,
    clock: Clock,
    item: int,
    start: float,
    end: float | None,
    outcome: str = "ok",
    *,
    current: Any = "absent",
    f: str = "complete",
    value: Any = None,
) -> Op:
    """One completion of project 1's ``item``, sent at ``start``, answered at ``end``."""
    clock.t = start
    op = h.invoke("c1", f, {"project_id": 1, "line_item_id": item})
    if end is None:
        return op
    clock.t = end
    if outcome == "ok":
        return h.ok(op, value)
    if outcome == "409":
        named = None if current == "absent" else {"current_line_item_id": current}
        return h.fail(op, "409 not the current line item", named)
    if outcome == "503":
        return h.fail(op, "503 injected failure (rolled back)")
    return h.info(op, "timeout")


def alert(aid: int, step: int, status: str = "COMPLETED", to: int | None = None) -> dict[str, Any]:
    return {
        "id": aid,
        "project_id": 1,
        "step_id": step,
        "status": status,
        "assigned_to_id": ASSIGNEE[step] if to is None else to,
    }


def final(tracker: int | None, alerts: list[dict[str, Any]] | None = None) -> FinalState:
    return FinalState(
        alerts=alerts if alerts is not None else [],
        trackers=[{"project_id": 1, "current_line_item_id": tracker}],
        workflow=WORKFLOW,
        seeded_members=MEMBERS,
        start_trackers={"1": 10},
    )


def kinds(result: Any) -> set[str]:
    return {c["kind"] for c in result.counterexamples}


def good_history() -> tuple[History, FinalState]:
    h, clock = new_history()
    complete(h, clock, 10, 0.0, 1.0)
    complete(h, clock, 30, 2.0, 3.0)
    # A repeat of step 10 after both: stale, and it names step 40 as current.
    complete(h, clock, 10, 3.5, 4.0, "409", current=40)
    h.commit(alert_id=31, project_id=1, assignee_id=8, step_id=30)
    h.commit(alert_id=41, project_id=1, assignee_id=9, step_id=40)
    return h, final(40, [alert(31, 30), alert(41, 40, "ACTIVE")])


def test_a_chain_in_workflow_order_with_a_stale_repeat_passes_both() -> None:
    h, state = good_history()
    chain = linearizable(h, state)
    assert chain.valid is True, chain.counterexamples
    assert chain.counts["advanced"] == 2
    assert chain.counts["refusals_named"] == 1
    assigned = right_alert(h, state)
    assert assigned.valid is True, assigned.counterexamples
    assert assigned.counts["alerts"] == 2


def test_two_successes_for_one_step_are_not_linearizable() -> None:
    h, clock = new_history()
    complete(h, clock, 10, 0.0, 1.0)
    complete(h, clock, 10, 0.0, 1.1)  # the racing duplicate should have been a 409
    result = linearizable(h, final(30))
    assert result.valid is False
    assert "several_successes" in kinds(result)


def test_a_tracker_moved_by_a_failed_request_is_caught() -> None:
    """A rollback that left the tracker advanced (non-atomic completion)."""
    h, clock = new_history()
    complete(h, clock, 10, 0.0, 1.0)
    complete(h, clock, 30, 2.0, 3.0, "503")
    result = linearizable(h, final(40))
    assert result.valid is False
    assert kinds(result) == {"advanced_without_success"}
    assert result.counterexamples[0]["line_item_id"] == "30"


def test_an_indeterminate_completion_is_resolved_by_the_final_read() -> None:
    h, clock = new_history()
    complete(h, clock, 10, 0.0, 1.0)
    complete(h, clock, 30, 2.0, 3.0, "info")
    took_effect = linearizable(h, final(40))
    assert took_effect.valid is True
    assert took_effect.counts["resolved_indeterminate"] == 1
    did_not = linearizable(h, final(30))
    assert did_not.valid is True
    assert "resolved_indeterminate" not in did_not.counts


def test_a_success_the_final_tracker_does_not_show_is_a_lost_update() -> None:
    h, clock = new_history()
    complete(h, clock, 10, 0.0, 1.0)
    complete(h, clock, 30, 2.0, 3.0)
    result = linearizable(h, final(30))
    assert result.valid is False
    assert kinds(result) == {"success_not_in_final_state"}


def test_a_409_for_the_step_that_was_current_all_along_is_caught() -> None:
    h, clock = new_history()
    complete(h, clock, 10, 0.0, 1.0, "409", current=10)
    result = linearizable(h, final(10))
    assert result.valid is False
    assert kinds(result) == {"refused_current"}


def test_a_409_naming_an_item_that_was_never_current_then_is_caught() -> None:
    h, clock = new_history()
    complete(h, clock, 10, 0.0, 1.0)
    # Sent after step 10 was done: step 30 was current, but the 409 names 40.
    complete(h, clock, 10, 2.0, 3.0, "409", current=40)
    result = linearizable(h, final(30))
    assert result.valid is False
    assert kinds(result) == {"wrong_current_named"}
    # A 409 that races the completion may name either item.
    h2, clock2 = new_history()
    complete(h2, clock2, 10, 0.0, 1.0)
    complete(h2, clock2, 10, 0.5, 0.9, "409", current=30)
    assert linearizable(h2, final(30)).valid is True


def test_a_later_step_answered_before_the_earlier_was_sent_is_not_linearizable() -> None:
    h, clock = new_history()
    complete(h, clock, 30, 0.0, 0.5)
    complete(h, clock, 10, 1.0, 2.0)
    result = linearizable(h, final(40))
    assert result.valid is False
    assert "not_linearizable" in kinds(result)


def test_a_target_that_walks_the_workflow_by_id_fails_both_checks() -> None:
    """From 10 the next active item by id is 25; in workflow order it is 30."""
    h, clock = new_history()
    complete(h, clock, 10, 0.0, 1.0)
    h.commit(alert_id=2, project_id=1, assignee_id=6, step_id=25)
    state = final(25, [alert(1, 10), alert(2, 25, "ACTIVE")])
    chain = linearizable(h, state)
    assert chain.valid is False
    assert kinds(chain) == {"advanced_without_success"}
    assigned = right_alert(h, state)
    assert assigned.valid is False
    assert "no_alert_for_next_step" in kinds(assigned)


def test_right_alert_catches_a_wrong_assignee_in_the_database_and_in_the_answer() -> None:
    h, clock = new_history()
    complete(h, clock, 10, 0.0, 1.0)
    h.commit(alert_id=31, project_id=1, assignee_id=7, step_id=30)  # PM, not the field director
    result = right_alert(h, final(30, [alert(31, 30, "ACTIVE", to=7)]))
    assert result.valid is False
    assert kinds(result) == {"wrong_assignee", "announced_wrong_assignee"}
    assert result.counterexamples[0]["expected"] == "8"


def test_right_alert_catches_alerts_for_unreached_inactive_or_wrongly_completed_steps() -> None:
    h, _ = new_history()
    state = final(
        30,
        [
            alert(1, 10),
            alert(2, 30),  # the current step's alert completed without the step (unscoped)
            alert(3, 20, "ACTIVE", to=9),  # an inactive item
            alert(4, 40, "ACTIVE"),  # a step the project has not reached
            alert(5, 10, "ACTIVE"),  # a second alert of a completed step, still ACTIVE
        ],
    )
    result = right_alert(h, state)
    assert result.valid is False
    assert kinds(result) == {
        "current_step_alert_not_active",
        "alert_for_step_outside_workflow",
        "alert_for_unreached_step",
        "active_alert_for_completed_step",
        "several_alerts_for_step",
    }


def test_queued_completions_count_by_their_jobs_outcome() -> None:
    h, clock = new_history()
    completed = {"attempts": 2, "result": {"outcome": "completed", "nextLineItemId": 30}}
    complete(h, clock, 10, 0.0, 1.0, f="complete_queued", value=completed)
    stale = {"attempts": 1, "result": {"outcome": "stale"}}
    complete(h, clock, 10, 2.0, 3.0, f="complete_queued", value=stale)
    result = linearizable(h, final(30))
    assert result.valid is True
    assert (result.counts["advanced"], result.counts["refused"]) == (1, 1)


def test_without_seeded_workflow_trackers_or_completions_the_verdict_is_unknown() -> None:
    h, state = good_history()
    assert linearizable(h, FinalState(alerts=[])).valid == "unknown"
    assert right_alert(h, FinalState(trackers=[], workflow=WORKFLOW)).valid == "unknown"
    empty, _ = new_history()
    assert linearizable(empty, state).valid == "unknown"
    names = [r.name for r in run_checks(["linearizable", "right_alert"], h, state)]
    assert names == ["linearizable", "right_alert"]


def test_a_queued_job_that_committed_then_retried_into_stale_is_resolved_not_refused() -> None:
    """The first attempt committed and then raised (a dropped connection): the
    retry finds the step done. The job ends complete, outcome stale."""
    h, clock = new_history()
    stale = {"attempts": 2, "result": {"outcome": "stale"}}
    complete(h, clock, 10, 0.0, 1.0, f="complete_queued", value=stale)
    result = linearizable(h, final(30))
    assert result.valid is True, result.counterexamples
    assert result.counts["resolved_indeterminate"] == 1
