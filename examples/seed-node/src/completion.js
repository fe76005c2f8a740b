// Completing a line item: one transaction that advances a project's workflow
// (the seed's WorkflowProgressionService.completeLineItem, with its fixes).
//
// Statements, in order, each followed by ``hooks.after(stage)`` (the seam
// fault injection uses):
//
// 1. locked: lock the tracker row (FOR UPDATE), check membership and that
//    the line item is the current one (else StaleCompletion -> 409);
// 2. advanced: move the tracker to the next ACTIVE line item in workflow
//    order -- phase position, section position, item position, id -- across
//    sections and phases (or finish the workflow after the last one);
// 3. completed_old: mark THIS project's ACTIVE alerts of the old step
//    COMPLETED (the seed's updateMany had no project filter);
// 4. inserted: insert the next step's alert and pg_notify it (delivered by
//    Postgres only on commit);
// 5. before_commit: the last moment inside the transaction.
//
// Any error rolls the whole transaction back.

import { alertToJson, candidatesSql, insertAlertsSql, notificationFromRow } from './alerts.js';
import { prepared, transaction } from './db.js';

/** A completion the caller cannot perform; ``status`` is the HTTP status. */
export class CompletionError extends Error {
  get status() {
    return 400;
  }
}

export class ProjectNotFound extends CompletionError {
  get status() {
    return 404;
  }
}

export class NotAMember extends CompletionError {
  get status() {
    return 403;
  }
}

/** The line item is not the project's current one (stale or repeated). */
export class StaleCompletion extends CompletionError {
  constructor(message, currentLineItemId) {
    super(message);
    this.currentLineItemId = currentLineItemId;
  }

  get status() {
    return 409;
  }
}

/** A failure injected on purpose just before COMMIT (fault injection) -> 503. */
export class InjectedRollback extends Error {}

const LOCK_SQL = `
SELECT t.id, t.current_line_item_id, t.completed_at,
       EXISTS (SELECT 1 FROM project_members pm
               WHERE pm.project_id = t.project_id AND pm.user_id = $2) AS is_member
FROM project_workflow_trackers t WHERE t.project_id = $1`;

// The next active line item in workflow order, computed once (MATERIALIZED:
// it is referenced twice in SET).
const ADVANCE_SQL = `
WITH nxt AS MATERIALIZED (
    SELECT (
        SELECT li.id FROM workflow_line_items li
        JOIN workflow_sections s ON s.id = li.section_id
        JOIN workflow_phases p ON p.id = s.phase_id
        WHERE li.is_active AND (p.position, s.position, li.position, li.id) > (
            SELECT p0.position, s0.position, li0.position, li0.id FROM workflow_line_items li0
            JOIN workflow_sections s0 ON s0.id = li0.section_id
            JOIN workflow_phases p0 ON p0.id = s0.phase_id WHERE li0.id = $2)
        ORDER BY p.position, s.position, li.position, li.id LIMIT 1
    ) AS id
)
UPDATE project_workflow_trackers t SET
    current_line_item_id = nxt.id,
    completed_at = CASE WHEN nxt.id IS NULL THEN now() END,
    updated_at = now()
FROM nxt
WHERE t.project_id = $1
RETURNING t.current_line_item_id`;

const COMPLETE_SCOPED_SQL = `
UPDATE workflow_alerts SET status = 'COMPLETED', completed_at = now()
WHERE project_id = $1 AND step_id = $2 AND status = 'ACTIVE'
RETURNING id, assigned_to_id`;

// The seed's defect (unscoped_complete): no project filter, so every
// project's ACTIVE alert for the step completes.
const COMPLETE_UNSCOPED_SQL = `
UPDATE workflow_alerts SET status = 'COMPLETED', completed_at = now()
WHERE step_id = $2 AND status = 'ACTIVE' AND $1::bigint IS NOT NULL
RETURNING id, assigned_to_id`;

const INSERT_SQL = insertAlertsSql(candidatesSql('t.project_id = $1'));
const INSERT_SQL_NO_INDEX = insertAlertsSql(candidatesSql('t.project_id = $1', { lock: false }), {
  uniqueIndex: false,
});

