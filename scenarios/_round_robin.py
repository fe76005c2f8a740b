"""Completions project after project, round after round (shared by load and network).

Operation ``i`` completes the current step of project ``i mod N``, which is
step ``i div N`` of the workflow: each round advances every project once, so
operations on one project are ``N`` operations apart and never race.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from harness.clients import AppHttp, Subscriber
from harness.contract.seed import SeedResult
from harness.scenario import ScenarioContext

__all__ = ["RoundRobin"]


@dataclass(frozen=True)
class RoundRobin:
    """The round-robin completion workload over a seeded data set."""

    seeded: SeedResult

    @property
    def capacity(self) -> int:
        """Operations until every project's workflow has no next step left."""
        return len(self.seeded.project_ids) * (len(self.seeded.active_line_items) - 1)

    def target(self, i: int) -> tuple[int, int]:
        """(project, line item) that operation ``i`` completes."""
        projects = self.seeded.project_ids
        return projects[i % len(projects)], self.seeded.active_line_items[i // len(projects)].id

    def describe(self, i: int) -> dict[str, int]:
        project, line_item = self.target(i)
        return {"project_id": project, "line_item_id": line_item}

    def subscribers(self, total: int, *, everyone: bool = False) -> list[Subscriber]:
        """One client per user that the first ``total`` operations assign an alert
        to (the next step's assignee), in the rooms of those projects; with
        ``everyone``, one client per member of any project, in the rooms of all
        its projects (idle clients too: the connected population of a real
        deployment)."""
        seeded, projects = self.seeded, self.seeded.project_ids
        rooms: dict[int, set[int]] = defaultdict(set)
        if everyone:
            for project in projects:
                for user in seeded.members[project].values():
                    rooms[user].add(project)
        for index, project in enumerate(projects):
            touched = len(range(index, total, len(projects)))
            for item in seeded.active_line_items[1 : touched + 1]:
                rooms[seeded.members[project][item.responsible_role]].add(project)
        return [Subscriber(user, tuple(sorted(ps))) for user, ps in sorted(rooms.items())]

    def operation(
        self, ctx: ScenarioContext, http: AppHttp, *, offset: int = 0
    ) -> Callable[[int], Awaitable[Any]]:
        """``op(i)`` for the open-loop driver: operation ``i + offset``, by the PM."""

        async def complete(i: int) -> Any:
            project, line_item = self.target(i + offset)
            user = self.seeded.members[project]["project_manager"]
            return await ctx.complete(http, project, line_item, user)

        return complete
