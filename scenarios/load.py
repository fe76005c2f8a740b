"""``load``: many projects, their assignees connected, completions at a sustained rate.

The seed's first testing-checklist item ("load test with 1000+ concurrent
projects"). Users come from a pool as large as the number of projects (a user is a
member of about four projects). Every project's assignees of the coming
steps are connected (one client per user) and subscribed to their projects; batch generation
creates every project's first alert; then completions arrive open-loop at
``--rate`` for ``--duration``, project after project, round after round.
Judged by every checker of the history and the SLOs except reconnection
(there is no fault here).

With ``--workers N`` (or ``alertbench locust``) the subscribers and the
generator are sharded over N processes, each with a slice of the projects
(see :mod:`harness.scale`); the merged history is judged the same way.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any, ClassVar

from harness.clients import AppHttp, Subscriber
from harness.history import Commit, Receive
from harness.metrics.pgstat import DEFAULT_EXCLUDE
from harness.scenario import RunParams, ScenarioContext, announced_alert
from harness.workload import constant_rate, run_open_loop
from scenarios._round_robin import RoundRobin

__all__ = ["LoadScenario"]

_GENERATE_CHUNK = 1000
#: Warm-up at the measured rate before the clock starts (at most a fifth of
#: --duration): the first second otherwise carries pools and caches filling.
WARMUP_S = 2.0


def load_plan(
    params: RunParams, workload: RoundRobin, rate: float
) -> tuple[int, int, list[Subscriber]]:
    """How many warm-up operations, how many in all, and who connects, for a
    load of ``rate`` per second (a shard's share in a sharded run).

    A warm-up at the same rate runs first (its own operation name, so the
    checkers of the measured "complete" leave it out), then the measured
    load; every round needs a next step in every project's workflow. One
    client per user who will be assigned an alert by a completion,
    subscribed to the project's room: with one round, one client per project
    the workload touches (``--subscribers all``: every member)."""
    warmup = math.ceil(rate * min(WARMUP_S, params.duration_s / 5))
    total = min(warmup + max(1, math.ceil(rate * params.duration_s)), workload.capacity)
    return warmup, total, workload.subscribers(total, everyone=params.subscribers == "all")


class LoadScenario:
    name = "load"
    summary = (
        "N projects, one subscriber per assignee, batch generation for all, "
        "open-loop completions at a sustained rate"
    )
    checks: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "no_duplicates": {},
        "delivery": {},
        "no_phantoms": {},
        "no_leaks": {},
        # The relay's liveness probe is not work a request causes.
        "queries_per_request": {"exclude": (*DEFAULT_EXCLUDE, r"^SELECT clock_timestamp\(\)$")},
        "generation_latency": {"requests": ("complete",)},
        "delivery_latency": {},
        "linearizable": {},
        "right_alert": {},
        "exactly_once": {},
    }
    slos: ClassVar[Mapping[str, Mapping[str, Any]]] = {"reconnection_p99_ms": {"enabled": False}}
    #: As many users as projects, each a member of about four projects: 1,000
    #: projects have (at most) 1,000 subscribers, however many rounds run.
    user_pool = True

    async def run(self, ctx: ScenarioContext) -> None:
        params = ctx.params
        if params.workers:
            from harness.scale import run_sharded

            await run_sharded(ctx)
            return
        projects = ctx.seeded.project_ids
        workload = RoundRobin(ctx.seeded)
        warmup, total, subscribers = load_plan(params, workload, params.rate_per_s)
        users = {s.user_id for s in subscribers}
        fleet = ctx.fleet(subscribers)
        started = await fleet.start()
        ctx.extra["fleet"] = {
            "clients": len(subscribers),
            "connected": started.connected,
            "failed": len(started.failed),
            "connect_s": round(started.seconds, 2),
        }

        connected = users

        def delivered() -> bool:
            commits = {
                c.alert_id for c in ctx.history.of_type(Commit) if c.assignee_id in connected
            }
            got = {
                r.alert_id
                for r in ctx.history.of_type(Receive)
                if r.event == "new_alert" and r.alert_id is not None
            }
            return commits <= got

        def announced() -> bool:
            # Every generated alert's last room event arrived: the relay is idle.
            generated = {c.alert_id for c in ctx.history.of_type(Commit) if c.op_id is not None}
            got = {
                announced_alert(r)
                for r in ctx.history.of_type(Receive)
                if r.event == "workflow_updated"
            }
            return generated <= got

        async with ctx.http(max_connections=256) as http:
            await self._warm_up(ctx, http, sorted(users))
            if warmup:
                await run_open_loop(
                    constant_rate(params.rate_per_s, warmup / params.rate_per_s, seed=params.seed),
                    workload.operation(ctx, http),
                    history=ctx.history,
                    max_in_flight=512,
                    deadline_s=warmup / params.rate_per_s + 30.0,
                    f="complete_warmup",
                    describe=workload.describe,
                )
            # Statements are counted from here: batch generation and completions.
            await ctx.snapshot_pg_stat("before")
            await self._generate_all(ctx, http, projects)
            # Let the generation burst arrive before the sustained load, so
            # neither disturbs the other's figures.
            ctx.extra["drained_generation"] = await ctx.drain(announced)
            # A phase of its own: queries_per_request judges each phase.
            await ctx.snapshot_pg_stat("generated")
            measured = total - warmup
            with ctx.measuring_resources():
                ctx.generator = await run_open_loop(
                    constant_rate(
                        params.rate_per_s, measured / params.rate_per_s, seed=params.seed
                    ),
                    workload.operation(ctx, http, offset=warmup),
                    history=ctx.history,
                    max_in_flight=512,
                    deadline_s=measured / params.rate_per_s + 30.0,
                    f="complete",
                    describe=lambda i: workload.describe(i + warmup),
                )
            await ctx.snapshot_pg_stat("after")

        # Drain: every committed alert whose assignee is connected has arrived.
        ctx.extra["drained"] = await ctx.drain(delivered)
        await ctx.snapshot_alerts()
        await ctx.close_fleets()

    async def _warm_up(self, ctx: ScenarioContext, http: AppHttp, users: list[int]) -> None:
        """Open the connections a steady state uses (HTTP keep-alive, the app's
        database pool) before the clock starts: reads of users' alert lists,
        32 at a time, which are not part of the measured workload."""
        for start in range(0, min(len(users), 96), 32):
            batch = users[start : start + 32]
            await asyncio.gather(
                *(
                    http.get(
                        f"/api/users/{u}/alerts",
                        headers=ctx.auth(u),
                    )
                    for u in batch
                )
            )

    async def _generate_all(self, ctx: ScenarioContext, http: AppHttp, projects: list[int]) -> None:
        """Batch generation for every project (the first step's alerts)."""
        for start in range(0, len(projects), _GENERATE_CHUNK):
            await ctx.generate_recorded(http, projects[start : start + _GENERATE_CHUNK])
