// The alert row: its JSON forms, the real-time events it produces, and the
// one INSERT statement that creates alerts.
//
// Batch generation and completion both create alerts with insertAlertsSql:
// candidates in, ON CONFLICT on the partial unique index, pg_notify for each
// row actually inserted -- all in one statement, so the notification is part
// of the caller's transaction and delivered only on commit (the seed's
// "emit after commit" fix, done by Postgres rather than by hoping).

/** Postgres channel; the payload is JSON (see insertAlertsSql). */
export const NOTIFY_CHANNEL = 'alert_created';
export const ALERT_TYPE = 'Work Flow Line Item';
export const ALERT_COLUMNS =
  'id, type, priority, status, title, message, project_id, workflow_id, step_id,' +
  ' assigned_to_id, created_at, completed_at';

/** The API form of an alert row (camelCase; the reference's Alert.to_json). */
export function alertToJson(row) {
  return {
    id: row.id,
    type: row.type,
    priority: row.priority,
    status: row.status,
    title: row.title,
    message: row.message,
    projectId: row.project_id,
    workflowId: row.workflow_id,
    stepId: row.step_id,
    lineItemId: row.step_id,
    assignedToId: row.assigned_to_id,
    createdAt: row.created_at,
    completedAt: row.completed_at ?? null,
  };
}

/** The notification payload for an alert row (replay and direct emits). */
export function notificationFromRow(row) {
  return {
    alertId: row.id,
    projectId: row.project_id,
    assignedToId: row.assigned_to_id,
    stepId: row.step_id,
    lineItemId: row.step_id,
    workflowId: row.workflow_id,
    title: row.title,
    message: row.message,
    priority: row.priority,
    createdAt: row.created_at,
  };
}

/**
 * The [event, room, payload] triples one committed alert produces, from its
 * notification payload: new_alert to the assignee, alerts_refresh and
 * workflow_updated to the project room (the seed's missing events).
 */
export function alertEvents(n) {
  const events = [];
  if (n.assignedToId !== null && n.assignedToId !== undefined) {
    events.push([
      'new_alert',
      `user_${n.assignedToId}`,
      {
        id: n.alertId,
        title: n.title,
        message: n.message,
        priority: n.priority,
        projectId: n.projectId,
        stepId: n.stepId,
        assignedToId: n.assignedToId,
        createdAt: n.createdAt,
      },
    ]);
  }
  events.push([
    'alerts_refresh',
    `project_${n.projectId}`,
    { projectId: n.projectId, type: 'workflow_progression', alertId: n.alertId },
  ]);
  events.push([
    'workflow_updated',
    `project_${n.projectId}`,
    { projectId: n.projectId, lineItemId: n.stepId, alertId: n.alertId },
  ]);
  return events;
}

/**
 * Alerts due for the trackers selected by ``projectFilter`` (SQL on ``t``):
 * one row per project whose tracker points at an active line item, with the
 * alert's title, message and assignee (the member holding the line item's
 * responsible role, the lowest user id if several).
 *
 * The trackers are share-locked: a batch generation waits for an in-flight
 * completion of the same project, then reads the tracker again (Read
 * Committed re-checks a locked row), so it never inserts an alert for the
 * step that completion has just finished. ``lock: false`` is the seed's
 * unlocked read (with the no_unique_index flaw).
 */
export function candidatesSql(projectFilter, { lock = true } = {}) {
  return `
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
    WHERE (${projectFilter}) AND li.is_active AND t.completed_at IS NULL
    ${lock ? 'FOR SHARE OF t' : ''}`;
}

/**
 * One statement: insert the candidates' alerts, notify each, count.
 *
 * Returns one row per inserted alert (all alert columns plus ``candidates``,
 * the number of candidate rows), or a single row with ``id`` NULL when
 * nothing was inserted. Without the unique index (the no_unique_index flaw)
 * it falls back to the seed's check-then-insert, which races.
 */
export function insertAlertsSql(candidates, { uniqueIndex = true } = {}) {
  const guard = uniqueIndex
    ? ''
    : 'WHERE NOT EXISTS (SELECT 1 FROM workflow_alerts a WHERE a.project_id = c.project_id' +
      " AND a.step_id = c.step_id AND a.status = 'ACTIVE')";
  const conflict = uniqueIndex ? "ON CONFLICT (project_id, step_id) WHERE status = 'ACTIVE' DO NOTHING" : '';
  return `
    WITH cand AS (${candidates}),
    ins AS (
        INSERT INTO workflow_alerts
            (type, priority, status, title, message, project_id, workflow_id, step_id,
             assigned_to_id)
        SELECT '${ALERT_TYPE}', 'MEDIUM', 'ACTIVE', c.title, c.message, c.project_id,
               c.workflow_id, c.step_id, c.assigned_to_id
        FROM cand c ${guard}
        ORDER BY c.project_id
        ${conflict}
        RETURNING ${ALERT_COLUMNS}
    ),
    notified AS (
        SELECT ins.*, pg_notify('${NOTIFY_CHANNEL}', json_build_object(
            'alertId', ins.id, 'projectId', ins.project_id, 'assignedToId', ins.assigned_to_id,
            'stepId', ins.step_id, 'lineItemId', ins.step_id, 'workflowId', ins.workflow_id,
            'title', ins.title, 'message', ins.message, 'priority', ins.priority,
            'createdAt', ins.created_at)::text) AS notified
        FROM ins
    )
    SELECT k.candidates, n.* FROM (SELECT count(*) AS candidates FROM cand) k
    LEFT JOIN notified n ON true
    ORDER BY n.project_id`;
}
