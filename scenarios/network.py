"""``network``: the client -> app hop goes down mid-load; nothing is lost, and clients come back.

The seed's "simulate network failures and reconnections" item. Every project's
assignees are connected through the ``app`` proxy; completions arrive
open-loop over a direct address (the load must go on while the clients are
cut off). Part-way through, the ``app`` proxy goes down for ``OUTAGE_S``
seconds: every socket drops, and alerts keep being committed. After the heal
the clients must reconnect, re-join their rooms and catch up: ``delivery``
counts an alert committed during the outage as delivered only if it arrived
after the reconnect, and ``reconnection`` measures heal -> back (the SLO's
p99 < 5 s). The seed client's missing re-join and catch-up (``--flaw
no_rejoin``) fails here.

Catch-up must be complete even for an alert that commits out of id order.
Users are shared across projects, and one user ``U`` is the next assignee
in two projects kept out of the round robin. Just before the outage, the
first project's completion is held uncommitted at a :class:`CommitGate`
(its alert id already taken), the second's commits and reaches ``U`` live;
once ``U``'s socket has dropped, the gate opens and the first commits: a
lower id than one ``U`` has seen, committed while ``U`` was away. ``U``'s
catch-up must still bring it (``catch_up``); a client that asks only for
ids above the last one it saw (``--flaw no_catchup_overlap``) misses it. A
client that surfaces the catch-up's repeats again (``--flaw
no_client_dedupe``) fails ``exactly_once``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from harness.checks import CheckResult
from harness.checks.result import Validity
from harness.clients import AppHttp, Subscriber, SubscriberFleet
from harness.clients.subscriber import ReconnectPolicy
from harness.contract import SeedResult
from harness.faults import At, FaultEvent, ToxiproxyClient, down, run_schedule
from harness.history import Commit
from harness.scenario import ScenarioContext, wait_until
from harness.workload import constant_rate, run_open_loop
from harness.workload.barrier import CommitGate
from scenarios._round_robin import RoundRobin

__all__ = ["NetworkScenario", "with_rooms"]

MAX_PROJECTS = 200
OUTAGE_S = 3.0
#: The reference client's backoff, with its cap below the 5 s reconnection
#: SLO: with the seed's 30 s cap, a client whose third attempt falls just
#: after a 3 s outage waits up to ~7 s more, which the SLO does not allow.
POLICY = ReconnectPolicy(initial_delay_s=0.5, max_delay_s=2.0)
#: The late commit's set-up starts this long before the outage (which waits
#: for it if it takes longer: the held request must not wait long).
LATE_LEAD_S = 1.0
#: Bound of each wait of the late commit's set-up.
LATE_WAIT_S = 15.0


@dataclasses.dataclass(frozen=True)
class LatePair:
    """A user who is the next assignee in two projects: ``early`` takes its
    alert id first and commits last, ``later`` the other way round."""

    user: int
    early: int
    later: int


def pick_late_pair(seeded: SeedResult) -> LatePair | None:
    """The first user (in project order) who is the member responsible for the
    second step in two projects: completing the first step of both gives that
    user two alerts. None when no user is (tiny runs)."""
    items = seeded.active_line_items
    if len(items) < 2:
        return None
    role = items[1].responsible_role
    first_project: dict[int, int] = {}
    for project in seeded.project_ids:
        user = seeded.members[project][role]
        if user in first_project:
            return LatePair(user, first_project[user], project)
        first_project[user] = project
    return None


def with_rooms(subs: Sequence[Subscriber], user: int, rooms: Sequence[int]) -> list[Subscriber]:
    out = [s for s in subs if s.user_id != user]
    mine = next((s.projects for s in subs if s.user_id == user), ())
    return [*out, Subscriber(user, tuple(sorted({*mine, *rooms})))]


class NetworkScenario:
    name = "network"
    summary = (
        f"the client -> app hop goes down for {OUTAGE_S:g} s mid-load; clients reconnect, "
        "re-join and catch up, and no alert is lost"
    )
    max_projects = MAX_PROJECTS
    user_pool = True
    proxy_faults = ("app",)
    checks: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "delivery": {},
        "no_phantoms": {},
        "no_duplicates": {},
        "reconnection": {"until": "caught_up"},
        "catch_up": {},
        "linearizable": {},
        "right_alert": {},
        "no_leaks": {},
        "exactly_once": {},
    }
    slos: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "generation_p99_ms": {"enabled": False},
        "queries_per_request": {"enabled": False},
    }

    async def run(self, ctx: ScenarioContext) -> None:
        params = ctx.params
        pair = pick_late_pair(ctx.seeded)
        seeded = ctx.seeded
        if pair is not None:  # its two projects stay out of the round robin
            kept = [p for p in seeded.project_ids if p not in (pair.early, pair.later)]
            seeded = dataclasses.replace(seeded, project_ids=kept)
        workload = RoundRobin(seeded)
        rate = min(params.rate_per_s, 50.0)
        duration = max(params.duration_s, OUTAGE_S * 3)
        total = min(math.ceil(rate * duration), workload.capacity)
        subscribers = workload.subscribers(total)
        if pair is not None:
            subscribers = with_rooms(subscribers, pair.user, (pair.early, pair.later))
        fleet = ctx.fleet(subscribers, policy=POLICY)
        await fleet.start()
        outage_at = total / rate / 3
        outage_started = asyncio.Event()

        direct = ctx.direct_app_urls[0]
        async with AppHttp(direct) as http, ToxiproxyClient(ctx.toxiproxy.url) as tp:
            outage = down(tp, ctx.toxiproxy.proxy_name("app"), for_s=OUTAGE_S)
            history = ctx.history

            def record(event: FaultEvent) -> None:
                history.record_fault(event)
                if event.phase == "start":
                    outage_started.set()

            outage.on_event = record
            load = run_open_loop(
                constant_rate(rate, total / rate, seed=params.seed),
                workload.operation(ctx, http),
                history=ctx.history,
                max_in_flight=256,
                deadline_s=total / rate + 30.0,
                f="complete",
                describe=workload.describe,
            )
            ready = asyncio.Event()
            late = self._late_commit(
                ctx, fleet, pair, max(0.0, outage_at - LATE_LEAD_S), ready, outage_started
            )

            async def cut() -> list[FaultEvent]:
                # At its time, and not before the late commit is set up (on a
                # slow machine the set-up may need longer than its lead).
                await asyncio.sleep(outage_at)  # a point of the schedule
                await _wait(ready, LATE_WAIT_S)
                return await run_schedule([At(0.0, outage)])

            with ctx.measuring_resources():
                ctx.generator, _events, forced = await asyncio.gather(load, cut(), late)
        ctx.own_checks.append(forced)

        clients = list(fleet.clients.values())

        def back() -> bool:
            return all(c.subscribed.is_set() for c in clients)

        ctx.extra["all_back"] = await ctx.drain(back)
        await ctx.settle()
        reconnects = fleet.reconnects()
        ctx.extra["clients"] = len(clients)
        ctx.extra["clients_dropped"] = len(reconnects)
        await ctx.snapshot_alerts()
        await ctx.close_fleets()

    async def _late_commit(
        self,
        ctx: ScenarioContext,
        fleet: SubscriberFleet,
        pair: LatePair | None,
        start_in_s: float,
        ready: asyncio.Event,
        outage_started: asyncio.Event,
    ) -> CheckResult:
        """Commit an alert of ``pair.user`` out of id order while that user's
        socket is down; the verdict says whether it happened as planned.
        Sets ``ready`` when the outage may start (also when the set-up failed)."""
        name = "late_commit_forced"
        if pair is None:
            ready.set()
            return CheckResult.unknown(name, "no user is the next assignee in two projects")
        try:
            return await self._late_commit_set_up(
                ctx, fleet, pair, start_in_s, ready, outage_started
            )
        finally:
            ready.set()

    async def _late_commit_set_up(
        self,
        ctx: ScenarioContext,
        fleet: SubscriberFleet,
        pair: LatePair,
        start_in_s: float,
        ready: asyncio.Event,
        outage_started: asyncio.Event,
    ) -> CheckResult:
        name = "late_commit_forced"
        await asyncio.sleep(start_in_s)  # a point of the schedule, not a synchronisation
        client = fleet.clients[pair.user]
        step = ctx.seeded.active_line_items[0].id

        def manager(project: int) -> int:
            return ctx.seeded.members[project]["project_manager"]

        notes: list[str] = []
        # The held request waits for the outage: a generous timeout of its own.
        async with (
            AppHttp(ctx.direct_app_urls[0], timeout_s=LATE_WAIT_S * 4) as http,
            CommitGate(ctx.direct_dsn, "projects", [pair.early]) as gate,
        ):
            early = asyncio.create_task(
                ctx.complete_recorded(
                    http, f"late{pair.early}", pair.early, step, manager(pair.early)
                )
            )
            held = await gate.wait_for_blocked(1, timeout_s=LATE_WAIT_S)
            later = await ctx.complete_recorded(
                http, f"late{pair.later}", pair.later, step, manager(pair.later)
            )
            later_id = later.value.get("alert_id") if isinstance(later.value, dict) else None
            if not await wait_until(lambda: later_id in client.alert_ids, LATE_WAIT_S):
                notes.append(f"the user never received alert {later_id} live")
            ready.set()
            if not await _wait(outage_started, LATE_WAIT_S):
                notes.append("the outage did not start")
            if not await _wait(client.disconnected, LATE_WAIT_S):
                notes.append("the user's socket did not drop")
            await gate.open()
            done = await asyncio.wait_for(early, LATE_WAIT_S * 4)
        early_id = done.value.get("alert_id") if isinstance(done.value, dict) else None
        commits = {str(c.alert_id): c for c in ctx.history.of_type(Commit)}
        e, l_ = commits.get(str(early_id)), commits.get(str(later_id))
        forced = (
            held >= 1
            and e is not None
            and l_ is not None
            and int(e.alert_id) < int(l_.alert_id)
            and e.mono_s > l_.mono_s
            and not notes
        )
        ctx.extra["late_commit"] = {
            "user": pair.user,
            "early": {"project": pair.early, "alert_id": early_id},
            "later": {"project": pair.later, "alert_id": later_id},
            "held": held,
        }
        valid: Validity = True if forced else "unknown"
        return CheckResult(
            name=name,
            valid=valid,
            summary=(
                f"alert {early_id} (project {pair.early}) took its id before alert {later_id}"
                f" and committed after it, while user {pair.user}'s socket was down"
                if forced
                else "the out-of-order commit did not happen as planned: "
                + ("; ".join(notes) or f"held {held}, alerts {early_id} / {later_id}")
            ),
            counts={"held": held},
        )


async def _wait(event: asyncio.Event, timeout_s: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        return False
    return True
