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

Then the same under a real fault, at each stage of the transaction: for
three projects set aside, the harness holds a row the completion must
touch at one stage (the tracker row: where it locks the tracker; the
current ACTIVE alert: where it completes the old alert; the project row:
where its new alert's foreign key is checked), waits until the
completion's transaction is blocked there, cuts the Postgres hop (the
proxy goes down, every connection through it is closed), lets the row go,
heals, and reads the project back: it must be exactly as before (no tracker
moved, no alert completed or inserted, nothing delivered), and the same
completion sent again must then commit (``rollback_at_each_stage``). A
completion that runs its statements without a transaction (``--flaw
non_atomic_completion``) leaves its first statements behind and fails here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from harness.checks import CheckResult
from harness.checks.result import Validity
from harness.clients import AppHttp, HttpStatusError, Subscriber
from harness.faults import ToxiproxyClient, down
from harness.scenario import ScenarioContext
from harness.stack import _sql
from harness.targets.launch import Injection
from harness.workload.barrier import CommitGate

__all__ = ["RollbackScenario"]

MAX_PROJECTS = 20
STEPS = 8
ROLLBACK_RATE = 0.3
MAX_ATTEMPTS = 20
#: The stages a real fault cuts, and the row the harness holds to stop the
#: completion's transaction there: (stage, table, how to find the row).
STAGES: tuple[tuple[str, str, str], ...] = (
    (
        "the tracker lock",
        "project_workflow_trackers",
        "SELECT id FROM project_workflow_trackers WHERE project_id = $1",
    ),
    (
        "completing the old alert",
        "workflow_alerts",
        "SELECT id FROM workflow_alerts WHERE project_id = $1 AND status = 'ACTIVE'",
    ),
    ("inserting the new alert", "projects", "SELECT $1::bigint AS id"),
)
#: Bound of each wait of the stage cuts.
STAGE_WAIT_S = 15.0
_STATE_SQL = (
    "SELECT t.current_line_item_id AS tracker,"
    " (SELECT array_agg(array[a.id, a.step_id] ORDER BY a.id) FROM workflow_alerts a"
    "   WHERE a.project_id = t.project_id) AS alerts,"
    " (SELECT array_agg(a.id ORDER BY a.id) FROM workflow_alerts a"
    "   WHERE a.project_id = t.project_id AND a.status = 'ACTIVE') AS active"
    " FROM project_workflow_trackers t WHERE t.project_id = $1"
)


