"""``delivery``: every event type reaches exactly the right rooms, and only committed work.

The seed's "validate WebSocket event delivery" item, small and strict. Every
member of every project is connected and subscribed to their project, and
also asks to join a foreign project's room (which must be refused). Every
project walks its workflow; some completions are sent twice at once, so one
of each pair is rolled back (409) and must send nothing. Judged by
``delivery`` (new_alert to the assignee), ``no_leaks`` (nothing to
non-members or other users), ``no_phantoms`` (nothing for rolled-back work),
``no_duplicates``, the end-to-end latency, and this scenario's own count of
project-room events (``alerts_refresh`` and ``workflow_updated`` to every
subscribed member).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, ClassVar

from harness.checks import CheckResult
from harness.clients import AppHttp, Subscriber
from harness.history import Commit, Receive
from harness.scenario import ScenarioContext, announced_alert

__all__ = ["DeliveryScenario"]

MAX_PROJECTS = 20
STEPS = 6


class DeliveryScenario:
    name = "delivery"
    summary = (
        "every member connected, foreign rooms refused, racing completions; "
        "each event type to exactly the right rooms, nothing for rolled-back work"
    )
    max_projects = MAX_PROJECTS
    checks: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "delivery": {},
        "no_leaks": {},
        "no_phantoms": {},
        "no_duplicates": {},
        "delivery_latency": {},
        "generation_latency": {"requests": ("complete",)},
        "linearizable": {},
        "right_alert": {},
        "exactly_once": {},
    }
    slos: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        # A correctness scenario: latency is measured and shown, and judged
        # by the load scenario's SLOs.
        "reconnection_p99_ms": {"enabled": False},
        "queries_per_request": {"enabled": False},
        "generation_p99_ms": {"enabled": False},
    }

    async def run(self, ctx: ScenarioContext) -> None:
        seeded = ctx.seeded
        projects = seeded.project_ids[:MAX_PROJECTS]
        rng = random.Random(ctx.params.seed)
        members = {p: sorted(set(seeded.members[p].values())) for p in projects}
        subscribers = []
        for p in projects:
            foreign = rng.choice([q for q in projects if q != p]) if len(projects) > 1 else None
            for user in members[p]:
                rooms = (p,) if foreign is None else (p, foreign)
                subscribers.append(Subscriber(user, rooms))
        fleet = ctx.fleet(subscribers)
        started = await fleet.start()
        refused = sum(len(v) for v in started.forbidden.values())
        asked = sum(len(s.projects) - 1 for s in subscribers)

        async with ctx.http() as http:
            await asyncio.gather(*(self._walk(ctx, http, p, rng.random() < 0.5) for p in projects))

        commits = [c for c in ctx.history.of_type(Commit)]

        def project_events_arrived() -> bool:
            return self._room_counts(ctx, commits, members)["missing"] == 0

        ctx.extra["drained"] = await ctx.drain(project_events_arrived)
        await ctx.snapshot_alerts()
        await ctx.close_fleets()

        counts = self._room_counts(ctx, commits, members)
        refusals_ok = refused == asked
        ok = counts["missing"] == 0 and counts["duplicated"] == 0 and refusals_ok
        ctx.own_checks.append(
            CheckResult(
                name="project_rooms",
                valid=ok,
                summary=(
                    f"{counts['expected']} project-room events expected, {counts['missing']} "
                    f"missing, {counts['duplicated']} duplicated; {refused} of {asked} "
                    "foreign-room joins refused"
                ),
                counts={**counts, "foreign_joins": asked, "refused": refused},
            )
        )

    async def _walk(self, ctx: ScenarioContext, http: AppHttp, project: int, race: bool) -> None:
        """Complete the first steps of one project; with ``race``, each step twice at once."""
        user = ctx.seeded.members[project]["project_manager"]
        for item in ctx.seeded.active_line_items[:STEPS]:
            attempts = 2 if race else 1

            async def attempt(item_id: int = item.id) -> None:
                # Recorded 'info' by complete_recorded; the walk goes on.
                with contextlib.suppress(Exception):
                    await ctx.complete_recorded(http, f"w{project}", project, item_id, user)

            await asyncio.gather(*(attempt() for _ in range(attempts)))

    @staticmethod
    def _room_counts(
        ctx: ScenarioContext, commits: list[Commit], members: dict[int, list[int]]
    ) -> dict[str, int]:
        got: dict[tuple[int, int, str], int] = defaultdict(int)
        for r in ctx.history.of_type(Receive):
            alert_id = announced_alert(r)
            if r.event in ("alerts_refresh", "workflow_updated") and alert_id is not None:
                got[(int(r.user_id), alert_id, r.event)] += 1
        expected = missing = duplicated = 0
        for c in commits:
            for user in members.get(int(c.project_id), []):
                for event in ("alerts_refresh", "workflow_updated"):
                    expected += 1
                    n = got.get((user, int(c.alert_id), event), 0)
                    missing += n == 0
                    duplicated += n > 1
        return {"expected": expected, "missing": missing, "duplicated": duplicated}
