"""The alert row, its JSON form, and the one INSERT statement that creates alerts.

Batch generation and completion both create alerts with ``insert_alerts_sql``:
candidates in, ON CONFLICT on the partial unique index, ``pg_notify`` for each
row actually inserted - all in one statement, so the notification is part of
the caller's transaction and delivered only on commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = [
    "ALERT_TYPE",
    "NOTIFY_CHANNEL",
    "Alert",
    "AlertEmitter",
    "NullEmitter",
    "candidates_sql",
    "insert_alerts_sql",
]

NOTIFY_CHANNEL = "alert_created"
"""Postgres channel; payload is JSON with alertId, projectId, assignedToId, stepId, lineItemId."""
ALERT_TYPE = "Work Flow Line Item"
ALERT_COLUMNS = (
    "id, type, priority, status, title, message, project_id, workflow_id, step_id,"
    " assigned_to_id, created_at, completed_at"
)


@dataclasses.dataclass(frozen=True)
class Alert:
    """One row of workflow_alerts."""

    id: int
    type: str
    priority: str
    status: str
    title: str
    message: str
    project_id: int
    workflow_id: int
    step_id: int
    assigned_to_id: int | None
    created_at: dt.datetime
    completed_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Alert:
        return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls)})

    def to_json(self) -> dict[str, Any]:
        """The API form (camelCase, ISO-8601 times)."""
        return {
            "id": self.id,
            "type": self.type,
            "priority": self.priority,
            "status": self.status,
            "title": self.title,
            "message": self.message,
            "projectId": self.project_id,
            "workflowId": self.workflow_id,
            "stepId": self.step_id,
            "lineItemId": self.step_id,
            "assignedToId": self.assigned_to_id,
            "createdAt": self.created_at.isoformat(),
            "completedAt": self.completed_at.isoformat() if self.completed_at else None,
        }


class AlertEmitter(Protocol):
    """Direct real-time emit of a new alert.

    The reference never calls it on the correct path (the relay LISTENs to
    ``alert_created`` and emits after commit); the ``emit_before_commit``
    flaw calls it inside the transaction, as the seed system did.
    """

    async def emit(self, alert: Alert) -> None: ...


class NullEmitter:
    """An emitter that drops everything (until the Socket.IO issue lands)."""

    async def emit(self, alert: Alert) -> None:
        return None


def candidates_sql(project_filter: str, *, lock: bool = True) -> str:
    """Alerts due for the trackers selected by ``project_filter`` (SQL on ``t``).

    One row per project whose tracker points at an active line item: the
    alert's title, message and assignee (the member holding the responsible role).

    The trackers are share-locked: a batch generation waits for a completion
    of the same project that is in flight, then reads the tracker again (Read
    Committed re-checks a locked row), so it never inserts an alert for the
    step that completion has just finished. Found by the ``dedupe`` scenario:
    without the lock, about one project in six ended with a stale ACTIVE
    alert for an already-completed step beside the current one. ``lock=False``
    is the seed's unlocked read (with the ``no_unique_index`` flaw).
    """
    return f"""
    SELECT t.project_id, t.id AS workflow_id, li.id AS step_id, li.item_name AS title,
           li.item_name || ': due in ' || li.alert_days || ' days ('
             || s.display_name || ', ' || p.phase_type || ')' AS message,
           m.user_id AS assigned_to_id
    FROM project_workflow_trackers t
    JOIN workflow_line_items li ON li.id = t.current_line_item_id
    JOIN workflow_sections s ON s.id = li.section_id
    JOIN workflow_phases p ON p.id = s.phase_id
    LEFT JOIN LATERAL (
        SELECT pm.user_id FROM project_members pm
        WHERE pm.project_id = t.project_id AND pm.role = li.responsible_role
        ORDER BY pm.user_id LIMIT 1
    ) m ON true
    WHERE ({project_filter}) AND li.is_active AND t.completed_at IS NULL
    {"FOR SHARE OF t" if lock else ""}
    """


def insert_alerts_sql(candidates: str, *, unique_index: bool = True) -> str:
    """One statement: insert the candidates' alerts, notify, count.

    Returns one row per inserted alert (all alert columns plus ``candidates``,
    the number of candidate rows), or a single row with ``id`` NULL when
    nothing was inserted. Without the unique index (the ``no_unique_index``
    flaw) it falls back to the seed's check-then-insert, which races.
    """
    if unique_index:
        guard = ""
        conflict = "ON CONFLICT (project_id, step_id) WHERE status = 'ACTIVE' DO NOTHING"
    else:
        guard = (
            "WHERE NOT EXISTS (SELECT 1 FROM workflow_alerts a WHERE a.project_id = c.project_id"
            " AND a.step_id = c.step_id AND a.status = 'ACTIVE')"
        )
        conflict = ""
    return f"""
    WITH cand AS ({candidates}),
    ins AS (
        INSERT INTO workflow_alerts
            (type, priority, status, title, message, project_id, workflow_id, step_id,
             assigned_to_id)
        SELECT '{ALERT_TYPE}', 'MEDIUM', 'ACTIVE', c.title, c.message, c.project_id,
               c.workflow_id, c.step_id, c.assigned_to_id
        FROM cand c {guard}
        ORDER BY c.project_id
        {conflict}
        RETURNING {ALERT_COLUMNS}
    ),
    notified AS (
        SELECT ins.*, pg_notify('{NOTIFY_CHANNEL}', json_build_object(
            'alertId', ins.id, 'projectId', ins.project_id, 'assignedToId', ins.assigned_to_id,
            'stepId', ins.step_id, 'lineItemId', ins.step_id, 'workflowId', ins.workflow_id,
            'title', ins.title, 'message', ins.message, 'priority', ins.priority,
            'createdAt', ins.created_at)::text) AS notified
        FROM ins
    )
    SELECT k.candidates, n.* FROM (SELECT count(*) AS candidates FROM cand) k
    LEFT JOIN notified n ON true
    ORDER BY n.project_id
    """
