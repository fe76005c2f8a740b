// Batch alert generation: alerts for the current line item of many projects
// (the seed's AlertGenerationService.generateBatchAlerts).
//
// The correct path is ONE statement whatever the number of projects (the
// seed's fix for its N+1 problem), and idempotent through the partial
// unique index: generating twice creates nothing new.

import { alertToJson, candidatesSql, insertAlertsSql } from './alerts.js';
import { prepared } from './db.js';

const BATCH_SQL = insertAlertsSql(candidatesSql('t.project_id = ANY($1::bigint[])'));
// The no_unique_index flaw is the seed's code: neither the index nor the lock.
const BATCH_SQL_NO_INDEX = insertAlertsSql(candidatesSql('t.project_id = ANY($1::bigint[])', { lock: false }), {
  uniqueIndex: false,
});
const SINGLE_CANDIDATE =
  'SELECT $1::bigint AS project_id, $2::bigint AS workflow_id, $3::bigint AS step_id,' +
  ' $4::text AS title, $5::text AS message, $6::bigint AS assigned_to_id';
const SINGLE_SQL = insertAlertsSql(SINGLE_CANDIDATE);
const SINGLE_SQL_NO_INDEX = insertAlertsSql(SINGLE_CANDIDATE, { uniqueIndex: false });

/**
 * Create the missing ACTIVE alert of each project's current line item.
 *
 * Projects without a tracker, with a finished workflow or whose current line
 * item is inactive get nothing. ``db`` is anything with ``query``.
 *
 * @returns {Promise<{requested:number, candidates:number, created:object[]}>}
 *   ``created`` holds the new alerts (API form).
 */
export async function generateAlerts(db, projectIds, { flaws = new Set() } = {}) {
  const ids = [...new Set(projectIds)].sort((a, b) => a - b);
  if (flaws.has('n_plus_one')) return generateOneByOne(db, ids, flaws);
  const { rows } = await db.query(
    flaws.has('no_unique_index')
      ? prepared('generate-batch-no-index', BATCH_SQL_NO_INDEX, [ids])
      : prepared('generate-batch', BATCH_SQL, [ids]),
  );
  const candidates = rows.length > 0 ? Number(rows[0].candidates) : 0;
  const created = rows.filter((r) => r.id !== null).map(alertToJson);
  return { requested: ids.length, candidates, created };
}

/** The seed's original loop: four round trips per project (the n_plus_one flaw). */
async function generateOneByOne(db, ids, flaws) {
  const sql = flaws.has('no_unique_index') ? SINGLE_SQL_NO_INDEX : SINGLE_SQL;
  let candidates = 0;
  const created = [];
  for (const projectId of ids) {
    const tracker = (
      await db.query(
        'SELECT id, current_line_item_id FROM project_workflow_trackers WHERE project_id = $1 AND completed_at IS NULL',
        [projectId],
      )
    ).rows[0];
    if (tracker === undefined || tracker.current_line_item_id === null) continue;
    const item = (
      await db.query(
        'SELECT li.id, li.item_name, li.responsible_role, li.alert_days, li.is_active,' +
          ' s.display_name, p.phase_type FROM workflow_line_items li' +
          ' JOIN workflow_sections s ON s.id = li.section_id' +
          ' JOIN workflow_phases p ON p.id = s.phase_id WHERE li.id = $1',
        [tracker.current_line_item_id],
      )
    ).rows[0];
    if (item === undefined || !item.is_active) continue;
    const member = (
      await db.query(
        'SELECT user_id FROM project_members WHERE project_id = $1 AND role = $2 ORDER BY user_id LIMIT 1',
        [projectId, item.responsible_role],
      )
    ).rows[0];
    const message = `${item.item_name}: due in ${item.alert_days} days (${item.display_name}, ${item.phase_type})`;
    const { rows } = await db.query(sql, [
      projectId,
      tracker.id,
      item.id,
      item.item_name,
      message,
      member?.user_id ?? null,
    ]);
    candidates += 1;
    created.push(...rows.filter((r) => r.id !== null).map(alertToJson));
  }
  return { requested: ids.length, candidates, created };
}