/** Hooks that do nothing (production). */
export const NO_HOOKS = Object.freeze({ after: async () => {} });

/**
 * Complete ``lineItemId`` of ``projectId`` on behalf of ``userId``.
 *
 * ``db`` is a connection (anything with ``query``) not inside a transaction.
 * Throws ProjectNotFound, NotAMember, StaleCompletion, InjectedRollback, or
 * a database error. On return the transaction has committed and the new
 * alert's notification is on its way to the relay.
 *
 * @returns {Promise<{projectId:number, completedLineItemId:number,
 *   nextLineItemId:number|null, alert:object|null, completedAlertIds:number[],
 *   affectedUserIds:Set<number>, committedAtMs:number}>}
 */
export async function completeLineItem(
  db,
  { projectId, lineItemId, userId, flaws = new Set(), hooks = NO_HOOKS, emitter = null },
) {
  const atomic = !flaws.has('non_atomic_completion');
  const body = async () => {
    const { rows: trackers } = await db.query(
      prepared(atomic ? 'complete-lock' : 'complete-read', LOCK_SQL + (atomic ? ' FOR UPDATE OF t' : ''), [projectId, userId]),
    );
    const tracker = trackers[0];
    if (tracker === undefined) throw new ProjectNotFound(`project ${projectId} has no workflow tracker`);
    if (!tracker.is_member) throw new NotAMember(`user ${userId} is not a member of project ${projectId}`);
    const current = tracker.current_line_item_id;
    if (tracker.completed_at !== null || current === null) {
      throw new StaleCompletion(`the workflow of project ${projectId} is already complete`, null);
    }
    if (String(current) !== String(lineItemId)) {
      throw new StaleCompletion(
        `line item ${lineItemId} is not the current line item of project ${projectId}` +
          ` (current: ${current}); stale or repeated completion`,
        current,
      );
    }
    await hooks.after('locked', projectId);

    const { rows: advanced } = await db.query(prepared('complete-advance', ADVANCE_SQL, [projectId, lineItemId]));
    const nextId = advanced[0]?.current_line_item_id ?? null;
    await hooks.after('advanced', projectId);

    const { rows: completed } = await db.query(
      flaws.has('unscoped_complete')
        ? prepared('complete-old-unscoped', COMPLETE_UNSCOPED_SQL, [projectId, lineItemId])
        : prepared('complete-old', COMPLETE_SCOPED_SQL, [projectId, lineItemId]),
    );
    await hooks.after('completed_old', projectId);

    let alert = null;
    if (nextId !== null) {
      const { rows } = await db.query(
        flaws.has('no_unique_index')
          ? prepared('complete-insert-no-index', INSERT_SQL_NO_INDEX, [projectId])
          : prepared('complete-insert', INSERT_SQL, [projectId]),
      );
      if (rows.length > 0 && rows[0].id !== null) alert = rows[0];
    }
    await hooks.after('inserted', projectId);
    if (alert !== null && emitter !== null && flaws.has('emit_before_commit')) {
      // The seed's original order: tell the clients, then commit (or not).
      emitter(notificationFromRow(alert));
    }
    await hooks.after('before_commit', projectId);
    return { nextId, completed, alert };
  };

  const { nextId, completed, alert } = atomic ? await transaction(db, body) : await body();
  const committedAtMs = nowMs();

  const affected = new Set();
  for (const row of completed) if (row.assigned_to_id !== null) affected.add(row.assigned_to_id);
  if (alert !== null && alert.assigned_to_id !== null) affected.add(alert.assigned_to_id);
  return {
    projectId: Number(projectId),
    completedLineItemId: Number(lineItemId),
    nextLineItemId: nextId,
    alert: alert === null ? null : alertToJson(alert),
    completedAlertIds: completed.map((r) => r.id),
    affectedUserIds: affected,
    committedAtMs,
  };
}

/**
 * Wall clock in ms since the epoch. Date.now(), not performance.timeOrigin +
 * performance.now(): that runs up to a millisecond ahead of the wall clock,
 * which would put the commit after a client's receipt of its alert. Whole
 * milliseconds, truncated: never later than the true commit time.
 */
export function nowMs() {
  return Date.now();
}
