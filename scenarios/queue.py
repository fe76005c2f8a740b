"""``queue``: queued completions survive transient failures through retries.

The seed's job queue: a completion posted with ``?mode=queue`` is a SAQ job
run by the app's worker. Here the app fails a seeded fifth of all
completion attempts just before their commit (what a dropped connection,
a deadlock or a restart does), and Postgres is out of reach (its proxy
down) for ``OUTAGE_S`` seconds after the first few projects' current step
was queued: every attempt fails until it heals, and only a backoff carries
those jobs past the outage. Then every other project's step is queued at
once. Every job must end ``complete``
(retried with backoff until an attempt commits), every project must have
moved on exactly one step, and the dead-letter list must stay empty. Where
the target reports each attempt's times (``attemptTimesMs``),
``retry_schedule`` checks every delay against the configured backoff. The
single-attempt queue (``--flaw no_retry``) and the queue that retries at
once (``--flaw no_backoff``, its attempts spent within the outage) lose
completions to the dead-letter list and fail here.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

from harness.checks import CheckResult
from harness.checks.result import Validity
from harness.clients import AppHttp
from harness.faults import ToxiproxyClient, down
from harness.history import Op
from harness.scenario import ScenarioContext
from harness.slo import only_slos
from harness.stack import _sql
from harness.targets.launch import Injection
from scenarios._jobs import ENDED, enqueue_completion, follow_jobs

__all__ = ["QueueScenario"]

MAX_PROJECTS = 60
FAILURE_RATE = 0.2
#: The Postgres outage the first jobs are queued into, and how many they are.
OUTAGE_S = 3.0
OUTAGE_JOBS = 4
#: The backoff's first delay; each retry doubles its cap (full jitter).
BASE_DELAY_S = 0.05
#: Enough attempts that no job runs out of them within the outage: with
#: full jitter the first 15 delays' caps add up to 0.05 x (2**15 - 1) s, and
#: the chance that they fit in 3 s is negligible; the 20 % injected
#: failures lose a job only if 16 draws in a row fail.
ATTEMPTS = 16
JOBS_TIMEOUT_S = 60.0


class QueueScenario:
    name = "queue"
    summary = (
        f"{FAILURE_RATE:.0%} of completion attempts fail before commit; every queued "
        "completion is retried until it commits, none is lost or applied twice"
    )
    needs = ("queue", "fault_injection")
    proxy_faults = ("postgres",)
    inject = Injection(
        rollback_rate=FAILURE_RATE,
        queue_attempts=ATTEMPTS,
        queue_retry_base_delay_s=BASE_DELAY_S,
    )
    max_projects = MAX_PROJECTS
    checks: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "no_duplicates": {},
        "linearizable": {},
        "right_alert": {},
        "retry_schedule": {"base_s": BASE_DELAY_S, "max_attempts": ATTEMPTS},
    }
    # Only duplication_rate applies: no sustained load to judge latency on.
    slos: ClassVar[Mapping[str, Mapping[str, Any]]] = only_slos("duplication_rate")

    async def run(self, ctx: ScenarioContext) -> None:
        projects = ctx.seeded.project_ids[:MAX_PROJECTS]
        first, second = ctx.seeded.active_line_items[:2]
        async with ctx.http() as http, ToxiproxyClient(ctx.toxiproxy.url) as tp:
            outage = down(tp, ctx.toxiproxy.proxy_name("postgres"), for_s=OUTAGE_S)
            outage.on_event = ctx.record_fault
            # First a few jobs through a Postgres outage (down first, then the
            # jobs: every first attempt meets it); few, so that the worker's
            # own pace does not stand in for a backoff. Then the rest.
            await outage.start()
            try:
                jobs = await asyncio.gather(
                    *(self._enqueue(ctx, http, p, first.id) for p in projects[:OUTAGE_JOBS])
                )
                await asyncio.sleep(OUTAGE_S)  # the outage's length, not a synchronisation
            finally:
                await outage.heal()
            ended = await self._wait(ctx, http, [j for j in jobs if j is not None])
            jobs = await asyncio.gather(
                *(self._enqueue(ctx, http, p, first.id) for p in projects[OUTAGE_JOBS:])
            )
            ended |= await self._wait(ctx, http, [j for j in jobs if j is not None])
            letters = await http.get(
                "/api/queue/dead-letters", headers=self._auth(ctx, projects[0])
            )
        await ctx.snapshot_alerts()
        rows = await asyncio.to_thread(
            _sql.fetch,
            ctx.direct_dsn,
            "SELECT project_id, current_line_item_id FROM project_workflow_trackers"
            " WHERE project_id = ANY($1::bigint[])",
            projects,
        )
        moved = sum(1 for r in rows if r["current_line_item_id"] == second.id)
        statuses = Counter(ended.values())
        dead = letters.body.get("deadLetters", []) if isinstance(letters.body, dict) else None
        lost = len(projects) - statuses.get("complete", 0)
        retried = sum(
            1
            for op in ctx.history.of_type(Op)
            if op.f == "complete_queued"
            and op.type != "invoke"
            and isinstance(op.value, dict)
            and int(op.value.get("attempts") or 0) > 1
        )
        ok: Validity = lost == 0 and moved == len(projects) and dead == []
        if ok and retried == 0:
            ok = "unknown"  # no attempt failed: the fault injection did not fire
        ctx.extra["jobs"] = dict(statuses)
        ctx.own_checks.append(
            CheckResult(
                name="queued_completions",
                valid=ok,
                summary=(
                    f"{statuses.get('complete', 0)} of {len(projects)} queued completions"
                    f" complete ({lost} lost); {moved} of {len(projects)} projects moved on one"
                    f" step; {'?' if dead is None else len(dead)} dead letter(s);"
                    f" {retried} job(s) needed more than one attempt"
                ),
                counts={
                    "jobs": len(projects),
                    "lost": lost,
                    "moved": moved,
                    "retried": retried,
                    "dead_letters": -1 if dead is None else len(dead),
                },
            )
        )

    @staticmethod
    def _auth(ctx: ScenarioContext, project: int) -> dict[str, str]:
        return ctx.auth(ctx.seeded.members[project]["project_manager"])

    @staticmethod
    async def _enqueue(
        ctx: ScenarioContext, http: AppHttp, project: int, item: int
    ) -> tuple[Op, str] | None:
        op, job, _ = await enqueue_completion(ctx, http, project, item)
        return None if job is None else (op, job)

    async def _wait(
        self, ctx: ScenarioContext, http: AppHttp, jobs: list[tuple[Op, str]]
    ) -> dict[str, str]:
        """Each job's final status ("pending" if not ended in JOBS_TIMEOUT_S)."""
        auth = self._auth(ctx, ctx.seeded.project_ids[0])
        ended = await follow_jobs(ctx, http, jobs, auth, timeout_s=JOBS_TIMEOUT_S)
        return {
            job_id: status if status in ENDED else "pending"
            for job_id, (status, _) in ended.items()
        }