class RollbackScenario:
    name = "rollback"
    summary = (
        f"{ROLLBACK_RATE:.0%} of completions fail just before commit; the database keeps "
        "exactly the committed work and clients hear only of committed alerts"
    )
    needs = ("fault_injection",)
    inject = Injection(rollback_rate=ROLLBACK_RATE)
    #: The stage cuts take the Postgres hop down.
    proxy_faults = ("postgres",)
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
        everyone = seeded.project_ids[:MAX_PROJECTS]
        # The last ones are the stage cuts' own (with enough projects).
        cut = everyone[-len(STAGES) :] if len(everyone) > len(STAGES) else []
        projects = [p for p in everyone if p not in cut]
        fleet = ctx.fleet(
            [
                Subscriber(user, (p,))
                for p in everyone
                for user in sorted(set(seeded.members[p].values()))
            ]
        )
        await fleet.start()
        async with ctx.http() as http:
            outcomes = await asyncio.gather(*(self._walk(ctx, http, p) for p in projects))
            stages = [
                await self._cut_at(ctx, http, project, stage)
                for project, stage in zip(cut, STAGES, strict=True)
            ]
        committed = {p: n for p, (n, _) in zip(projects, outcomes, strict=True)}
        rolled_back = sum(r for _, r in outcomes)
        ctx.extra["stage_cuts"] = stages
        ctx.own_checks.append(_judge_stages(stages))

        # Every committed alert reaches its connected assignees (the relay
        # may still be reconnecting after the last cut); then in-flight
        # events, a phantom included, get a quiet spell to arrive.
        await ctx.drain_commits()
        await ctx.settle()
        await ctx.snapshot_alerts()
        await ctx.close_fleets()
        ctx.own_checks.append(await self._consistency(ctx, committed, rolled_back))

    async def _walk(self, ctx: ScenarioContext, http: AppHttp, project: int) -> tuple[int, int]:
        """Complete STEPS steps, retrying each until it commits: (committed, rolled back)."""
        committed = rolled_back = 0
        for item in ctx.seeded.active_line_items[:STEPS]:
            outcome, retried = await _until_committed(ctx, http, f"w{project}", project, item.id)
            committed += outcome == "ok"
            rolled_back += retried
        return committed, rolled_back

    async def _cut_at(
        self,
        ctx: ScenarioContext,
        http: AppHttp,
        project: int,
        stage: tuple[str, str, str],
    ) -> dict[str, Any]:
        """Cut the Postgres hop while a completion of ``project`` is held at
        ``stage``; return what happened and whether the project is unchanged."""
        name, table, row_sql = stage
        items = ctx.seeded.active_line_items
        user = ctx.seeded.members[project]["project_manager"]
        out: dict[str, Any] = {"stage": name, "project": project, "reached": False}
        # One clean completion first: the project then has an ACTIVE alert.
        first, _ = await _until_committed(ctx, http, f"cut{project}", project, items[0].id)
        if first != "ok":
            out["why"] = f"the first completion did not commit: {first}"
            return out
        before = await _state(ctx, project)
        rows = await asyncio.to_thread(_sql.fetch, ctx.direct_dsn, row_sql, project)
        proxy = ctx.toxiproxy.proxy_name("postgres")
        async with ToxiproxyClient(ctx.toxiproxy.url) as tp:
            outage = down(tp, proxy)
            outage.on_event = ctx.record_fault
            async with CommitGate(ctx.direct_dsn, table, [int(r["id"]) for r in rows]) as gate:
                held = asyncio.create_task(
                    ctx.complete_recorded(
                        http, f"cut{project}", project, items[1].id, user, fail_statuses=(503,)
                    )
                )
                out["reached"] = await _blocked(gate)
                if out["reached"]:
                    await outage.start()
            try:
                op = await asyncio.wait_for(held, STAGE_WAIT_S * 2)
                out["answer"] = op.type if op.type == "ok" else f"{op.type}: {op.error}"
            except Exception as exc:  # recorded 'info' by complete_recorded
                out["answer"] = f"info: {type(exc).__name__}"
            finally:
                if out["reached"]:
                    await outage.heal()
        after = await _state(ctx, project)
        out["unchanged"] = after == before
        if not out["unchanged"]:
            out["before"], out["after"] = before, after
        # The same completion again, with the hop whole: it must commit now.
        out["retried"], _ = await _until_committed(ctx, http, f"cut{project}", project, items[1].id)
        return out

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


async def _blocked(gate: CommitGate) -> bool:
    """Whether the completion's transaction waits at the held row (False: the
    target never touched it, within STAGE_WAIT_S)."""
    return await gate.wait_for_blocked(1, timeout_s=STAGE_WAIT_S) >= 1


async def _state(ctx: ScenarioContext, project: int) -> dict[str, Any]:
    rows = await asyncio.to_thread(_sql.fetch, ctx.direct_dsn, _STATE_SQL, project)
    return {k: (list(v) if isinstance(v, list) else v) for k, v in rows[0].items()}


async def _until_committed(
    ctx: ScenarioContext, http: AppHttp, process: str, project: int, item: int
) -> tuple[str, int]:
    """Send the project manager's completion of ``item`` again after each
    rollback (503: an injected one, or the app's pool reconnecting after a
    cut), at most MAX_ATTEMPTS times. Returns ``ok`` or how it was refused
    (an unknown outcome, recorded 'info', ends it too; so does a 409: the
    step is not current any more), and how many attempts rolled back."""
    user = ctx.seeded.members[project]["project_manager"]
    rolled_back = 0
    for _attempt in range(MAX_ATTEMPTS):
        try:
            op = await ctx.complete_recorded(
                http, process, project, item, user, fail_statuses=(503,)
            )
        except HttpStatusError as exc:
            return f"info: {exc}", rolled_back
        if op.type == "ok":
            return "ok", rolled_back
        if not (op.error or "").startswith("503"):
            return f"{op.type}: {op.error}", rolled_back
        rolled_back += 1
    return f"not committed after {MAX_ATTEMPTS} attempts", rolled_back


def _judge_stages(stages: list[dict[str, Any]]) -> CheckResult:
    reached = [s for s in stages if s["reached"]]
    broken = [s for s in reached if not s["unchanged"] or s["retried"] != "ok"]
    valid: Validity = not broken if reached else "unknown"
    return CheckResult(
        name="rollback_at_each_stage",
        valid=valid,
        summary=(
            f"the Postgres hop was cut at {len(reached)} of {len(stages)} stage(s) of the"
            f" completion ({', '.join(s['stage'] for s in reached) or 'none reached'});"
            f" {len(broken)} left a trace or could not be completed again"
        ),
        counts={"stages": len(stages), "reached": len(reached), "broken": len(broken)},
        counterexamples=tuple(broken),
    )
