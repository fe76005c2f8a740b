"""``rollback``: a completion that fails at its last moment leaves no trace, and sends nothing.

The seed's "verify transaction rollback on failures" item. The app is started
with fault injection: a seeded share of completions fails just before its
commit (answered 503). Every member of every project is connected; each
project walks its workflow, retrying a step until it commits. Afterwards
the database must hold exactly what the committed completions wrote (tracker
positions, one ACTIVE alert per project at the right step, no alert for a
rolled-back attempt), and no client may have been told about an alert that
was rolled back: the seed's emit-before-commit (``--flaw
emit_before_commit``) fails here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from harness.checks import CheckResult
from harness.clients import AppHttp, HttpStatusError, Subscriber
from harness.scenario import ScenarioContext
from harness.stack import _sql
from harness.targets.launch import Injection

__all__ = ["RollbackScenario"]

MAX_PROJECTS = 20
STEPS = 8
ROLLBACK_RATE = 0.3
MAX_ATTEMPTS = 20


class RollbackScenario:
    name = "rollback"
    summary = (
        f"{ROLLBACK_RATE:.0%} of completions fail just before commit; the database keeps "
        "exactly the committed work and clients hear only of committed alerts"
    )
    needs = ("fault_injection",)
    inject = Injection(rollback_rate=ROLLBACK_RATE)
    max_projects = MAX_PROJECTS
    checks: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "no_phantoms": {},
        "delivery": {},
        "no_duplicates": {},
        "no_leaks": {},
        "linearizable": {},
        "right_alert": {},
        "exactly_once": {},
    }
    slos: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "generation_p99_ms": {"enabled": False},
        "queries_per_request": {"enabled": False},
        "reconnection_p99_ms": {"enabled": False},
    }

    async def run(self, ctx: ScenarioContext) -> None:
        seeded = ctx.seeded
        projects = seeded.project_ids[:MAX_PROJECTS]
        fleet = ctx.fleet(
            [
                Subscriber(user, (p,))
                for p in projects
                for user in sorted(set(seeded.members[p].values()))
            ]
        )
        await fleet.start()
        async with ctx.http() as http:
            outcomes = await asyncio.gather(*(self._walk(ctx, http, p) for p in projects))
        committed = {p: n for p, (n, _) in zip(projects, outcomes, strict=True)}
        rolled_back = sum(r for _, r in outcomes)

        # Give in-flight events (including any phantom) time to arrive.
        await ctx.settle()
        await ctx.snapshot_alerts()
        await ctx.close_fleets()
        ctx.own_checks.append(await self._consistency(ctx, committed, rolled_back))

    async def _walk(self, ctx: ScenarioContext, http: AppHttp, project: int) -> tuple[int, int]:
        """Complete STEPS steps, retrying each until it commits: (committed, rolled back)."""
        user = ctx.seeded.members[project]["project_manager"]
        committed = rolled_back = 0
        for item in ctx.seeded.active_line_items[:STEPS]:
            for _attempt in range(MAX_ATTEMPTS):
                try:
                    done = await ctx.complete_recorded(
                        http, f"w{project}", project, item.id, user, fail_statuses=(503,)
                    )
                except HttpStatusError:
                    break  # recorded 'info': the outcome is unknown; stop this project
                if done.type == "ok":
                    committed += 1
                    break
                if done.error is not None and done.error.startswith("503"):
                    rolled_back += 1  # the injected rollback: try the step again
                    continue
                break  # 409: not the current step any more; nothing to retry
        return committed, rolled_back

    async def _consistency(
        self, ctx: ScenarioContext, committed: dict[int, int], rolled_back: int
    ) -> CheckResult:
        items = ctx.seeded.active_line_items
        rows = await asyncio.to_thread(
            _sql.fetch,
            ctx.direct_dsn,
            "SELECT t.project_id, t.current_line_item_id,"
            " (SELECT count(*) FROM workflow_alerts a WHERE a.project_id = t.project_id) AS alerts,"
            " (SELECT array_agg(step_id) FROM workflow_alerts a"
            "   WHERE a.project_id = t.project_id AND a.status = 'ACTIVE') AS active"
            " FROM project_workflow_trackers t WHERE t.project_id = ANY($1::bigint[])",
            list(committed),
        )
        problems = []
        for row in rows:
            n = committed[row["project_id"]]
            want_step = items[n].id if n < len(items) else None
            # Each committed completion inserted exactly one alert (the next step's).
            if row["current_line_item_id"] != want_step or row["alerts"] != n:
                problems.append(
                    {
                        "project_id": row["project_id"],
                        "committed": n,
                        "tracker_at": row["current_line_item_id"],
                        "expected_at": want_step,
                        "alerts": row["alerts"],
                    }
                )
            elif n and list(row["active"] or []) != [want_step]:
                problems.append(
                    {"project_id": row["project_id"], "active": row["active"], "want": want_step}
                )
        return CheckResult(
            name="rollback_consistency",
            valid=not problems and rolled_back > 0,
            summary=(
                f"{sum(committed.values())} committed and {rolled_back} rolled-back completions;"
                f" {len(problems)} project(s) whose state differs from the committed work"
                + ("" if rolled_back else "; no rollback was injected, nothing was tested")
            ),
            counts={
                "committed": sum(committed.values()),
                "rolled_back": rolled_back,
                "inconsistent_projects": len(problems),
            },
            counterexamples=tuple(problems[:20]),
        )
