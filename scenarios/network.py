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
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any, ClassVar

from harness.clients import AppHttp
from harness.clients.subscriber import ReconnectPolicy
from harness.faults import At, FaultEvent, ToxiproxyClient, down, run_schedule
from harness.scenario import ScenarioContext
from harness.workload import constant_rate, run_open_loop
from scenarios._round_robin import RoundRobin

__all__ = ["NetworkScenario"]

MAX_PROJECTS = 200
OUTAGE_S = 3.0
#: The reference client's backoff, with its cap below the 5 s reconnection
#: SLO: with the seed's 30 s cap, a client whose third attempt falls just
#: after a 3 s outage waits up to ~7 s more, which the SLO does not allow.
POLICY = ReconnectPolicy(initial_delay_s=0.5, max_delay_s=2.0)


class NetworkScenario:
    name = "network"
    summary = (
        f"the client -> app hop goes down for {OUTAGE_S:g} s mid-load; clients reconnect, "
        "re-join and catch up, and no alert is lost"
    )
    max_projects = MAX_PROJECTS
    checks: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "delivery": {},
        "no_phantoms": {},
        "no_duplicates": {},
        "reconnection": {"until": "caught_up"},
        "linearizable": {},
        "right_alert": {},
    }
    slos: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "generation_p99_ms": {"enabled": False},
        "queries_per_request": {"enabled": False},
    }

    async def run(self, ctx: ScenarioContext) -> None:
        params = ctx.params
        workload = RoundRobin(ctx.seeded)
        rate = min(params.rate_per_s, 50.0)
        duration = max(params.duration_s, OUTAGE_S * 3)
        total = min(math.ceil(rate * duration), workload.capacity)
        fleet = ctx.fleet(workload.subscribers(total), policy=POLICY)
        await fleet.start()

        direct = ctx.direct_app_urls[0]
        async with AppHttp(direct) as http, ToxiproxyClient(ctx.stack.toxiproxy.url) as tp:
            outage = down(tp, ctx.stack.toxiproxy.proxy_name("app"), for_s=OUTAGE_S)
            history = ctx.history

            def record(event: FaultEvent) -> None:
                history.record_fault(event)

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
            with ctx.measuring_resources():
                ctx.generator, _events = await asyncio.gather(
                    load, run_schedule([At(total / rate / 3, outage)])
                )

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
