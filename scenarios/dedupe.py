"""``dedupe``: racing alert generation never makes two ACTIVE alerts for one step.

The seed's "race condition in alert generation" and its testing-checklist
item "verify duplicate prevention works". Alerts for a project's current
step come from two places that race in production: the batch generator
(a scheduled job, possibly running twice at once) and the completion of the
previous step. Here, for a few rounds, every project's current step is
completed while several batch generations for all the projects run at the
same moment. After every round the alerts table is snapshot, and
``no_duplicates`` checks every snapshot and the final state.

A last half-round completes the step of every other project only; at the
end every project must have exactly one ACTIVE alert, for its current step.

The race is forced, not hoped for: each round closes a :class:`CommitGate`
on the scenario's ``projects`` rows, so that no statement inserting an alert
can commit (it waits in its foreign-key check). Two completions go first;
then the six generations, which read their trackers while those completions
are in flight; the gate opens only when all of them are held, each having
run its check on a snapshot taken before any other committed. A round with
fewer than two writers held makes ``race_forced`` unknown rather than a
pass.

The reference pipeline relies on the partial unique index and ``ON
CONFLICT DO NOTHING``; the seed's check-then-insert (``--flaw
no_unique_index``) lets concurrent inserts both pass the check, and fails
here. So does the seed's unscoped update (``--flaw unscoped_complete``):
completing a step in one project completes the ACTIVE alert of the same
step in every other project, whose users lose it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, ClassVar

from harness.checks import CheckResult
from harness.clients import AppHttp
from harness.scenario import ScenarioContext
from harness.slo import only_slos
from harness.stack import _sql
from harness.workload.barrier import CommitGate

__all__ = ["DedupeScenario"]

MAX_PROJECTS = 200
#: Batch generations racing each other (and the completions) in each round.
CONCURRENT_GENERATIONS = 6
ROUNDS = 4
#: How long a round may wait for its racers to be held at the gate: well
#: under a target's statement timeout (the reference's is 10 s), since a
#: held statement counts against it.
GATE_TIMEOUT_S = 5.0
#: Completions held at the gate before the generations start (a target's
#: connection pool must admit these and the generations at once: 8 <= 10).
EARLY_COMPLETIONS = 2


class DedupeScenario:
    name = "dedupe"
    summary = (
        f"{CONCURRENT_GENERATIONS} batch generations at once, racing each other and the "
        "completions, for a few rounds: never two ACTIVE alerts for one project step"
    )
    # A fixed size, so that figures compare across runs of any --projects.
    # (Before the gate, size was what made the statements overlap: at 60
    # projects the seed's check-then-insert slipped through one run in three,
    # and at 200 still about one in three under CI's load.)
    max_projects = MAX_PROJECTS
    min_projects = MAX_PROJECTS
    checks: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "no_duplicates": {},
        "linearizable": {},
        "right_alert": {},
    }
    # Only duplication_rate applies: no sustained load to judge latency on.
    slos: ClassVar[Mapping[str, Mapping[str, Any]]] = only_slos("duplication_rate")

    async def run(self, ctx: ScenarioContext) -> None:
        projects = ctx.seeded.project_ids[:MAX_PROJECTS]
        items = ctx.seeded.active_line_items
        rounds = min(ROUNDS, len(items))
        answered = {"generate": 0, "complete": 0}
        errors: list[str] = []
        # (projects, step whose completion races the generations) per round.
        plan: list[tuple[list[int], int | None]] = [(projects, None)]  # no alert exists yet
        # The previous step's completion inserts this step's alert, while the
        # batch generations try to insert it too.
        plan += [(projects, step - 1) for step in range(1, rounds)]
        if rounds < len(items):
            # A last half-round: only every other project completes its step.
            # The others' ACTIVE alerts for that same step must stay (a
            # completion may only touch its own project's alerts).
            plan.append((projects[::2], rounds - 1))
        async with ctx.http(max_connections=64) as http:
            gated = []
            for racing, step in plan:
                gated.append(await self._race(ctx, http, racing, step, answered, errors))
                await ctx.snapshot_alerts()
        ctx.own_checks.append(await self._current_step_alerts(ctx, projects))
        ctx.own_checks.append(_race_forced(gated))
        ctx.extra["requests_answered"] = answered
        expected = CONCURRENT_GENERATIONS * len(plan)
        ok = answered["generate"] == expected and not errors
        ctx.own_checks.append(
            CheckResult(
                name="racing_requests_answered",
                valid=ok,
                summary=(
                    f"{answered['generate']} of {expected} batch generations and"
                    f" {answered['complete']} completions answered"
                    + (f"; errors: {'; '.join(errors[:3])}" if errors else "")
                ),
                counts={**answered, "errors": len(errors)},
            )
        )

    @staticmethod
    async def _current_step_alerts(ctx: ScenarioContext, projects: list[int]) -> CheckResult:
        """Every project has exactly one ACTIVE alert, for its current step."""
        rows = await asyncio.to_thread(
            _sql.fetch,
            ctx.direct_dsn,
            "SELECT t.project_id, t.current_line_item_id AS current,"
            " array_remove(array_agg(a.step_id ORDER BY a.id), NULL) AS active"
            " FROM project_workflow_trackers t"
            " LEFT JOIN workflow_alerts a ON a.project_id = t.project_id AND a.status = 'ACTIVE'"
            " WHERE t.project_id = ANY($1::bigint[]) GROUP BY t.project_id, t.current_line_item_id",
            projects,
        )
        wrong = [
            {"project_id": r["project_id"], "current_step": r["current"], "active": r["active"]}
            for r in rows
            if list(r["active"]) != [r["current"]]
        ]
        missing = sum(1 for w in wrong if not w["active"])
        return CheckResult.build(
            "current_step_alerts",
            violations=wrong,
            valid=not wrong,
            summary=(
                f"{len(rows) - len(wrong)} of {len(rows)} projects have exactly one ACTIVE alert,"
                f" for their current step ({missing} with none, {len(wrong) - missing} with"
                " others or several)"
            ),
            counts={"projects": len(rows), "wrong": len(wrong), "without_active_alert": missing},
        )

    async def _race(
        self,
        ctx: ScenarioContext,
        http: AppHttp,
        projects: list[int],
        complete_step: int | None,
        answered: dict[str, int],
        errors: list[str],
    ) -> int:
        """One round; returns how many writers were held at the gate when it opened."""

        async def generate(n: int) -> None:
            done = await ctx.generate_recorded(http, projects, process=f"g{n}")
            if done.type == "ok":
                answered["generate"] += 1
            else:
                errors.append(f"generate: {done.error}")

        async def complete(project: int, step: int) -> None:
            user = ctx.seeded.members[project]["project_manager"]
            item = ctx.seeded.active_line_items[step].id
            # Recorded 'info' by complete_recorded (and kept in the history).
            with contextlib.suppress(Exception):
                op = await ctx.complete_recorded(http, f"c{project}", project, item, user)
                answered["complete"] += op.type == "ok"

        async with CommitGate(ctx.direct_dsn, "projects", projects) as gate:
            tasks: list[asyncio.Task[None]] = []
            try:
                held = 0
                if complete_step is not None:
                    # A few completions first, held uncommitted at the gate:
                    # the generations then read trackers whose completion is
                    # in flight (the race that once left stale alerts).
                    first = projects[:EARLY_COMPLETIONS]
                    tasks += [asyncio.create_task(complete(p, complete_step)) for p in first]
                    held = await gate.wait_for_blocked(len(first), timeout_s=GATE_TIMEOUT_S)
                gens = [asyncio.create_task(generate(n)) for n in range(CONCURRENT_GENERATIONS)]
                tasks += gens
                # Every generation held at the gate, or answered because it had
                # nothing to insert (under Read Committed, on a snapshot that
                # no racer's commit could be in).
                await gate.wait_for_blocked(
                    held + CONCURRENT_GENERATIONS,
                    timeout_s=GATE_TIMEOUT_S,
                    finished=lambda: sum(g.done() for g in gens),
                )
                if complete_step is not None:
                    rest = projects[EARLY_COMPLETIONS:]
                    tasks += [asyncio.create_task(complete(p, complete_step)) for p in rest]
                await gate.open()  # every held statement has checked; now they commit
            finally:
                await asyncio.gather(*tasks)
        return gate.released


def _race_forced(gated: list[int]) -> CheckResult:
    """Every round had at least two writers held at the gate when it opened.

    Two is the least that can race; fewer means the target's statements never
    met in Postgres (a pool of one connection, or no foreign key from
    ``workflow_alerts.project_id`` to ``projects``, which the gate holds on),
    so the scenario could not have seen a duplicate: unknown, not pass."""
    short = [i for i, n in enumerate(gated) if n < 2]
    return CheckResult(
        name="race_forced",
        valid="unknown" if short else True,
        summary=(
            f"writers held at the gate per round: {gated}"
            + (f"; rounds {short} had fewer than two, so no race was forced" if short else "")
        ),
        counts={"rounds": len(gated), "min_gated": min(gated, default=0)},
    )
