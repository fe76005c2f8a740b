// End-to-end tests of the seed-node target against a real Postgres and
// Redis (env PG_DSN, REDIS_URL; skipped without them). The server runs as a
// child process, exactly as the harness runs it.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import jwt from 'jsonwebtoken';
import { issueToken } from '../src/auth.js';
import {
  call,
  connectSocket,
  createDatabase,
  failedStart,
  request,
  runMigrate,
  seed,
  services,
  sql,
  startServer,
  tcpProxy,
  TOKEN_SECRET,
  until,
  waitForEvent,
  WORKFLOW,
} from './support.js';

const env = services();
const skip = env === null ? 'needs PG_DSN and REDIS_URL of a running Postgres and Redis' : false;

const token = (userId) => issueToken(userId, TOKEN_SECRET);
const completePath = (project, item, query = '') => `/api/projects/${project}/line-items/${item}/complete${query}`;

describe('seed-node pipeline', { skip }, () => {
  let db;
  let server;
  let relayProxy;
  const sockets = [];

  before(async () => {
    db = await createDatabase(env.pgDsn, 'test');
    const first = await runMigrate(db.dsn);
    assert.equal(first.code, 0, first.stderr);
    await seed(db.dsn);
    // The relay's LISTEN connection goes through a proxy the test can cut.
    relayProxy = await tcpProxy(db.dsn);
    server = await startServer({ PG_DSN: db.dsn, REDIS_URL: env.redisUrl, ALERTBENCH_RELAY_PG_DSN: relayProxy.dsn });
  });

  after(async () => {
    for (const socket of sockets) socket.close();
    const code = await server?.stop();
    await relayProxy?.close();
    await db?.drop();
    assert.equal(code, 0, `server exit code (stderr:\n${server?.stderr()})`);
  });

  async function socketOf(userId) {
    const socket = await connectSocket(server.url, token(userId));
    sockets.push(socket);
    return socket;
  }

  const activeAlerts = (project) =>
    sql(db.dsn, (c) =>
      c.query("SELECT id, step_id, assigned_to_id FROM workflow_alerts WHERE project_id = $1 AND status = 'ACTIVE' ORDER BY id", [
        project,
      ]),
    ).then((r) => r.rows.map((row) => ({ id: Number(row.id), step: Number(row.step_id), assignee: Number(row.assigned_to_id) })));

  test('migrate is idempotent and creates the partial unique index', async () => {
    const again = await runMigrate(db.dsn);
    assert.equal(again.code, 0, again.stderr);
    const { rows } = await sql(db.dsn, (c) =>
      c.query("SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_workflow_alerts_active_step'"),
    );
    assert.match(rows[0].indexdef, /UNIQUE INDEX .* \(project_id, step_id\) WHERE \(status = 'ACTIVE'::text\)/);
  });

  test('health, metrics and the OpenAPI document', async () => {
    const health = await request(server.url, 'GET', '/healthz');
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: 'ok', postgres: true, relay: true });
    const metrics = await request(server.url, 'GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /alertbench_gc_pause_seconds/);
    const openapi = await request(server.url, 'GET', '/openapi.json');
    assert.equal(openapi.body.openapi, '3.1.0');
  });

  test('missing, forged and expired tokens are refused (HTTP 401, socket refused)', async () => {
    const path = '/api/users/1/alerts';
    assert.equal((await request(server.url, 'GET', path)).status, 401);
    assert.equal((await request(server.url, 'GET', path, { token: 'not-a-jwt' })).status, 401);
    const forged = issueToken(1, 'another-secret-another-secret-another');
    assert.equal((await request(server.url, 'GET', path, { token: forged })).status, 401);
    const expired = jwt.sign({ sub: '1', exp: Math.floor(Date.now() / 1000) - 60 }, TOKEN_SECRET);
    const answer = await request(server.url, 'GET', path, { token: expired });
    assert.equal(answer.status, 401);
    assert.equal(answer.body.detail, 'token expired');
    const noExp = jwt.sign({ sub: '1' }, TOKEN_SECRET);
    assert.equal((await request(server.url, 'GET', path, { token: noExp })).status, 401);
    await assert.rejects(connectSocket(server.url, forged), /invalid token/);
    await assert.rejects(connectSocket(server.url, ''), /missing token/);
  });

  test('bad ids, bodies, modes and routes answer 4xx with a JSON detail', async () => {
    const t = token(1);
    const cases = [
      ['POST', completePath('abc', 105), undefined, 422, /project_id/],
      ['POST', completePath(1, 0), undefined, 422, /line_item_id/],
      ['POST', completePath(1, '99999999999999999999'), undefined, 422, /line_item_id/],
      ['POST', completePath(1, 105, '?mode=later'), undefined, 422, /mode/],
      ['POST', '/api/alerts/generate', undefined, 422, /body/],
      ['POST', '/api/alerts/generate', '{"project_ids": [1,', 422, /not valid JSON/],
      ['POST', '/api/alerts/generate', [1, 2], 422, /JSON object/],
      ['POST', '/api/alerts/generate', { project_ids: [1], extra: 1 }, 422, /unexpected field "extra"/],
      ['POST', '/api/alerts/generate', { project_ids: '1' }, 422, /project_ids/],
      ['POST', '/api/alerts/generate', { project_ids: [1, '2'] }, 422, /project_ids\[1\]/],
      ['POST', '/api/alerts/generate', { project_ids: [true] }, 422, /project_ids\[0\]/],
      ['POST', '/api/alerts/generate', { project_ids: [1.5] }, 422, /project_ids\[0\]/],
      // Too deep for JSON.stringify: was a 500 (found by the security scenario).
      ['POST', '/api/alerts/generate', `{"project_ids": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`, 422, /project_ids\[0\]/],
      ['GET', '/api/users/-1/alerts', undefined, 422, /user_id/],
      ['GET', '/api/queue/dead-letters?limit=0', undefined, 422, /limit/],
      ['GET', '/api/nothing-here', undefined, 404, /Not Found/],
      ['DELETE', '/api/alerts/generate', undefined, 405, /Method Not Allowed/],
    ];
    for (const [method, path, json, status, detail] of cases) {
      const answer = await request(server.url, method, path, { token: t, json });
      assert.equal(answer.status, status, `${method} ${path}: ${JSON.stringify(answer.body)}`);
      assert.match(answer.body.detail, detail, `${method} ${path}`);
    }
  });

  test('batch generation creates each current alert once (idempotent)', async () => {
    const first = await request(server.url, 'POST', '/api/alerts/generate', {
      token: token(1),
      json: { project_ids: [1, 2, 2, 999] },
    });
    assert.equal(first.status, 200);
    assert.equal(first.body.requested, 3);
    assert.equal(first.body.candidates, 2);
    assert.equal(first.body.created, 2);
    assert.equal(first.body.duplicatesPrevented, 0);
    assert.equal(first.body.alertIds.length, 2);
    // Assigned to the member holding the line item's role (PROJECT_MANAGER).
    assert.deepEqual((await activeAlerts(1)).map((a) => [a.step, a.assignee]), [[105, 1]]);
    assert.deepEqual((await activeAlerts(2)).map((a) => [a.step, a.assignee]), [[105, 5]]);

    const again = await request(server.url, 'POST', '/api/alerts/generate', { token: token(1), json: { project_ids: [1, 2] } });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { requested: 2, candidates: 2, created: 0, duplicatesPrevented: 2, alertIds: [] });
    assert.equal((await activeAlerts(1)).length, 1);
  });

  test('a user reads only their own alerts, through the cache', async () => {
    const first = await request(server.url, 'GET', '/api/users/1/alerts', { token: token(1) });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-cache'), 'miss');
    assert.equal(first.body.userId, 1);
    assert.deepEqual(first.body.alerts.map((a) => [a.projectId, a.stepId, a.status]), [[1, 105, 'ACTIVE']]);
    const alert = first.body.alerts[0];
    for (const field of ['id', 'type', 'priority', 'title', 'message', 'workflowId', 'lineItemId', 'assignedToId', 'createdAt', 'completedAt']) {
      assert.ok(field in alert, `alert field ${field}`);
    }
    assert.match(alert.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/);
    const second = await request(server.url, 'GET', '/api/users/1/alerts', { token: token(1) });
    assert.equal(second.headers.get('x-cache'), 'hit');
    assert.deepEqual(second.body, first.body);
    const other = await request(server.url, 'GET', '/api/users/1/alerts', { token: token(2) });
    assert.equal(other.status, 403);
  });

  test('subscribe_project admits members only; bad payloads and unknown events get error acks', async () => {
    const manager = await socketOf(1);
    assert.deepEqual(await call(manager, 'subscribe_project', { projectId: 1 }), { ok: true, projectId: 1 });
    const outsider = await socketOf(9);
    assert.deepEqual(await call(outsider, 'subscribe_project', { projectId: 1 }), {
      ok: false,
      error: 'forbidden',
      projectId: 1,
    });
    for (const bad of ['1', null, [], { projectId: '1' }, { projectId: 0 }, { projectId: 1.5 }]) {
      const ack = await call(outsider, 'subscribe_project', bad);
      assert.equal(ack.ok, false);
      assert.match(ack.error, /projectId/);
    }
    assert.deepEqual(await call(outsider, 'no_such_event', { x: 1 }), { ok: false, error: 'unknown event "no_such_event"' });
    assert.equal((await call(outsider, 'sync', { sinceAlertId: -1 })).ok, false);
    outsider.emit('subscribe_project'); // no payload, no ack: must not hurt
    assert.equal((await request(server.url, 'GET', '/healthz')).status, 200);
    assert.ok(manager.connected && outsider.connected);
  });

  test('completion advances in workflow order, assigns by role, emits after commit, and refuses a repeat', async () => {
    const manager = await socketOf(1); // in project 1's room
    await call(manager, 'subscribe_project', { projectId: 1 });
    const director = await socketOf(2); // FIELD_DIRECTOR: responsible for 101
    const outsider = await socketOf(9);
    await call(outsider, 'subscribe_project', { projectId: 1 }); // refused

    const answer = await request(server.url, 'POST', completePath(1, 105), { token: token(1) });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const body = answer.body;
    assert.equal(body.projectId, 1);
    assert.equal(body.completedLineItemId, 105);
    assert.equal(body.nextLineItemId, 101);
    assert.equal(body.workflowComplete, false);
    assert.equal(typeof body.committedAtMs, 'number');
    assert.equal(body.alert.stepId, 101);
    assert.equal(body.alert.lineItemId, 101);
    assert.equal(body.alert.projectId, 1);
    assert.equal(body.alert.assignedToId, 2);
    assert.equal(body.alert.status, 'ACTIVE');
    assert.equal(body.alert.type, 'Work Flow Line Item');
    assert.equal(body.alert.priority, 'MEDIUM');
    assert.equal(body.alert.title, 'Schedule inspection');
    assert.equal(body.alert.message, 'Schedule inspection: due in 3 days (Intake, LEAD)');

    const received = await waitForEvent(director, 'new_alert', (d) => d.id === body.alert.id);
    assert.ok(received.at >= Math.floor(body.committedAtMs), 'new_alert arrived after the commit');
    assert.deepEqual(received.data, {
      id: body.alert.id,
      title: body.alert.title,
      message: body.alert.message,
      priority: 'MEDIUM',
      projectId: 1,
      stepId: 101,
      assignedToId: 2,
      createdAt: body.alert.createdAt,
    });
    const refresh = await waitForEvent(manager, 'alerts_refresh', (d) => d.alertId === body.alert.id);
    assert.deepEqual(refresh.data, { projectId: 1, type: 'workflow_progression', alertId: body.alert.id });
    const updated = await waitForEvent(manager, 'workflow_updated', (d) => d.alertId === body.alert.id);
    assert.deepEqual(updated.data, { projectId: 1, lineItemId: 101, alertId: body.alert.id });
    assert.equal(manager.events.filter((e) => e.name === 'new_alert').length, 0, 'the manager is not the assignee');
    assert.deepEqual(outsider.events, [], 'nothing for a non-member');

    const repeat = await request(server.url, 'POST', completePath(1, 105), { token: token(1) });
    assert.equal(repeat.status, 409);
    assert.equal(repeat.body.currentLineItemId, 101);
    assert.match(repeat.body.detail, /stale or repeated/);

    // Only this project's alert for 105 was completed.
    assert.deepEqual((await activeAlerts(1)).map((a) => [a.step, a.assignee]), [[101, 2]]);
    assert.deepEqual((await activeAlerts(2)).map((a) => [a.step, a.assignee]), [[105, 5]]);
  });

  test('the cache is invalidated by a completion that changes a list', async () => {
    const manager = await request(server.url, 'GET', '/api/users/1/alerts', { token: token(1) });
    assert.equal(manager.headers.get('x-cache'), 'miss');
    assert.deepEqual(manager.body.alerts, [], 'the completed alert left the list');
    const director = await request(server.url, 'GET', '/api/users/2/alerts', { token: token(2) });
    assert.deepEqual(director.body.alerts.map((a) => a.stepId), [101]);
    assert.equal((await request(server.url, 'GET', '/api/users/2/alerts', { token: token(2) })).headers.get('x-cache'), 'hit');
  });

  test('sync returns the alerts a disconnected user missed', async () => {
    const staff = await socketOf(3); // OFFICE_STAFF: responsible for 102
    const before = await call(staff, 'sync', { sinceAlertId: 0 });
    assert.deepEqual(before, { ok: true, alerts: [], more: false });
    staff.close();

    // 101 -> 102 (103 is inactive and skipped), assigned to user 3.
    const answer = await request(server.url, 'POST', completePath(1, 101), { token: token(2) });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.nextLineItemId, 102);
    assert.equal(answer.body.alert.assignedToId, 3);

    const back = await socketOf(3);
    const synced = await call(back, 'sync', { sinceAlertId: 0 });
    assert.equal(synced.ok, true);
    assert.equal(synced.more, false);
    assert.deepEqual(synced.alerts.map((a) => [a.id, a.stepId, a.projectId]), [[answer.body.alert.id, 102, 1]]);
    assert.deepEqual(synced.alerts[0], answer.body.alert);
    assert.deepEqual(await call(back, 'sync', { sinceAlertId: answer.body.alert.id }), { ok: true, alerts: [], more: false });
  });

  test('the walk crosses sections and phases by position, then finishes', async () => {
    // Into phase "Approved" (id 1, position 2): 100 for ADMINISTRATION, then
    // 104 for PROJECT_MANAGER.
    const assignees = { 100: 4, 104: 1 };
    for (const done of [102, 100]) {
      const next = WORKFLOW[WORKFLOW.indexOf(done) + 1];
      const answer = await request(server.url, 'POST', completePath(1, done), { token: token(1) });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.nextLineItemId, next);
      assert.equal(answer.body.alert.assignedToId, assignees[next]);
    }
    const last = await request(server.url, 'POST', completePath(1, 104), { token: token(1) });
    assert.equal(last.status, 200);
    assert.equal(last.body.nextLineItemId, null);
    assert.equal(last.body.workflowComplete, true);
    assert.equal(last.body.alert, null);
    assert.deepEqual(await activeAlerts(1), []);
    const again = await request(server.url, 'POST', completePath(1, 104), { token: token(1) });
    assert.equal(again.status, 409);
    assert.equal(again.body.currentLineItemId, null);
  });

  test('completion refuses non-members (403) and unknown projects (404)', async () => {
    const outsider = await request(server.url, 'POST', completePath(2, 105), { token: token(9) });
    assert.equal(outsider.status, 403);
    assert.match(outsider.body.detail, /not a member/);
    const unknown = await request(server.url, 'POST', completePath(999, 105), { token: token(1) });
    assert.equal(unknown.status, 404);
  });

  test('queued completions run on BullMQ; rejections become dead letters', async () => {
    const queued = await request(server.url, 'POST', completePath(2, 105, '?mode=queue'), { token: token(5) });
    assert.equal(queued.status, 202);
    assert.equal(queued.body.status, 'queued');
    assert.match(queued.body.jobId, /^complete-2-105-/);
    const job = await until(
      async () => {
        const answer = await request(server.url, 'GET', `/api/queue/jobs/${queued.body.jobId}`, { token: token(5) });
        return answer.body.status === 'complete' ? answer.body : null;
      },
      { what: 'queued job complete' },
    );
    assert.equal(job.jobId, queued.body.jobId);
    assert.equal(job.attempts, 1);
    assert.equal(job.result.outcome, 'completed');
    assert.equal(job.result.nextLineItemId, 101);
    assert.deepEqual((await activeAlerts(2)).map((a) => [a.step, a.assignee]), [[101, 6]]);

    const rejected = await request(server.url, 'POST', completePath(2, 101, '?mode=queue'), { token: token(9) });
    assert.equal(rejected.status, 202);
    const failed = await until(
      async () => {
        const answer = await request(server.url, 'GET', `/api/queue/jobs/${rejected.body.jobId}`, { token: token(5) });
        return answer.body.status === 'failed' ? answer.body : null;
      },
      { what: 'rejected job failed' },
    );
    assert.equal(failed.attempts, 1, 'a rejection is not retried');
    assert.match(failed.error, /not a member/);
    const letters = await request(server.url, 'GET', '/api/queue/dead-letters', { token: token(5) });
    assert.equal(letters.status, 200);
    assert.deepEqual(letters.body.deadLetters, [
      {
        jobId: rejected.body.jobId,
        status: 'failed',
        attempts: 1,
        kwargs: { project_id: 2, line_item_id: 101, user_id: 9 },
        error: failed.error,
      },
    ]);
    assert.equal((await request(server.url, 'GET', '/api/queue/jobs/nope', { token: token(5) })).status, 404);

    // The dead letter does not block a member's completion of the same step.
    const retried = await request(server.url, 'POST', completePath(2, 101, '?mode=queue'), { token: token(6) });
    assert.equal(retried.status, 202);
    assert.notEqual(retried.body.jobId, rejected.body.jobId);
    const second = await until(
      async () => {
        const answer = await request(server.url, 'GET', `/api/queue/jobs/${retried.body.jobId}`, { token: token(6) });
        return answer.body.status === 'complete' ? answer.body : null;
      },
      { what: 'second job complete' },
    );
    assert.deepEqual(second.result, { outcome: 'completed', nextLineItemId: 102, alertId: second.result.alertId });
    // Running a completion again is harmless: it meets a stale line item.
    const again = await request(server.url, 'POST', completePath(2, 101, '?mode=queue'), { token: token(6) });
    const stale = await until(
      async () => {
        const answer = await request(server.url, 'GET', `/api/queue/jobs/${again.body.jobId}`, { token: token(6) });
        return answer.body.status === 'complete' ? answer.body : null;
      },
      { what: 'repeated job complete' },
    );
    assert.equal(stale.result.outcome, 'stale');
    assert.deepEqual((await activeAlerts(2)).map((a) => [a.step, a.assignee]), [[102, 7]]);
  });

  test('the relay replays what was committed while its connection was down', async () => {
    // Project 2 is at 102 (OFFICE_STAFF, user 7); completing it creates
    // 100's alert for ADMINISTRATION (user 8), who is connected throughout.
    const admin = await socketOf(8);
    relayProxy.cut();
    await until(async () => (await request(server.url, 'GET', '/healthz')).body.relay === false, {
      what: 'relay down',
    });
    const answer = await request(server.url, 'POST', completePath(2, 102), { token: token(7) });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.alert.assignedToId, 8);
    assert.equal(admin.events.length, 0, 'nothing can be relayed while the relay is cut off');
    relayProxy.heal();
    const replayed = await waitForEvent(admin, 'new_alert', (d) => d.id === answer.body.alert.id, 15_000);
    assert.equal(replayed.data.stepId, 100);
    await until(async () => (await request(server.url, 'GET', '/healthz')).status === 200, { what: 'healthy again' });
    const metrics = (await request(server.url, 'GET', '/metrics')).body;
    assert.match(metrics, /alertbench_relay_events_total\{kind="replay"\} [1-9]/);
    assert.match(metrics, /alertbench_relay_events_total\{kind="connect"\} 2/);

    // Live delivery resumed: the next alert arrives, and the replayed one only once.
    const manager = await socketOf(5);
    await call(manager, 'subscribe_project', { projectId: 2 });
    const next = await request(server.url, 'POST', completePath(2, 100), { token: token(8) });
    assert.equal(next.body.alert.assignedToId, 5);
    await waitForEvent(manager, 'new_alert', (d) => d.id === next.body.alert.id);
    await waitForEvent(manager, 'workflow_updated', (d) => d.alertId === next.body.alert.id);
    assert.equal(admin.events.filter((e) => e.name === 'new_alert').length, 1);
  });
});

