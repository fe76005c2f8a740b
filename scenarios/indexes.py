"""``indexes``: the hot queries use the intended indexes, and the indexes pay.

The seed's "check database index performance" item. The seeded projects get
at least 100,000 alerts of history (bulk-inserted, COMPLETED, one ACTIVE per
project), the tables are analysed, and every hot query of the pipeline is
run under ``EXPLAIN (ANALYZE, BUFFERS)``: none may scan ``workflow_alerts``
sequentially, and each must use an index. The queries are the contract's
reads, not any target's own SQL, and the target's indexes are judged by what
the planner does with them, not by their names (the seed's names are listed
as recommended). Then, inside a transaction that is rolled back, every index
of the two tables that backs no constraint is dropped and the same queries
timed again; the report shows both timings and their ratio.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from typing import Any, ClassVar

import asyncpg

from harness.checks import CheckResult
from harness.scenario import ScenarioContext

__all__ = ["HOT_QUERIES", "IndexScenario"]

MIN_ALERTS = 100_000
TIMING_RUNS = 5

#: name -> (SQL, the seed's indexes meant to serve it (recommended, not
#: required), what the pipeline uses it for). Parameters come from the seeded
#: data (:meth:`IndexScenario._arguments`).
HOT_QUERIES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "user_alerts": (
        "SELECT id, title, created_at FROM workflow_alerts WHERE assigned_to_id = $1"
        " AND status = 'ACTIVE' ORDER BY created_at DESC, id DESC LIMIT 500",
        ("idx_workflow_alerts_assignee_status",),
        "GET /api/users/{id}/alerts on a cache miss",
    ),
    "project_active": (
        "SELECT id, step_id FROM workflow_alerts WHERE project_id = $1 AND status = 'ACTIVE'",
        # The partial unique index covers status = 'ACTIVE' too, and is smaller.
        ("idx_workflow_alerts_project_status", "uq_workflow_alerts_active_step"),
        "a project's open alerts",
    ),
    "complete_old_step": (
        "SELECT id FROM workflow_alerts WHERE project_id = $1 AND step_id = $2"
        " AND status = 'ACTIVE'",
        ("uq_workflow_alerts_active_step", "idx_workflow_alerts_project_status"),
        "completion marks the old step's ACTIVE alerts COMPLETED",
    ),
    "recent_alerts": (
        "SELECT id, project_id FROM workflow_alerts ORDER BY created_at DESC LIMIT 50",
        ("idx_workflow_alerts_created_project",),
        "the newest alerts (dashboards, relay replay window)",
    ),
    "trackers_at_step": (
        "SELECT project_id FROM project_workflow_trackers WHERE current_line_item_id = $1",
        ("idx_project_workflow_trackers_line_item",),
        "projects waiting on a line item",
    ),
}
#: Never scanned sequentially. (The trackers table is small, one row per
#: project; there the planner may rightly prefer a scan, so it is reported
#: but not judged.)
_GUARDED = ("workflow_alerts",)


def sql_tables(sql: str) -> set[str]:
    """Table names following FROM in ``sql`` (enough for the queries above)."""
    words = sql.replace(",", " ").split()
    return {words[i + 1] for i, w in enumerate(words[:-1]) if w.upper() == "FROM"}


def _scans(plan: Mapping[str, Any]) -> list[tuple[str, str | None, str | None]]:
    """(node type, relation, index) of every node of an EXPLAIN JSON plan."""
    found = [(plan["Node Type"], plan.get("Relation Name"), plan.get("Index Name"))]
    for child in plan.get("Plans", []):
        found.extend(_scans(child))
    return found


class IndexScenario:
    name = "indexes"
    summary = (
        "100,000+ alerts: EXPLAIN (ANALYZE, BUFFERS) of the hot queries uses the intended "
        "indexes; timings with and without them"
    )
    checks: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    slos: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        name: {"enabled": False}
        for name in (
            "generation_p99_ms",
            "delivery_rate",
            "queries_per_request",
            "duplication_rate",
            "reconnection_p99_ms",
        )
    }

    async def run(self, ctx: ScenarioContext) -> None:
        conn = await asyncpg.connect(ctx.direct_dsn, timeout=30)
        try:
            total = await self._fill(conn, ctx)
            args = await self._arguments(conn, ctx)
            indexed = {
                name: await self._explain(conn, sql, args[name])
                for name, (sql, _, _) in HOT_QUERIES.items()
            }
            bare = await self._without_indexes(conn, args)
        finally:
            await conn.close()

        rows: list[dict[str, Any]] = []
        misses: list[dict[str, Any]] = []
        for name, (_sql, intended, purpose) in HOT_QUERIES.items():
            plan, ms = indexed[name]
            scans = _scans(plan)
            seq = [rel for node, rel, _ in scans if node == "Seq Scan" and rel is not None]
            used = sorted({idx for _, _, idx in scans if idx})
            judged = any(table in sql_tables(_sql) for table in _GUARDED)
            without_ms = bare[name]
            rows.append(
                {
                    "query": name,
                    "purpose": purpose,
                    "recommended_indexes": list(intended),
                    "judged": judged,
                    "indexes_used": used,
                    "seq_scans": seq,
                    "with_indexes_ms": round(ms, 3),
                    "without_indexes_ms": round(without_ms, 3),
                    "speedup": round(without_ms / ms, 1) if ms > 0 else None,
                }
            )
            if judged and (set(seq) & set(_GUARDED) or not used):
                misses.append(
                    {"query": name, "recommended": list(intended), "used": used, "seq": seq}
                )
        ctx.extra["indexes"] = {"alerts": total, "queries": rows}
        judged_count = sum(1 for r in rows if r["judged"])
        speedups = [float(r["speedup"]) for r in rows if r["judged"] and r["speedup"]]
        ctx.own_checks.append(
            CheckResult(
                name="index_use",
                valid=not misses,
                summary=(
                    f"{judged_count - len(misses)} of {judged_count} hot queries on "
                    f"workflow_alerts use their index over {total} alerts; median speed-up "
                    f"{statistics.median(speedups) if speedups else 0:.0f}x"
                ),
                counts={"queries": judged_count, "misses": len(misses), "alerts": total},
                counterexamples=tuple(misses),
            )
        )

    async def _fill(self, conn: Any, ctx: ScenarioContext) -> int:
        """Bulk-insert COMPLETED history until there are MIN_ALERTS alerts; ANALYZE."""
        projects = len(ctx.seeded.project_ids)
        per_project = max(1, -(-MIN_ALERTS // projects))
        await conn.execute(
            """
            INSERT INTO workflow_alerts (type, priority, status, title, message, project_id,
                workflow_id, step_id, assigned_to_id, created_at, completed_at)
            SELECT 'Work Flow Line Item', 'MEDIUM', 'COMPLETED', li.item_name, 'history',
                   t.project_id, t.id, li.id, m.user_id,
                   now() - make_interval(mins => g), now() - make_interval(mins => g - 1)
            FROM project_workflow_trackers t
            CROSS JOIN generate_series(1, $1::int) g
            JOIN LATERAL (
                SELECT id, item_name, responsible_role FROM workflow_line_items
                ORDER BY id OFFSET (g % 10) LIMIT 1
            ) li ON true
            JOIN LATERAL (
                SELECT user_id FROM project_members pm
                WHERE pm.project_id = t.project_id AND pm.role = li.responsible_role LIMIT 1
            ) m ON true
            """,
            per_project,
            timeout=600,
        )
        # One ACTIVE alert per project, as in a running system.
        await conn.execute(
            """
            INSERT INTO workflow_alerts (type, priority, status, title, message, project_id,
                workflow_id, step_id, assigned_to_id)
            SELECT 'Work Flow Line Item', 'MEDIUM', 'ACTIVE', li.item_name, 'open', t.project_id,
                   t.id, li.id, m.user_id
            FROM project_workflow_trackers t
            JOIN workflow_line_items li ON li.id = t.current_line_item_id
            JOIN project_members m ON m.project_id = t.project_id
                 AND m.role = li.responsible_role
            ON CONFLICT DO NOTHING
            """
        )
        await conn.execute("ANALYZE")
        total: int = await conn.fetchval("SELECT count(*) FROM workflow_alerts")
        return total

    async def _arguments(self, conn: Any, ctx: ScenarioContext) -> dict[str, tuple[Any, ...]]:
        active = await conn.fetchrow(
            "SELECT project_id, step_id, assigned_to_id FROM workflow_alerts"
            " WHERE status = 'ACTIVE' ORDER BY project_id LIMIT 1"
        )
        return {
            "user_alerts": (active["assigned_to_id"],),
            "project_active": (active["project_id"],),
            "complete_old_step": (active["project_id"], active["step_id"]),
            "recent_alerts": (),
            "trackers_at_step": (active["step_id"],),
        }

    async def _explain(
        self, conn: Any, sql: str, args: tuple[Any, ...]
    ) -> tuple[dict[str, Any], float]:
        """The plan (JSON) and the median execution time (ms) of TIMING_RUNS runs."""
        times = []
        plan: dict[str, Any] = {}
        for _ in range(TIMING_RUNS):
            raw = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
            doc = raw if isinstance(raw, list) else json.loads(raw)
            plan = doc[0]["Plan"]
            times.append(float(doc[0]["Execution Time"]))
        return plan, statistics.median(times)

    async def _without_indexes(
        self, conn: Any, args: dict[str, tuple[Any, ...]]
    ) -> dict[str, float]:
        """The same queries with the target's indexes dropped (all but those behind
        a constraint), in a transaction rolled back after."""
        timings: dict[str, float] = {}
        tx = conn.transaction()
        await tx.start()
        try:
            droppable = await conn.fetch(
                "SELECT i.indexrelid::regclass::text AS name FROM pg_index i"
                " WHERE i.indrelid IN ('workflow_alerts'::regclass,"
                " 'project_workflow_trackers'::regclass)"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
            )
            for row in droppable:
                await conn.execute(f"DROP INDEX {row['name']}")
            for name, (sql, _, _) in HOT_QUERIES.items():
                _plan, ms = await self._explain(conn, sql, args[name])
                timings[name] = ms
        finally:
            await tx.rollback()
        return timings
