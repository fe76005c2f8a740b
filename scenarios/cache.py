"""``cache``: a user's alert list, served from the Redis cache, is never stale.

The seed caches each user's ACTIVE alerts in Redis (``alerts:<user>``, 60 s
TTL) and must invalidate it when they change. Here every project walks a few
steps; around each completion, the users whose lists it changes (the
previous step's assignee and the next step's) read their list before it
(filling the cache; the next step's assignee's list is still cached from the
previous step, so these reads are served from the cache) and right after the
completion's response. Every read must show exactly this project's alerts
that user should have then: before, the step being completed; after, the
completed alert gone and the new one present. A user reads their own writes
even through the cache. The seed's TTL-only cache (``--flaw stale_cache``) serves the
old lists and fails here. Last, with Redis out of reach (its proxy down),
the assignees of ten projects' current steps read their lists: each must
be answered, right, from Postgres (``cache_fallback``); a cache without
that fallback (``--flaw no_cache_fallback``) fails here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, ClassVar

from harness.checks import CheckResult
from harness.clients import AppHttp, HttpResponse
from harness.faults import ToxiproxyClient, down
from harness.scenario import ScenarioContext
from harness.slo import only_slos
from harness.stack import _sql

__all__ = ["CacheScenario"]

MAX_PROJECTS = 30
STEPS = 4
#: Projects whose current assignee reads their list with Redis down.
FALLBACK_PROJECTS = 10


class CacheScenario:
    name = "cache"
    summary = (
        "users read their alert list (cached in Redis) before and right after each "
        "completion that changes it: never a stale list"
    )
    max_projects = MAX_PROJECTS
    proxy_faults = ("redis",)
    checks: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "no_duplicates": {},
        "linearizable": {},
        "right_alert": {},
        "no_leaks": {},
        "monotonic_reads": {},
    }
    # Only duplication_rate applies: no sustained load to judge latency on.
    slos: ClassVar[Mapping[str, Mapping[str, Any]]] = only_slos("duplication_rate")

    async def run(self, ctx: ScenarioContext) -> None:
        projects = ctx.seeded.project_ids[:MAX_PROJECTS]
        tally = {"reads": 0, "after_completion": 0, "stale": 0, "hits": 0, "errors": 0}
        stale: list[dict[str, Any]] = []
        async with ctx.http() as http:
            generated = await ctx.generate_recorded(http, projects)
            if generated.type != "ok":
                raise RuntimeError(f"generation failed: {generated.error}")
            await asyncio.gather(*(self._walk(ctx, http, p, tally, stale) for p in projects))
            ctx.own_checks.append(await self._without_redis(ctx, http, projects))
        await ctx.snapshot_alerts()
        ctx.extra["reads"] = tally
        ok = tally["stale"] == 0 and tally["errors"] == 0 and tally["reads"] > 0
        ctx.own_checks.append(
            CheckResult.build(
                "read_your_writes",
                violations=stale,
                valid=ok if tally["hits"] else "unknown",  # no hit: the cache was not tested
                summary=(
                    f"{tally['stale']} stale of {tally['reads']} checked reads"
                    f" ({tally['after_completion']} right after a completion);"
                    f" {tally['hits']} served from the cache; {tally['errors']} failed reads"
                ),
                counts={k: float(v) for k, v in tally.items()},
            )
        )

    async def _without_redis(
        self, ctx: ScenarioContext, http: AppHttp, projects: list[int]
    ) -> CheckResult:
        """With Redis out of reach, each current step's assignee still reads
        their list, right, from Postgres: the cache is an optimisation."""
        rows = await asyncio.to_thread(
            _sql.fetch,
            ctx.direct_dsn,
            "SELECT project_id, current_line_item_id FROM project_workflow_trackers"
            " WHERE project_id = ANY($1::bigint[])",
            projects[:FALLBACK_PROJECTS],
        )
        roles = {li.id: li.responsible_role for li in ctx.seeded.line_items}
        tally = {"reads": 0, "after_completion": 0, "stale": 0, "hits": 0, "errors": 0}
        wrong: list[dict[str, Any]] = []
        async with ToxiproxyClient(ctx.toxiproxy.url) as tp:
            outage = down(tp, ctx.toxiproxy.proxy_name("redis"))
            outage.on_event = ctx.record_fault
            async with outage:
                for row in sorted(rows, key=lambda r: r["project_id"]):
                    item = row["current_line_item_id"]
                    if item is None:
                        continue
                    project = row["project_id"]
                    user = ctx.seeded.members[project][roles[item]]
                    await self._check(ctx, http, project, user, {item}, tally, wrong)
        failed = tally["errors"] + tally["stale"]
        ctx.extra["reads_without_redis"] = tally
        return CheckResult.build(
            "cache_fallback",
            violations=[*wrong, *([{"failed_reads": tally["errors"]}] if tally["errors"] else [])],
            valid=(failed == 0) if tally["reads"] else "unknown",
            summary=(
                f"with Redis down, {tally['reads'] - failed} of {tally['reads']} reads answered"
                f" right from Postgres ({tally['errors']} failed, {tally['stale']} wrong)"
            ),
            counts={k: float(v) for k, v in tally.items()},
        )

    async def _read(
        self, ctx: ScenarioContext, http: AppHttp, user: int, tally: dict[str, int]
    ) -> HttpResponse | None:
        """One recorded read of ``user``'s list; None (and an error) if it failed."""
        op = ctx.history.invoke(f"u{user}", "read_alerts", {"user_id": user})
        try:
            response = await http.get(
                f"/api/users/{user}/alerts",
                headers=ctx.auth(user),
            )
        except Exception as exc:
            ctx.history.info(op, f"{type(exc).__name__}: {exc}")
            tally["errors"] += 1
            return None
        if response.status != 200 or not isinstance(response.body, dict):
            ctx.history.info(op, f"{response.status} {response.detail()}")
            tally["errors"] += 1
            return None
        cache = response.headers.get("X-Cache") or response.headers.get("x-cache")
        alerts = response.body["alerts"]
        items = [
            {"id": a.get("id"), "projectId": a.get("projectId"), "stepId": a.get("stepId")}
            for a in alerts
            if isinstance(a, dict)
        ]
        # The ids read: no_leaks checks each is the reader's, monotonic_reads
        # that no read goes back in time.
        ctx.history.ok(op, {"alerts": len(alerts), "items": items, "cache": cache})
        return response

    async def _walk(
        self,
        ctx: ScenarioContext,
        http: AppHttp,
        project: int,
        tally: dict[str, int],
        stale: list[dict[str, Any]],
    ) -> None:
        items = ctx.seeded.active_line_items
        members = ctx.seeded.members[project]
        for step in range(min(STEPS, len(items) - 1)):
            done, nxt = items[step], items[step + 1]
            before, after = members[done.responsible_role], members[nxt.responsible_role]
            # Before the completion: the done step's alert is the `before` user's.
            # These reads fill the cache; the `after` user's list was cached by
            # the previous step's last read, so this is where hits show.
            for user in sorted({before, after}):
                expected = {done.id} if user == before else set()
                await self._check(ctx, http, project, user, expected, tally, stale)
            with contextlib.suppress(Exception):  # recorded by complete_recorded
                op = await ctx.complete_recorded(
                    http, f"c{project}", project, done.id, members["project_manager"]
                )
                if op.type != "ok":
                    continue
            # Right after the response: the done alert gone, the new one there.
            for user in sorted({before, after}):
                expected = {nxt.id} if user == after else set()
                tally["after_completion"] += 1
                await self._check(ctx, http, project, user, expected, tally, stale)

    async def _check(
        self,
        ctx: ScenarioContext,
        http: AppHttp,
        project: int,
        user: int,
        expected: set[int],
        tally: dict[str, int],
        stale: list[dict[str, Any]],
    ) -> None:
        """Read ``user``'s list; this project's ACTIVE steps in it must be ``expected``."""
        response = await self._read(ctx, http, user, tally)
        tally["reads"] += 1
        if response is None:
            return
        cache = response.headers.get("X-Cache") or response.headers.get("x-cache")
        tally["hits"] += cache == "hit"
        seen = {a["stepId"] for a in response.body["alerts"] if a["projectId"] == project}
        if seen != expected:
            tally["stale"] += 1
            stale.append(
                {
                    "user_id": user,
                    "project_id": project,
                    "expected_steps": sorted(expected),
                    "read_steps": sorted(seen),
                    "cache": cache,
                }
            )
