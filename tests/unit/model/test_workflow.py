"""The workflow model: order, skipped items, assignees, tracker positions."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.contract.seed import ROLES, LineItem, SeedResult
from harness.model import ModelError, Trackers, Workflow


def item(item_id: int, role: str = "project_manager", *, active: bool = True) -> LineItem:
    return LineItem(
        id=item_id,
        section_id=1,
        phase_id=1,
        item_name=f"item {item_id}",
        responsible_role=role,
        alert_days=3,
        is_active=active,
    )


def seeded(items: list[LineItem], projects: int = 2) -> SeedResult:
    """Projects 100, 101, ... with users 10p+0 .. 10p+3 in the roles' order."""
    members = {
        100 + p: {r: 10 * (100 + p) + n for n, r in enumerate(ROLES)} for p in range(projects)
    }
    return SeedResult(
        project_ids=sorted(members),
        members=members,
        tracker_ids={p: p for p in members},
        line_items=items,
    )


# Workflow order with ids out of order, inactive items first, in the middle and last.
TEMPLATE = [
    item(9, active=False),
    item(7, "field_director"),
    item(3, "office_staff"),
    item(12, active=False),
    item(5, "administration"),
    item(1),
    item(2, active=False),
]


def test_next_step_follows_the_seeded_order_not_the_ids() -> None:
    workflow = Workflow(seeded(TEMPLATE))
    walk = []
    step = workflow.first_step()
    while step is not None:
        walk.append(step.id)
        step = workflow.next_step(step.id)
    assert walk == [7, 3, 5, 1]


def test_inactive_items_are_skipped_even_as_a_starting_point() -> None:
    workflow = Workflow(seeded(TEMPLATE))
    assert workflow.first_step() == TEMPLATE[1]
    assert workflow.next_step(9) == TEMPLATE[1]
    assert workflow.next_step(3) == TEMPLATE[4]  # 12 is inactive
    assert workflow.next_step(1) is None  # 2 is inactive: the workflow ends
    assert workflow.next_step(2) is None


def test_unknown_line_item_and_project_are_errors_that_name_them() -> None:
    workflow = Workflow(seeded(TEMPLATE))
    with pytest.raises(ModelError, match="line item 404"):
        workflow.next_step(404)
    with pytest.raises(ModelError, match="project 7"):
        workflow.assignee(7, TEMPLATE[1])


def test_a_template_with_a_repeated_id_is_refused() -> None:
    with pytest.raises(ModelError, match="line item 3 appears twice"):
        Workflow(seeded([item(3), item(3)]))


def test_the_assignee_is_the_member_with_the_responsible_role() -> None:
    workflow = Workflow(seeded(TEMPLATE))
    assert workflow.assignee(100, TEMPLATE[1]) == 1001  # field_director of project 100
    assert workflow.assignee(101, TEMPLATE[2]) == 1012  # office_staff of project 101
    assert workflow.members(101) == frozenset({1010, 1011, 1012, 1013})


def test_nobody_holding_the_role_means_no_assignee() -> None:
    data = seeded(TEMPLATE)
    del data.members[100]["administration"]
    assert Workflow(data).assignee(100, TEMPLATE[4]) is None


@settings(max_examples=200, derandomize=True, database=None)
@given(
    actives=st.lists(st.booleans(), min_size=1, max_size=12),
    order_seed=st.integers(0, 2**32 - 1),
)
def test_next_step_is_the_first_later_active_item(actives: list[bool], order_seed: int) -> None:
    ids = list(range(1, len(actives) + 1))
    random.Random(order_seed).shuffle(ids)
    items = [item(i, active=a) for i, a in zip(ids, actives, strict=True)]
    workflow = Workflow(seeded(items))
    for n, li in enumerate(items):
        later = [x for x in items[n + 1 :] if x.is_active]
        assert workflow.next_step(li.id) == (later[0] if later else None)


def test_completions_walk_the_tracker_and_answer_409_when_stale() -> None:
    trackers = Trackers(Workflow(seeded(TEMPLATE)))
    manager = 1000  # project_manager of project 100
    assert trackers.expect_completion(100, 3, manager).status == 409  # not yet current
    first = trackers.expect_completion(100, 7, manager)
    assert (first.status, first.next_step, first.alert_due) == (200, TEMPLATE[2], True)
    assert first.assignee == 1002  # office_staff of project 100
    alert = trackers.complete(100, 7, alert_id=50)
    assert alert is not None
    assert (alert.step_id, alert.assigned_to_id, alert.status) == (3, 1002, "ACTIVE")
    assert trackers.expect_completion(100, 7, manager).status == 409  # repeated
    assert [li.id for li in trackers.completed_steps(100)] == [7]
    assert trackers.current_step(101) == TEMPLATE[1]  # the other project did not move
    trackers.complete(100, 3, alert_id=51)
    assert trackers.alerts[50].status == "COMPLETED"
    assert [a.id for a in trackers.active_alerts_of(1003)] == [51]  # administration


def test_the_last_step_inserts_nothing_and_then_everything_is_stale() -> None:
    trackers = Trackers(Workflow(seeded(TEMPLATE)))
    for step, alert_id in ((7, 60), (3, 61), (5, 62)):
        trackers.complete(100, step, alert_id)
    last = trackers.expect_completion(100, 1, 1000)
    assert (last.status, last.next_step, last.alert_due) == (200, None, False)
    assert trackers.complete(100, 1, None) is None
    assert trackers.current[100] is None
    assert trackers.active_alerts(100) == []
    assert all(trackers.expect_completion(100, li.id, 1000).status == 409 for li in TEMPLATE)
    with pytest.raises(ModelError, match="after the last step"):
        trackers.generated(100, 70)


def test_membership_and_project_are_checked_before_staleness() -> None:
    trackers = Trackers(Workflow(seeded(TEMPLATE)))
    assert trackers.expect_completion(999, 7, 1000).status == 404
    assert trackers.expect_completion(100, 3, 1010).status == 403  # a member of 101 only
    assert trackers.expect_completion(100, 7, 1003).status == 200  # any member may


def test_generation_creates_only_the_missing_current_step_alerts() -> None:
    trackers = Trackers(Workflow(seeded(TEMPLATE, projects=3)))
    due = trackers.due_alerts([100, 101, 100, 555])
    assert due == {100: (TEMPLATE[1], 1001), 101: (TEMPLATE[1], 1011)}
    trackers.generated(100, 80)
    assert set(trackers.due_alerts([100, 101, 102])) == {101, 102}
    with pytest.raises(ModelError, match="second ACTIVE alert"):
        trackers.generated(100, 81)
    # Completing the step completes the generated alert; the next one is due from the completion.
    assert trackers.expect_completion(100, 7, 1000).alert_due
    trackers.complete(100, 7, 82)
    assert trackers.alerts[80].status == "COMPLETED"
    assert trackers.due_alerts([100]) == {}


def test_a_commit_the_model_did_not_expect_is_an_error() -> None:
    trackers = Trackers(Workflow(seeded(TEMPLATE)))
    with pytest.raises(ModelError, match="current one is 7"):
        trackers.complete(100, 3, 90)
    trackers.complete(100, 7, 91)
    with pytest.raises(ModelError, match="created twice"):
        trackers.generated(101, 91)
