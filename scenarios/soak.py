"""``soak``: a long steady load; no resource of the pipeline may keep growing.

``alertbench run soak --duration 600`` (at least 20 s): completions arrive open-loop at a
steady rate (at most ``MAX_RATE``, and lower if the projects cannot supply
that many steps for the whole duration: more ``--projects``, more steps) with
one subscriber per assignee, while a sampler reads every second the app's
memory (RSS) and open file descriptors, the Postgres connections of the
scenario's database and Redis's ``used_memory``. After a warm-up (the first
quarter), the least-squares slope of each series, per minute, must stay
within its bound (:data:`harness.metrics.growth.GROWTH_BOUNDS`); the report
plots every series. The usual checkers judge the history too: a soak that
stays flat but loses alerts is no pass. A pipeline that keeps something of
every request (``--flaw memory_leak``) fails here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from harness.checks import CheckResult
from harness.checks.result import Validity
from harness.history import Commit, Receive
from harness.metrics.growth import Sampler, judge_growth
from harness.scenario import ScenarioContext
from harness.workload import constant_rate, run_open_loop
from scenarios._round_robin import RoundRobin

__all__ = ["SoakScenario"]

MAX_RATE = 50.0
#: Share of the run left out of the slopes: connections opening, caches and
#: the allocator settling.
WARMUP_SHARE = 0.25
SAMPLE_INTERVAL_S = 1.0
#: A soak shorter than this has too few samples after its warm-up for a
#: slope: shorter --duration values are raised to it.
MIN_DURATION_S = 20.0


class SoakScenario:
    name = "soak"
    summary = (
        "a long steady load (--duration) while app memory and file descriptors, Postgres "
        "connections and Redis memory are sampled: none may keep growing"
    )
    user_pool = True
    checks: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "delivery": {},
        "exactly_once": {},
        "no_phantoms": {},
        "no_leaks": {},
        "no_duplicates": {},
        "linearizable": {},
        "right_alert": {},
        "generation_latency": {"requests": ("complete",)},
        "delivery_latency": {},
    }
    slos: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "queries_per_request": {"enabled": False},
        "reconnection_p99_ms": {"enabled": False},
    }

    async def run(self, ctx: ScenarioContext) -> None:
        params = ctx.params
        workload = RoundRobin(ctx.seeded)
        duration = max(params.duration_s, MIN_DURATION_S)
        rate = min(params.rate_per_s, MAX_RATE, workload.capacity / duration)
        total = max(1, math.floor(rate * duration))
        ctx.extra["soak_duration_s"] = duration
        ctx.extra["soak_rate_per_s"] = round(rate, 3)
        if rate < min(params.rate_per_s, MAX_RATE):
            ctx.extra["soak_rate_note"] = (
                f"{len(ctx.seeded.project_ids)} projects supply {workload.capacity} steps:"
                f" {rate:.2f}/s for {duration:g} s (more --projects for more)"
            )
        fleet = ctx.fleet(workload.subscribers(total))
        await fleet.start()
        local = ctx.stack.local_processes()
        sampler = Sampler(
            app_pids=lambda: [pid for name, pid in local.items() if name.startswith("app")],
            pg_dsn=ctx.direct_dsn,
            redis_url=ctx.stack.redis_direct.url,
            interval_s=SAMPLE_INTERVAL_S,
        )
        async with ctx.http() as http, sampler.running():
            with ctx.measuring_resources():
                ctx.generator = await run_open_loop(
                    constant_rate(rate, total / rate, seed=params.seed),
                    workload.operation(ctx, http),
                    history=ctx.history,
                    max_in_flight=256,
                    deadline_s=total / rate + 30.0,
                    f="complete",
                    describe=workload.describe,
                )
        users = {s.user_id for s in workload.subscribers(total)}

        def delivered() -> bool:
            owed = {c.alert_id for c in ctx.history.of_type(Commit) if c.assignee_id in users}
            got = {r.alert_id for r in ctx.history.of_type(Receive) if r.event == "new_alert"}
            return owed <= got

        ctx.extra["drained"] = await ctx.drain(delivered)
        await ctx.snapshot_alerts()
        await ctx.close_fleets()
        ctx.own_checks.append(_growth(ctx, sampler, total / rate))


def _growth(ctx: ScenarioContext, sampler: Sampler, load_s: float) -> CheckResult:
    start = WARMUP_SHARE * load_s
    series = judge_growth(sampler.samples, start_s=start)
    ctx.extra["soak"] = {
        "interval_s": sampler.interval_s,
        "warmup_s": round(start, 1),
        "series": series,
        "unmeasured": dict(sampler.unmeasured),
        "samples": [{"t_s": s.t_s, **s.values} for s in sampler.samples],
    }
    grew = {k: v for k, v in series.items() if v["held"] is False}
    judged = {k: v for k, v in series.items() if v["held"] is not None}
    valid: Validity = (not grew) if judged else "unknown"
    parts = [
        f"{name} {v['slope_per_min']:+g} {v['unit']}/min (bound {v['bound_per_min']:g})"
        for name, v in judged.items()
    ]
    return CheckResult.build(
        "resource_growth",
        violations=[{"series": k, **v} for k, v in grew.items()],
        valid=valid,
        summary=(
            ("grew beyond its bound: " if grew else "flat after the warm-up: ") + "; ".join(parts)
            if judged
            else "nothing could be sampled: " + ", ".join(sorted(sampler.unmeasured))
        ),
        counts={f"{k}_slope_per_min": float(v["slope_per_min"]) for k, v in judged.items()},
    )