describe('flaws and fault injection', { skip }, () => {
  let db;

  before(async () => {
    db = await createDatabase(env.pgDsn, 'flaws');
  });

  after(async () => {
    await db?.drop();
  });

  test('an unknown flaw or a bad variable stops the server with a message naming it', async () => {
    const bogus = await failedStart({ PG_DSN: db.dsn, REDIS_URL: env.redisUrl, ALERTBENCH_FLAWS: 'bogus' });
    assert.equal(bogus.code, 2);
    assert.match(bogus.stderr, /ALERTBENCH_FLAWS: unknown flaw "bogus"; valid flaws: .*no_unique_index/);
    const noDsn = await failedStart({ PG_DSN: '', REDIS_URL: env.redisUrl });
    assert.equal(noDsn.code, 2);
    assert.match(noDsn.stderr, /PG_DSN: required/);
    const rate = await failedStart({ PG_DSN: db.dsn, REDIS_URL: env.redisUrl, ALERTBENCH_INJECT_ROLLBACK_RATE: '2' });
    assert.equal(rate.code, 2);
    assert.match(rate.stderr, /ALERTBENCH_INJECT_ROLLBACK_RATE/);
  });

  test('no_unique_index and unscoped_complete reproduce the seed defects', async () => {
    const migrated = await runMigrate(db.dsn, { ALERTBENCH_FLAWS: 'no_unique_index' });
    assert.equal(migrated.code, 0, migrated.stderr);
    const indexes = await sql(db.dsn, (c) =>
      c.query("SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'uq_workflow_alerts_active_step'"),
    );
    assert.equal(indexes.rows[0].n, 0);
    await seed(db.dsn);
    const flawed = await startServer({
      PG_DSN: db.dsn,
      REDIS_URL: env.redisUrl,
      ALERTBENCH_FLAWS: 'no_unique_index,unscoped_complete',
    });
    try {
      const generated = await request(flawed.url, 'POST', '/api/alerts/generate', { token: token(1), json: { project_ids: [1, 2] } });
      assert.equal(generated.body.created, 2);
      const done = await request(flawed.url, 'POST', completePath(1, 105), { token: token(1) });
      assert.equal(done.status, 200);
      // The unscoped update completed project 2's alert for 105 as well.
      const { rows } = await sql(db.dsn, (c) =>
        c.query("SELECT count(*)::int AS n FROM workflow_alerts WHERE project_id = 2 AND status = 'ACTIVE'"),
      );
      assert.equal(rows[0].n, 0);
    } finally {
      assert.equal(await flawed.stop(), 0);
    }
  });

  test('an injected rollback answers 503 and leaves no trace', async () => {
    const faulty = await startServer({ PG_DSN: db.dsn, REDIS_URL: env.redisUrl, ALERTBENCH_INJECT_ROLLBACK_RATE: '1' });
    try {
      const before = await sql(db.dsn, (c) => c.query('SELECT count(*)::int AS n FROM workflow_alerts'));
      const answer = await request(faulty.url, 'POST', completePath(1, 101), { token: token(2) });
      assert.equal(answer.status, 503);
      assert.match(answer.body.detail, /injected failure before commit.*\(rolled back\)/);
      const tracker = await sql(db.dsn, (c) =>
        c.query('SELECT current_line_item_id FROM project_workflow_trackers WHERE project_id = 1'),
      );
      assert.equal(Number(tracker.rows[0].current_line_item_id), 101);
      const after = await sql(db.dsn, (c) => c.query('SELECT count(*)::int AS n FROM workflow_alerts'));
      assert.equal(after.rows[0].n, before.rows[0].n);
      // The partial unique index is back: this server runs without the flaw.
      const indexes = await sql(db.dsn, (c) =>
        c.query("SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'uq_workflow_alerts_active_step'"),
      );
      assert.equal(indexes.rows[0].n, 1);
    } finally {
      assert.equal(await faulty.stop(), 0);
    }
  });

  test('with Redis down, alert lists come from Postgres; afterwards the cache is not stale', async () => {
    const redisProxy = await tcpProxy(env.redisUrl);
    const app = await startServer({ PG_DSN: db.dsn, REDIS_URL: redisProxy.dsn });
    const read = (user) => request(app.url, 'GET', `/api/users/${user}/alerts`, { token: token(user) });
    try {
      // Project 1 is at 101 (FIELD_DIRECTOR, user 2).
      assert.equal((await read(2)).headers.get('x-cache'), 'miss');
      const cached = await read(2);
      assert.equal(cached.headers.get('x-cache'), 'hit');
      assert.deepEqual(cached.body.alerts.map((a) => a.stepId), [101]);

      redisProxy.cut();
      const down = await read(2);
      assert.equal(down.status, 200);
      assert.ok(['error', 'bypass'].includes(down.headers.get('x-cache')), down.headers.get('x-cache'));
      assert.deepEqual(down.body.alerts.map((a) => a.stepId), [101]);
      // A change while Redis is down: its invalidation cannot reach Redis.
      const done = await request(app.url, 'POST', completePath(1, 101), { token: token(2) });
      assert.equal(done.status, 200, JSON.stringify(done.body));
      assert.deepEqual((await read(2)).body.alerts, []);

      redisProxy.heal();
      const fresh = await until(
        async () => {
          const answer = await read(2);
          return ['miss', 'hit'].includes(answer.headers.get('x-cache')) ? answer : null;
        },
        { what: 'the cache back in use' },
      );
      assert.deepEqual(fresh.body.alerts, [], 'the list cached before the outage is not served');
    } finally {
      assert.equal(await app.stop(), 0, app.stderr());
      await redisProxy.close();
    }
  });
});
