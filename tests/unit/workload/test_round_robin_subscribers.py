"""The load workload's clients: the assignees of the run's completions, or
every member of a project (``--subscribers all``)."""

from __future__ import annotations

from harness.contract.seed import LineItem, SeedResult
from scenarios._round_robin import RoundRobin

ROLES = ("project_manager", "lead", "designer")


def _seeded() -> SeedResult:
    items = [
        LineItem(
            id=i + 1,
            section_id=1,
            phase_id=1,
            item_name=f"item {i + 1}",
            responsible_role=ROLES[i % 3],
            alert_days=1,
            is_active=True,
        )
        for i in range(4)
    ]
    # User 10 is a member of two projects; user 13 of project 3 only, as its
    # project manager, who is never the assignee of the steps completed below.
    members = {
        1: {"project_manager": 10, "lead": 11, "designer": 12},
        2: {"project_manager": 12, "lead": 10, "designer": 11},
        3: {"project_manager": 13, "lead": 11, "designer": 12},
    }
    return SeedResult(
        project_ids=[1, 2, 3], members=members, tracker_ids={1: 1, 2: 2, 3: 3}, line_items=items
    )


def test_by_default_only_the_next_steps_assignees_connect() -> None:
    # One round: each project's second step (a lead's) gets its alert.
    subscribers = RoundRobin(_seeded()).subscribers(3)
    assert {s.user_id: s.projects for s in subscribers} == {11: (1, 3), 10: (2,)}


def test_everyone_connects_every_member_to_all_its_projects() -> None:
    subscribers = RoundRobin(_seeded()).subscribers(3, everyone=True)
    assert {s.user_id: s.projects for s in subscribers} == {
        10: (1, 2),
        11: (1, 2, 3),
        12: (1, 2, 3),
        13: (3,),
    }
