"""Batch alert generation: alerts for the current line item of many projects.

The correct path is one statement whatever the number of projects (the seed's
fix for its N+1 problem), and idempotent through the partial unique index:
generating twice creates nothing new.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from reference_impl.alerts import Alert, candidates_sql, insert_alerts_sql
from reference_impl.db import Connection
from reference_impl.flaws import Flaw

__all__ = ["GenerationResult", "generate_alerts"]


@dataclasses.dataclass(frozen=True)
class GenerationResult:
    """Outcome of one batch."""

    requested: int
    """Distinct project ids asked for."""
    candidates: int
    """Projects whose tracker points at an active line item."""
    created: list[Alert]
    """Alerts inserted by this call (committed, each notified on ``alert_created``)."""

    @property
    def duplicates_prevented(self) -> int:
        """Candidates that already had their ACTIVE alert."""
        return self.candidates - len(self.created)


_BATCH_SQL = insert_alerts_sql(candidates_sql("t.project_id = ANY($1::bigint[])"))
# The no_unique_index flaw is the seed's code: neither the index nor the lock.
_BATCH_SQL_NO_INDEX = insert_alerts_sql(
    candidates_sql("t.project_id = ANY($1::bigint[])", lock=False), unique_index=False
)
_SINGLE_SQL = insert_alerts_sql(
    "SELECT $1::bigint AS project_id, $2::bigint AS workflow_id, $3::bigint AS step_id,"
    " $4::text AS title, $5::text AS message, $6::bigint AS assigned_to_id"
)
_SINGLE_SQL_NO_INDEX = insert_alerts_sql(
    "SELECT $1::bigint AS project_id, $2::bigint AS workflow_id, $3::bigint AS step_id,"
    " $4::text AS title, $5::text AS message, $6::bigint AS assigned_to_id",
    unique_index=False,
)


async def generate_alerts(
    conn: Connection, project_ids: Sequence[int], *, flaws: frozenset[Flaw] = frozenset()
) -> GenerationResult:
    """Create the missing ACTIVE alert of each project's current line item.

    Projects without a tracker, with a finished workflow or whose current line
    item is inactive get nothing. Runs in the caller's transaction if any;
    otherwise the single statement is its own transaction.
    """
    ids = sorted(set(project_ids))
    if Flaw.N_PLUS_ONE in flaws:
        return await _generate_one_by_one(conn, ids, flaws)
    sql = _BATCH_SQL_NO_INDEX if Flaw.NO_UNIQUE_INDEX in flaws else _BATCH_SQL
    rows = await conn.fetch(sql, ids)
    candidates = int(rows[0]["candidates"]) if rows else 0
    created = [Alert.from_row(r) for r in rows if r["id"] is not None]
    return GenerationResult(requested=len(ids), candidates=candidates, created=created)


async def _generate_one_by_one(
    conn: Connection, ids: list[int], flaws: frozenset[Flaw]
) -> GenerationResult:
    """The seed's original loop: four round trips per project (the n_plus_one flaw)."""
    sql = _SINGLE_SQL_NO_INDEX if Flaw.NO_UNIQUE_INDEX in flaws else _SINGLE_SQL
    candidates = 0
    created: list[Alert] = []
    for project_id in ids:
        tracker = await conn.fetchrow(
            "SELECT id, current_line_item_id FROM project_workflow_trackers"
            " WHERE project_id = $1 AND completed_at IS NULL",
            project_id,
        )
        if tracker is None or tracker["current_line_item_id"] is None:
            continue
        item = await conn.fetchrow(
            "SELECT li.id, li.item_name, li.responsible_role, li.alert_days, li.is_active,"
            " s.display_name, p.phase_type FROM workflow_line_items li"
            " JOIN workflow_sections s ON s.id = li.section_id"
            " JOIN workflow_phases p ON p.id = s.phase_id WHERE li.id = $1",
            tracker["current_line_item_id"],
        )
        if item is None or not item["is_active"]:
            continue
        assignee = await conn.fetchval(
            "SELECT user_id FROM project_members WHERE project_id = $1 AND role = $2"
            " ORDER BY user_id LIMIT 1",
            project_id,
            item["responsible_role"],
        )
        message = (
            f"{item['item_name']}: due in {item['alert_days']} days"
            f" ({item['display_name']}, {item['phase_type']})"
        )
        rows = await conn.fetch(
            sql, project_id, tracker["id"], item["id"], item["item_name"], message, assignee
        )
        candidates += 1
        created.extend(Alert.from_row(r) for r in rows if r["id"] is not None)
    return GenerationResult(requested=len(ids), candidates=candidates, created=created)
