"""``chaos``: load with subscribers while a seeded nemesis breaks every hop.

Completions arrive open-loop through the ``app`` proxy, the assignees are
connected through it too, and a nemesis runs a seeded schedule of faults,
one at a time and, every third one, overlapping the previous: on the
Postgres hop (latency 50-200 ms, connections reset mid-transaction, data
swallowed until a timeout, down), on the Redis hop (down, latency), on the
app hop (down, reset, slow close, a bandwidth cap), and on the relay's
``LISTEN`` connection (terminated by Postgres while an alert's commit is
held back, so that it commits while the relay is away: a relay that does
not replay what it missed, ``--flaw no_replay``, loses it), and on the
processes: the app SIGKILLed and started again at once (as a supervisor
would), and the queue worker SIGKILLed while a queued completion's
transaction waits on a lock, then started again (the job must still end
``complete``, applied once; a queue that never re-runs a dead worker's
jobs, ``--flaw no_sweep``, leaves it hanging). Then everything heals,
the clients come back and catch up, and the whole history is judged:
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
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg

from harness.checks import CheckResult
from harness.checks.result import Validity
from harness.clients import AppHttp
from harness.clients.fleet import SubscriberFleet
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
from harness.stack._sql import HARNESS_CONNECTION
from harness.targets.launch import Injection
from harness.workload import OpFailed, constant_rate, run_open_loop
from harness.workload.barrier import CommitGate
from scenarios._jobs import enqueue_completion, follow_jobs
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
#: How much longer the load runs than the schedule, for the time the lone
#: faults (a restart, a killed job, the relay's replay) shift it by.
ALONE_MARGIN_S = 12.0
#: How long a job whose worker was killed may take to end (its heartbeat
#: must expire and a sweep re-queue it first).
JOB_END_S = 60.0
#: How long the relay fault's alert may take to reach its connected assignee
#: once it committed (the relay must first be listening again).
RELAY_PUSH_S = 15.0
#: The relay fault needs its held completion to commit while the relay is
#: away; when the completion rolls back instead (the termination can take
#: its connection too), the fault is applied again, this many times at most.
RELAY_TRIES = 3
JOB_ATTEMPTS = 10
JOB_RETRY_BASE_S = 0.25

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
    "app_kill",
    "worker_kill",
)
"""Every fault the nemesis knows, by name (the proxy's hop, then what)."""

#: Faults that happen at an instant (their window is the recovery); they
#: also run alone, with no other fault under way (see ``_nemesis``).
_INSTANT = frozenset({"relay_listen", "app_kill", "worker_kill"})

# Every backend of the target in this database but the ones waiting for a
# lock (a held completion) and the harness's own (the gates', this one):
# the relay's LISTEN connection among them, however the target names it.
_TARGET_BACKENDS = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND pid <> ALL($1::int[])
  AND coalesce(application_name, '') <> $2
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
        for_s = 0.0 if fault in _INSTANT else FAULT_S
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
    #: The reference runs its queue worker as a process of its own, which
    #: ``worker_kill`` can crash without taking the API down.
    queue_workers = 1
    #: The killed job's retries must outlast the faults that follow it
    #: (up to about a minute with full jitter).
    inject = Injection(queue_attempts=JOB_ATTEMPTS, queue_retry_base_delay_s=JOB_RETRY_BASE_S)
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

    def __init__(self) -> None:
        #: Why a fault of the schedule was not applied, by fault.
        self._skips: dict[str, str] = {}
        self._fleet: SubscriberFleet | None = None

    async def run(self, ctx: ScenarioContext) -> None:
        params = ctx.params
        gap = max(GAP_S, (params.duration_s - len(FAULTS) * FAULT_S) / len(FAULTS))
        steps = nemesis_schedule(params.seed, gap_s=gap)
        # The lone faults (the kills, the relay's) take their own time and
        # shift the faults after them: the load goes on past the schedule.
        load_s = max(s.at_s + s.for_s for s in steps) + 2.0 + ALONE_MARGIN_S
        # The last projects are the relay's and the worker's faults' own,
        # out of the round robin.
        idle = _idle_projects(ctx)
        held = idle[0] if idle else None
        kept = [p for p in ctx.seeded.project_ids if p not in idle]
        workload = RoundRobin(dataclasses.replace(ctx.seeded, project_ids=kept))
        rate = min(params.rate_per_s, MAX_RATE)
        total = min(math.ceil(rate * load_s), workload.capacity)
        subscribers = workload.subscribers(total)
        if held is not None:
            items = ctx.seeded.active_line_items
            user = ctx.seeded.members[held][items[1].responsible_role]
            subscribers = with_rooms(subscribers, user, (held,))
        fleet = ctx.fleet(subscribers, policy=POLICY)
        self._fleet = fleet
        await fleet.start()
        done_faults: list[str] = []
        self._skips.clear()
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
        # Every committed alert reaches its connected assignees: the relay
        # may still be reconnecting after the last Postgres fault.
        await ctx.drain_commits()
        await ctx.settle()
        await ctx.snapshot_alerts()
        await ctx.close_fleets()
        ctx.extra["chaos"] = {
            "schedule": [s.__dict__ for s in steps],
            "faults": fault_table(ctx),
            "skipped": [f for f in FAULTS if f not in done_faults],
            "skip_reasons": dict(self._skips),
        }
        self._judge_relay_replay(ctx)
        self._judge_killed_job(ctx)

    async def _nemesis(
        self, ctx: ScenarioContext, tp: ToxiproxyClient, steps: list[Step], done: list[str]
    ) -> None:
        loop = asyncio.get_running_loop()
        origin = loop.time()
        # The relay fault and the kills run alone: after every fault before
        # them has healed, and before any after them starts, until they are
        # judged. No other fault can then drop the relay fault's assignee (a
        # reconnect's sync would hide a relay that lost its alert) or the
        # app under the worker fault's own requests, so their verdicts never
        # depend on the schedule.
        tasks: list[asyncio.Task[None]] = []
        ends: dict[int, float] = {}

        async def one(i: int, step: Step) -> None:
            await asyncio.sleep(max(0.0, origin + step.at_s - loop.time()))  # the schedule
            if step.fault in _INSTANT:
                if tasks[:i]:
                    await asyncio.wait(tasks[:i])
            elif alone_before := [j for j in range(i) if steps[j].fault in _INSTANT]:
                # After the last lone fault: as far after its end as the
                # schedule put this one after its start (the schedule shifts
                # instead of bunching up behind it).
                j = alone_before[-1]
                await asyncio.wait([tasks[j]])
                later = ends[j] + step.at_s - steps[j].at_s
                await asyncio.sleep(max(0.0, later - loop.time()))  # the schedule
            try:
                if await self._apply(ctx, tp, step):
                    done.append(step.fault)
            finally:
                ends[i] = loop.time()

        tasks.extend(asyncio.create_task(one(i, s)) for i, s in enumerate(steps))
        await asyncio.gather(*tasks)

    async def _apply(self, ctx: ScenarioContext, tp: ToxiproxyClient, step: Step) -> bool:
        if step.fault == "relay_listen":
            return await self._relay_listen(ctx)
        if step.fault == "app_kill":
            return await self._app_kill(ctx)
        if step.fault == "worker_kill":
            return await self._worker_kill(ctx)
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
        reaches its assignee live only if the relay replays what it missed
        (judged by ``relay_replay``)."""
        idle = _idle_projects(ctx)
        if not idle:
            self._skips["relay_listen"] = "needs 3 projects and 2 active steps"
            return False
        project = idle[0]
        step = ctx.seeded.active_line_items[0].id
        manager = ctx.seeded.members[project]["project_manager"]
        assignee = ctx.seeded.members[project][ctx.seeded.active_line_items[1].responsible_role]
        client = self._fleet.clients.get(assignee) if self._fleet is not None else None
        if client is not None:
            await wait_until(client.subscribed.is_set, WAIT_S)
        label = "terminate the target's Postgres connections (its LISTEN among them)"
        conn = await asyncpg.connect(
            ctx.direct_dsn, timeout=10.0, server_settings=HARNESS_CONNECTION
        )
        alert: int | None = None
        tries = 0
        try:
            while alert is None and tries < RELAY_TRIES:
                tries += 1
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
                        "SELECT pg_terminate_backend(pid) FROM (" + _TARGET_BACKENDS + ") b",
                        ours,
                        HARNESS_CONNECTION["application_name"],
                    )
                    mark = len(ctx.history)
                    await gate.open()
                    opened = time.monotonic()
                    await _quietly(held)
                    ctx.history.fault("heal", kind="relay_listen", label=label, target="postgres")
                # What committed, whatever the answer said (an error answer
                # may hide a commit); nothing: the completion rolled back.
                alert = await conn.fetchval(
                    "SELECT id FROM workflow_alerts WHERE project_id = $1 AND step_id = $2",
                    project,
                    ctx.seeded.active_line_items[1].id,
                )
        finally:
            await conn.close(timeout=10.0)
        judged: dict[str, Any] = {
            "user": assignee,
            "alert_id": alert,
            "pushed_live_ms": None,
            "tries": tries,
        }
        if alert is not None and client is not None and client.subscribed.is_set():

            def pushed() -> bool:
                return any(
                    isinstance(e, Receive)
                    and e.process == f"c{assignee}"
                    and e.alert_id == alert
                    and e.via == "live"
                    for e in ctx.history[mark:]
                )

            if await wait_until(pushed, RELAY_PUSH_S):
                judged["pushed_live_ms"] = round((time.monotonic() - opened) * 1000.0, 1)
            judged["connected_throughout"] = client.subscribed.is_set()
        ctx.extra["relay_replay"] = judged
        return True

    def _restartable(self, ctx: ScenarioContext, fault: str, process: str) -> bool:
        app = ctx.stack.app
        if "restart" not in ctx.target.capabilities:
            self._skips[fault] = f"target {ctx.target.name!r} does not declare restart"
        elif app is None:
            self._skips[fault] = "the target runs outside the harness (a url target)"
        elif process not in app.names:
            self._skips[fault] = f"target {ctx.target.name!r} has no {process!r} process"
        else:
            return True
        return False

    async def _app_kill(self, ctx: ScenarioContext) -> bool:
        """SIGKILL the app process (its relay, its sockets and its requests
        in flight die with it) and start it again at once."""
        if not self._restartable(ctx, "app_kill", "app"):
            return False
        label = "SIGKILL the app process, then start it again"
        ctx.history.fault("start", kind="app_kill", label=label, target="app")
        await asyncio.to_thread(ctx.stack.kill_process, "app")
        await asyncio.to_thread(ctx.stack.restart_process, "app")
        ctx.history.fault("heal", kind="app_kill", label=label, target="app")
        return True

    async def _worker_kill(self, ctx: ScenarioContext) -> bool:
        """Queue a completion while its project's row is locked, so that its
        job's transaction waits mid-job; SIGKILL the worker there, let the
        row go, start the worker again, and follow the job to its end. Whether
        or not the killed attempt committed, the job must end ``complete`` (a
        sweep re-runs the jobs of dead workers) and move the project once."""
        idle = _idle_projects(ctx)
        if "queue" not in ctx.target.capabilities:
            self._skips["worker_kill"] = f"target {ctx.target.name!r} has no queue"
            return False
        if len(idle) < 2:
            self._skips["worker_kill"] = "needs 3 projects and 2 active steps"
            return False
        if not self._restartable(ctx, "worker_kill", "worker"):
            return False
        project = idle[1]
        step = ctx.seeded.active_line_items[0].id
        auth = ctx.auth(ctx.seeded.members[project]["project_manager"])
        label = "SIGKILL the queue worker mid-job, then start it again"
        async with AppHttp(ctx.direct_app_urls[0], timeout_s=WAIT_S) as http:
            async with CommitGate(ctx.direct_dsn, "projects", [project]) as gate:
                op, job, refused = await enqueue_completion(ctx, http, project, step)
                if job is None:
                    self._skips["worker_kill"] = f"the job was refused: {refused}"
                    return False
                await gate.wait_for_blocked(1, timeout_s=WAIT_S)
                ctx.history.fault("start", kind="worker_kill", label=label, target="worker")
                await asyncio.to_thread(ctx.stack.kill_process, "worker")
            await asyncio.to_thread(ctx.stack.restart_process, "worker")
            ctx.history.fault("heal", kind="worker_kill", label=label, target="worker")
            ended = await follow_jobs(ctx, http, [(op, job)], auth, timeout_s=JOB_END_S)
            status, error = ended[job]
        ctx.extra["killed_job"] = {
            "project": project,
            "job": job,
            "status": status,
            "error": error,
        }
        return True

    def _judge_relay_replay(self, ctx: ScenarioContext) -> None:
        """The alert that committed while the relay was away reached its
        connected assignee live (not only through a later reconnect's sync)."""
        judged = ctx.extra.get("relay_replay")
        if not isinstance(judged, dict):
            return
        alert, ms = judged.get("alert_id"), judged.get("pushed_live_ms")
        valid: Validity
        if alert is None or "connected_throughout" not in judged:
            valid = "unknown"
            summary = "the held completion did not commit, or its assignee was not connected"
        elif ms is not None:
            valid = True
            summary = f"alert {alert}, committed while the relay was away, pushed live in {ms} ms"
        elif not judged["connected_throughout"]:
            valid = "unknown"
            summary = f"alert {alert}'s assignee was disconnected before it was pushed"
        else:
            valid = False
            summary = (
                f"alert {alert} committed while the relay was away and was not pushed to its"
                f" connected assignee (user {judged['user']}) within {RELAY_PUSH_S:g} s"
            )
        ctx.own_checks.append(
            CheckResult(
                name="relay_replay",
                valid=valid,
                summary=summary,
                counts={"pushed_live": int(ms is not None)},
            )
        )

    def _judge_killed_job(self, ctx: ScenarioContext) -> None:
        """The job whose worker was killed mid-job must have ended ``complete``."""
        killed = ctx.extra.get("killed_job")
        if not isinstance(killed, dict):
            return
        status = str(killed["status"])
        valid: Validity = status == "complete"
        ctx.own_checks.append(
            CheckResult(
                name="killed_job_ends",
                valid=valid,
                summary=(
                    f"the job of project {killed['project']} whose worker was SIGKILLed"
                    f" mid-job ended {status!r}"
                    + ("" if valid else f" within {JOB_END_S:g} s: {killed.get('error')}")
                ),
                counts={"complete": int(valid)},
            )
        )


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


async def _quietly(task: Awaitable[Op]) -> Op | None:
    try:
        return await asyncio.wait_for(task, WAIT_S * 2)
    except Exception:  # recorded 'info' by complete_recorded
        return None


def _idle_projects(ctx: ScenarioContext) -> list[int]:
    """The seeded projects the round robin leaves alone, for the relay fault
    and the worker fault: the last two (none with fewer than three projects,
    or a one-step workflow)."""
    if len(ctx.seeded.project_ids) < 3 or len(ctx.seeded.active_line_items) < 2:
        return []
    return [ctx.seeded.project_ids[-1], ctx.seeded.project_ids[-2]]


#: A client that drops this soon after a fault heals is charged to it (its
#: socket's close can reach the client just after the heal).
HEAL_GRACE_S = 0.5


def _charge(at_s: float, windows: Sequence[tuple[str, str, float, float]]) -> int | None:
    """The one fault a drop at ``at_s`` is charged to: of those under way, the
    latest to start; else, of those healed within HEAL_GRACE_S, the latest
    to heal; else none. (A drop the instant a lone fault starts, right after
    the previous fault healed, is the lone fault's, not the previous one's.)"""
    under_way = [i for i, (_, _, t0, t1) in enumerate(windows) if t0 <= at_s <= t1]
    if under_way:
        return max(under_way, key=lambda i: windows[i][2])
    healed = [i for i, (_, _, _, t1) in enumerate(windows) if t1 < at_s <= t1 + HEAL_GRACE_S]
    return max(healed, key=lambda i: windows[i][3]) if healed else None


def fault_table(ctx: ScenarioContext) -> list[dict[str, Any]]:
    """Per fault: requests ok / failed / indeterminate that started while it
    lasted, reconnect and catch-up p50/p99 of the clients dropped during it
    (each drop charged to one fault, see ``_charge``), and the time from its
    heal until every alert committed during it had reached its connected
    assignees."""
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
    drops = [s for s in sessions if s.type == "disconnect"]
    charged = [_charge(d.mono_s, windows) for d in drops]
    rows = []
    for index, (kind, label, t0, t1) in enumerate(windows):
        outcomes = {"ok": 0, "fail": 0, "info": 0}
        for op_id, inv in invokes.items():
            if t0 <= inv.mono_s <= t1:
                end = ends.get(op_id)
                outcomes[end.type if end is not None else "info"] += 1
        reconnect = LatencyRecorder(f"{label} reconnect")
        caught = LatencyRecorder(f"{label} caught up")
        for d, fault in zip(drops, charged, strict=True):
            if fault != index:
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
