"""``chaos``: load with subscribers while a seeded nemesis breaks every hop.

Completions arrive open-loop through the ``app`` proxy, the assignees are
connected through it too, and a nemesis runs a seeded schedule of faults,
one at a time and, every third one, overlapping the previous: on the
Postgres hop (latency 50-200 ms, connections reset mid-transaction, data
swallowed until a timeout, down), on the Redis hop (down, latency), on the
app hop (down, reset, slow close, a bandwidth cap), and on the relay's
``LISTEN`` connection (terminated by Postgres while an alert's commit is
held back, so that it commits while the relay is away: a relay that does
not replay what it missed, ``--flaw no_replay``, loses it). Then everything
heals, the clients come back and catch up, and the whole history is judged:
nothing lost (after catch-up), duplicated, phantom or leaked; the database
consistent (one completion chain per project, the right alert to the right
person); every client caught up within the reconnection SLO.

Requests whose outcome the client could not know (a reset connection, a
timeout) are recorded ``info`` and resolved against the final read, as in
Jepsen. The report has a table per fault: requests ok / failed /
indeterminate while it lasted, reconnection and catch-up p50/p99 of the
clients it dropped, and the time from its heal until every alert committed
during it had reached its connected assignee.

``--duration`` stretches the schedule's gaps; ``--projects`` and ``--rate``
size the load.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg

from harness.clients import AppHttp
from harness.clients.subscriber import ReconnectPolicy
from harness.faults import (
    FaultEvent,
    ToxiproxyClient,
    bandwidth,
    down,
    latency,
    reset_peers,
    slow_close,
    timeout,
)
from harness.history import Commit, FaultMark, Op, Receive, Session
from harness.metrics import LatencyRecorder
from harness.scenario import ScenarioContext, wait_until
from harness.workload import OpFailed, constant_rate, run_open_loop
from harness.workload.barrier import CommitGate
from scenarios._round_robin import RoundRobin
from scenarios.network import with_rooms

__all__ = ["FAULTS", "ChaosScenario", "nemesis_schedule"]

MAX_PROJECTS = 200
MAX_RATE = 30.0
FAULT_S = 2.0
GAP_S = 1.0
POLICY = ReconnectPolicy(initial_delay_s=0.5, max_delay_s=2.0)
#: Bound of every wait of the relay fault's set-up.
WAIT_S = 15.0
#: How long the clients may take to be back after the last heal.
BACK_S = 30.0

FAULTS: tuple[str, ...] = (
    "pg_latency",
    "pg_reset",
    "pg_timeout",
    "pg_down",
    "redis_down",
    "redis_latency",
    "app_down",
    "app_reset",
    "app_slow_close",
    "app_bandwidth",
    "relay_listen",
)
"""Every fault the nemesis knows, by name (the proxy's hop, then what)."""

# Every backend of the target in this database but the ones waiting for a
# lock (the held completion) and the harness's own (the gate's, this one):
# the relay's LISTEN connection among them, however the target names it.
_TARGET_BACKENDS = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND pid <> ALL($1::int[])
  AND backend_type = 'client backend' AND coalesce(wait_event_type, '') <> 'Lock'
"""


@dataclass(frozen=True)
class Step:
    """One fault of the schedule: when it starts (s after the load) and for how long."""

    at_s: float
    fault: str
    for_s: float


def nemesis_schedule(seed: int, *, gap_s: float = GAP_S) -> list[Step]:
    """Every fault once, in a seeded order; every third one starts before the
    previous one heals (overlapping), the others after a gap."""
    order = list(FAULTS)
    random.Random(seed).shuffle(order)
    steps: list[Step] = []
    t = 1.0
    for i, fault in enumerate(order):
        for_s = 0.0 if fault == "relay_listen" else FAULT_S
        if steps and i % 3 == 2:
            prev = steps[-1]
            t = prev.at_s + max(0.0, prev.for_s - 1.0)
        steps.append(Step(round(t, 3), fault, for_s))
        t = t + for_s + gap_s
    return steps


class ChaosScenario:
    name = "chaos"
    summary = (
        "load with subscribers while a seeded nemesis faults every hop (Postgres, Redis, "
        "app, the relay's LISTEN); nothing lost, duplicated, phantom or leaked, the "
        "database consistent, every client caught up"
    )
    max_projects = MAX_PROJECTS
    user_pool = True
    proxy_faults = ("postgres", "redis", "app")
    checks: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "delivery": {},
        "catch_up": {},
        "exactly_once": {},
        "no_phantoms": {},
        "no_leaks": {},
        "no_duplicates": {},
        "linearizable": {},
        "right_alert": {},
        "reconnection": {"until": "caught_up"},
    }
    # Latency under planned faults is not the SLO's business.
    slos: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "generation_p99_ms": {"enabled": False},
        "queries_per_request": {"enabled": False},
    }

    async def run(self, ctx: ScenarioContext) -> None:
        params = ctx.params
        gap = max(GAP_S, (params.duration_s - len(FAULTS) * FAULT_S) / len(FAULTS))
        steps = nemesis_schedule(params.seed, gap_s=gap)
        load_s = max(s.at_s + s.for_s for s in steps) + 2.0
        # The last project is the relay fault's own, out of the round robin.
        held = _idle_project(ctx)
        kept = [p for p in ctx.seeded.project_ids if p != held]
        workload = RoundRobin(dataclasses.replace(ctx.seeded, project_ids=kept))
        rate = min(params.rate_per_s, MAX_RATE)
        total = min(math.ceil(rate * load_s), workload.capacity)
        subscribers = workload.subscribers(total)
        if held is not None:
            items = ctx.seeded.active_line_items
            user = ctx.seeded.members[held][items[1].responsible_role]
            subscribers = with_rooms(subscribers, user, (held,))
        fleet = ctx.fleet(subscribers, policy=POLICY)
        await fleet.start()
        done_faults: list[str] = []
        async with ctx.http() as http, ToxiproxyClient(ctx.toxiproxy.url) as tp:
            walker = Walker(ctx, http, kept)
            load = run_open_loop(
                constant_rate(rate, total / rate, seed=params.seed),
                walker.operation,
                history=ctx.history,
                max_in_flight=256,
                deadline_s=total / rate + 60.0,
                f="complete",
                describe=walker.describe,
            )
            with ctx.measuring_resources():
                ctx.generator, _ = await asyncio.gather(
                    load, self._nemesis(ctx, tp, steps, done_faults)
                )
        clients = list(fleet.clients.values())

        def back() -> bool:
            return all(c.subscribed.is_set() for c in clients)

        # After a storm of faults every client must come back: a bound of its
        # own, longer than a plain drain (the reconnection SLO judges the time).
        ctx.extra["all_back"] = await wait_until(back, max(ctx.params.drain_s, BACK_S))
        await ctx.settle()
        await ctx.snapshot_alerts()
        await ctx.close_fleets()
        ctx.extra["chaos"] = {
            "schedule": [s.__dict__ for s in steps],
            "faults": fault_table(ctx),
            "skipped": [f for f in FAULTS if f not in done_faults],
        }

    async def _nemesis(
        self, ctx: ScenarioContext, tp: ToxiproxyClient, steps: list[Step], done: list[str]
    ) -> None:
        loop = asyncio.get_running_loop()
        origin = loop.time()

        async def one(step: Step) -> None:
            await asyncio.sleep(max(0.0, origin + step.at_s - loop.time()))  # the schedule
            if await self._apply(ctx, tp, step):
                done.append(step.fault)

        await asyncio.gather(*(one(s) for s in steps))

    async def _apply(self, ctx: ScenarioContext, tp: ToxiproxyClient, step: Step) -> bool:
        if step.fault == "relay_listen":
            return await self._relay_listen(ctx)
        proxy = ctx.toxiproxy.proxy_name
        makers: dict[str, Callable[[], Any]] = {
            "pg_latency": lambda: latency(
                tp, proxy("postgres"), ms=125, jitter_ms=75, stream="both", for_s=step.for_s
            ),
            "pg_reset": lambda: reset_peers(tp, proxy("postgres"), for_s=step.for_s),
            "pg_timeout": lambda: timeout(tp, proxy("postgres"), timeout_ms=500, for_s=step.for_s),
            "pg_down": lambda: down(tp, proxy("postgres"), for_s=step.for_s),
            "redis_down": lambda: down(tp, proxy("redis"), for_s=step.for_s),
            "redis_latency": lambda: latency(tp, proxy("redis"), ms=100, for_s=step.for_s),
            "app_down": lambda: down(tp, proxy("app"), for_s=step.for_s),
            "app_reset": lambda: reset_peers(tp, proxy("app"), for_s=step.for_s),
            "app_slow_close": lambda: slow_close(tp, proxy("app"), delay_ms=500, for_s=step.for_s),
            "app_bandwidth": lambda: bandwidth(tp, proxy("app"), kb_per_s=20, for_s=step.for_s),
        }
        fault = makers[step.fault]()
        history = ctx.history

        def record(event: FaultEvent) -> None:
            history.fault(
                event.phase,
                kind=step.fault,
                label=event.label,
                target=event.proxy,
                mono_s=event.at_s,
            )

        fault.on_event = record
        await fault.run()
        return True

    async def _relay_listen(self, ctx: ScenarioContext) -> bool:
        """Terminate the target's Postgres connections (its relay's LISTEN
        among them) while one completion is held uncommitted, then let it
        commit at once: its alert commits while the relay is away, and
        reaches its assignee only if the relay replays what it missed."""
        project = _idle_project(ctx)
        if project is None:
            return False
        step = ctx.seeded.active_line_items[0].id
        manager = ctx.seeded.members[project]["project_manager"]
        label = "terminate the target's Postgres connections (its LISTEN among them)"
        conn = await asyncpg.connect(ctx.direct_dsn, timeout=10.0)
        try:
            async with (
                AppHttp(ctx.direct_app_urls[0], timeout_s=WAIT_S * 2) as http,
                CommitGate(ctx.direct_dsn, "projects", [project]) as gate,
            ):
                held = asyncio.create_task(
                    ctx.complete_recorded(http, f"relay{project}", project, step, manager)
                )
                await gate.wait_for_blocked(1, timeout_s=WAIT_S)
                ours = [int(await conn.fetchval("SELECT pg_backend_pid()")), await gate.pid()]
                ctx.history.fault("start", kind="relay_listen", label=label, target="postgres")
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM (" + _TARGET_BACKENDS + ") b", ours
                )
                await gate.open()
                await _quietly(held)
                ctx.history.fault("heal", kind="relay_listen", label=label, target="postgres")
        finally:
            await conn.close(timeout=10.0)
        return True


class Walker:
    """The chaos workload: operation ``i`` completes the current step of
    project ``i mod N`` as far as the harness knows it, learnt from its
    successes and from the item a 409 names (the contract's optional
    ``currentLineItemId``). After an indeterminate outcome it sends the same
    step again: a 409 then says the first one happened. So the workflows go
    on moving through the faults, and every fault meets commits."""

    def __init__(self, ctx: ScenarioContext, http: AppHttp, projects: list[int]) -> None:
        self._ctx = ctx
        self._http = http
        self._projects = projects
        order = [li.id for li in ctx.seeded.active_line_items]
        self._next: dict[int, int | None] = dict(zip(order, [*order[1:], None], strict=True))
        self._current: dict[int, int | None] = {p: order[0] for p in projects}
        self._pending: dict[int, tuple[int, int]] = {}

    def describe(self, i: int) -> dict[str, int]:
        """The invoke value of operation ``i``, which fixes what it will send."""
        n = len(self._projects)
        for k in range(n):  # the next project in turn that has a step left
            project = self._projects[(i + k) % n]
            item = self._current[project]
            if item is not None:
                self._pending[i] = (project, item)
                return {"project_id": project, "line_item_id": item}
        raise RuntimeError("every project's workflow is complete")

    async def operation(self, i: int) -> Any:
        project, item = self._pending.pop(i)
        manager = self._ctx.seeded.members[project]["project_manager"]
        try:
            body = await self._ctx.complete(self._http, project, item, manager)
        except OpFailed as exc:
            named = exc.value.get("current_line_item_id", item) if exc.value else item
            if self._current[project] == item:
                self._current[project] = named
            raise
        if self._current[project] == item:
            self._current[project] = self._next[item]
        return body


async def _quietly(task: Awaitable[Any]) -> None:
    try:
        await asyncio.wait_for(task, WAIT_S * 2)
    except Exception:  # recorded 'info' by complete_recorded
        return


def _idle_project(ctx: ScenarioContext) -> int | None:
    """The seeded project the round robin leaves alone for the relay fault:
    the last one (None with a single project, or a one-step workflow)."""
    if len(ctx.seeded.project_ids) < 2 or len(ctx.seeded.active_line_items) < 2:
        return None
    return ctx.seeded.project_ids[-1]


def fault_table(ctx: ScenarioContext) -> list[dict[str, Any]]:
    """Per fault: requests ok / failed / indeterminate that started while it
    lasted, reconnect and catch-up p50/p99 of the clients dropped during it,
    and the time from its heal until every alert committed during it had
    reached its connected assignees."""
    events = list(ctx.history)
    starts: dict[str, FaultMark] = {}
    windows: list[tuple[str, str, float, float]] = []
    for e in events:
        if isinstance(e, FaultMark):
            if e.phase == "start":
                starts[e.label] = e
            elif e.label in starts:
                s = starts.pop(e.label)
                windows.append((s.kind, s.label, s.mono_s, e.mono_s))
    invokes = {
        e.op_id: e for e in events if isinstance(e, Op) and e.type == "invoke" and e.f == "complete"
    }
    ends = {e.op_id: e for e in events if isinstance(e, Op) and e.type != "invoke"}
    sessions = [e for e in events if isinstance(e, Session)]
    receipts: dict[tuple[str, str], float] = {}
    for e in events:
        if isinstance(e, Receive) and e.event == "new_alert" and e.alert_id is not None:
            receipts.setdefault((str(e.user_id), str(e.alert_id)), e.mono_s)
    commits = [e for e in events if isinstance(e, Commit)]
    rows = []
    for kind, label, t0, t1 in windows:
        outcomes = {"ok": 0, "fail": 0, "info": 0}
        for op_id, inv in invokes.items():
            if t0 <= inv.mono_s <= t1:
                end = ends.get(op_id)
                outcomes[end.type if end is not None else "info"] += 1
        reconnect = LatencyRecorder(f"{label} reconnect")
        caught = LatencyRecorder(f"{label} caught up")
        for d in sessions:
            if d.type != "disconnect" or not t0 <= d.mono_s <= t1 + 0.5:
                continue
            after = [s for s in sessions if s.process == d.process and s.mono_s > d.mono_s]
            up = next((s.mono_s for s in after if s.type == "reconnect"), None)
            sync = next((s.mono_s for s in after if s.type == "caught_up"), None)
            if up is not None:
                reconnect.record(max(0.0, up - max(t1, d.mono_s)) * 1000.0)
            if sync is not None:
                caught.record(max(0.0, sync - max(t1, d.mono_s)) * 1000.0)
        during = [c for c in commits if t0 <= c.mono_s <= t1 and c.assignee_id is not None]
        arrived = [receipts.get((str(c.assignee_id), str(c.alert_id))) for c in during]
        consistent_ms = (
            max(0.0, (max(a for a in arrived if a is not None) - t1) * 1000.0)
            if arrived and all(a is not None for a in arrived)
            else None
        )
        rows.append(
            {
                "fault": kind,
                "label": label,
                "seconds": round(t1 - t0, 3),
                "requests": outcomes,
                "reconnect_ms": _p50_p99(reconnect),
                "caught_up_ms": _p50_p99(caught),
                "committed_during": len(during),
                "all_delivered": all(a is not None for a in arrived),
                "time_to_consistency_ms": consistent_ms,
            }
        )
    return rows


def _p50_p99(recorder: LatencyRecorder) -> dict[str, float | None]:
    if recorder.count == 0:
        return {"count": 0, "p50": None, "p99": None}
    return {
        "count": recorder.count,
        "p50": recorder.percentile(50),
        "p99": recorder.percentile(99),
    }
