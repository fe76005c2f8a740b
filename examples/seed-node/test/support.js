// Test support: a throw-away database, the seed data, the server as a child
// process, HTTP and Socket.IO helpers. Every wait is bounded.

import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { io } from 'socket.io-client';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const TOKEN_SECRET = 'seed-node-test-secret-0123456789abcdef';

/** PG_DSN and REDIS_URL of a running Postgres/Redis, or null (tests skip). */
export function services() {
  const { PG_DSN: pgDsn, REDIS_URL: redisUrl } = process.env;
  return pgDsn && redisUrl ? { pgDsn, redisUrl } : null;
}

function withDatabase(dsn, name) {
  const url = new URL(dsn);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Run ``fn(client)`` on a fresh connection to ``dsn``. */
export async function sql(dsn, fn) {
  const client = new pg.Client({ connectionString: dsn });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Create an empty database next to ``adminDsn``'s; returns {dsn, drop()}. */
export async function createDatabase(adminDsn, label) {
  const name = `seednode_${label}_${process.pid}_${Date.now()}`;
  await sql(adminDsn, (c) => c.query(`CREATE DATABASE ${name}`));
  return {
    name,
    dsn: withDatabase(adminDsn, name),
    drop: () => sql(adminDsn, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
  };
}

/** `node src/migrate.js` against ``dsn``: {code, stderr}. */
export async function runMigrate(dsn, extraEnv = {}) {
  try {
    const { stderr } = await promisify(execFile)(process.execPath, ['src/migrate.js'], {
      cwd: ROOT,
      env: { ...process.env, PG_DSN: dsn, ...extraEnv },
      timeout: 30_000,
    });
    return { code: 0, stderr };
  } catch (err) {
    return { code: err.code, stderr: err.stderr };
  }
}

export const ROLES = Object.freeze({
  pm: 'PROJECT_MANAGER',
  fd: 'FIELD_DIRECTOR',
  os: 'OFFICE_STAFF',
  admin: 'ADMINISTRATION',
});

/**
 * Projects 1 and 2 with four members each (users 1-4 and 5-8, one per role
 * in that order), user 9 in no project, and one workflow template whose
 * order is not the id order:
 *
 *   phase 2 "Lead" (position 1)
 *     section 10 (position 1): 105 PM (pos 1), 101 FD (pos 2)
 *     section 11 (position 2): 103 OS inactive (pos 1), 102 OS (pos 2)
 *   phase 1 "Approved" (position 2)
 *     section 12 (position 1): 100 ADMIN (pos 1), 104 PM (pos 2)
 *
 * Workflow order: 105, 101, (103 skipped), 102, 100, 104. Both trackers
 * start at 105.
 */
export const WORKFLOW = Object.freeze([105, 101, 102, 100, 104]);

export async function seed(dsn) {
  await sql(dsn, async (c) => {
    await c.query('BEGIN');
    const users = [];
    for (let id = 1; id <= 9; id += 1) users.push(`(${id}, 'user${id}@example.test', 'User ${id}')`);
    await c.query(`INSERT INTO users (id, email, name) VALUES ${users.join(', ')}`);
    await c.query("INSERT INTO projects (id, name) VALUES (1, 'Roof one'), (2, 'Roof two')");
    const roles = Object.values(ROLES);
    const members = [];
    for (const project of [1, 2]) {
      roles.forEach((role, i) => members.push(`(${project}, ${(project - 1) * 4 + i + 1}, '${role}')`));
    }
    await c.query(`INSERT INTO project_members (project_id, user_id, role) VALUES ${members.join(', ')}`);
    await c.query(
      "INSERT INTO workflow_phases (id, name, phase_type, position) VALUES (2, 'Lead', 'LEAD', 1), (1, 'Approved', 'APPROVED', 2)",
    );
    await c.query(
      'INSERT INTO workflow_sections (id, phase_id, display_name, position) VALUES' +
        " (10, 2, 'Intake', 1), (11, 2, 'Survey', 2), (12, 1, 'Build', 1)",
    );
    await c.query(
      'INSERT INTO workflow_line_items (id, section_id, item_name, responsible_role, alert_days, is_active, position) VALUES' +
        " (105, 10, 'Verify contract', 'PROJECT_MANAGER', 2, true, 1)," +
        " (101, 10, 'Schedule inspection', 'FIELD_DIRECTOR', 3, true, 2)," +
        " (103, 11, 'Order material', 'OFFICE_STAFF', 1, false, 1)," +
        " (102, 11, 'Submit permit', 'OFFICE_STAFF', 5, true, 2)," +
        " (100, 12, 'Collect invoice', 'ADMINISTRATION', 7, true, 1)," +
        " (104, 12, 'Confirm crew', 'PROJECT_MANAGER', 1, true, 2)",
    );
    await c.query('INSERT INTO project_workflow_trackers (id, project_id, current_line_item_id) VALUES (1, 1, 105), (2, 2, 105)');
    for (const table of [
      'users',
      'projects',
      'project_members',
      'workflow_phases',
      'workflow_sections',
      'workflow_line_items',
      'project_workflow_trackers',
    ]) {
      await c.query(
        `SELECT setval(pg_get_serial_sequence('${table}', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM ${table}), false)`,
      );
    }
    await c.query('COMMIT');
  });
}

/**
 * Start `node src/server.js` on a free port; resolves once it prints its
 * address. ``exited`` settles with the exit code.
 */
export async function startServer(env, { timeoutMs = 20_000 } = {}) {
  const child = spawn(process.execPath, ['src/server.js'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', TOKEN_SECRET, LOG_LEVEL: 'warning', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = once(child, 'exit').then(([code]) => code);
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server not listening after ${timeoutMs} ms:\n${stderr}`)), timeoutMs);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${stderr}`));
    });
  });
  return {
    url,
    exited,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Run a server that must fail to start: {code, stderr}. */
export async function failedStart(env, { timeoutMs = 20_000 } = {}) {
  const child = spawn(process.execPath, ['src/server.js'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = await once(child, 'exit');
  clearTimeout(timer);
  return { code, stderr };
}

/** A JSON request: {status, body, headers}. */
export async function request(base, method, pathname, { token = null, json = undefined, headers = {} } = {}) {
  const response = await fetch(`${base}${pathname}`, {
    method,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(json !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...headers,
    },
    body: json === undefined ? undefined : typeof json === 'string' ? json : JSON.stringify(json),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body, headers: response.headers };
}

/**
 * A connected Socket.IO client that records every event it receives
 * (``events``: [{name, data, at}] with ``at`` = Date.now()).
 */
export async function connectSocket(url, token, { timeoutMs = 5000 } = {}) {
  const socket = io(url, {
    auth: { token },
    transports: ['websocket'],
    reconnection: false,
    timeout: timeoutMs,
    forceNew: true,
  });
  socket.events = [];
  socket.waiters = [];
  socket.onAny((name, data) => {
    const event = { name, data, at: Date.now() };
    socket.events.push(event);
    for (const waiter of [...socket.waiters]) waiter(event);
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connection after ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    });
  });
  return socket;
}

/** The first event (already received or still to come) matching; bounded. */
export function waitForEvent(socket, name, predicate = () => true, timeoutMs = 5000) {
  const found = socket.events.find((e) => e.name === name && predicate(e.data));
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const waiter = (event) => {
      if (event.name === name && predicate(event.data)) {
        clearTimeout(timer);
        socket.waiters.splice(socket.waiters.indexOf(waiter), 1);
        resolve(event);
      }
    };
    const timer = setTimeout(() => {
      socket.waiters.splice(socket.waiters.indexOf(waiter), 1);
      reject(new Error(`no ${name} event within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.waiters.push(waiter);
  });
}

/** Send an event and wait (bounded) for its ack. */
export function call(socket, event, data, timeoutMs = 5000) {
  return socket.timeout(timeoutMs).emitWithAck(event, data);
}

/** Poll ``probe()`` until it returns a truthy value, at most ``timeoutMs``. */
export async function until(probe, { timeoutMs = 15_000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() >= deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * A TCP proxy to ``upstream`` (a Postgres DSN) that a test can cut and heal:
 * ``dsn`` is the same database through the proxy.
 */
export async function tcpProxy(upstreamDsn) {
  const { createConnection, createServer } = await import('node:net');
  const upstream = new URL(upstreamDsn);
  const live = new Set();
  let down = false;
  const server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const target = createConnection({ host: upstream.hostname, port: Number(upstream.port || 5432) });
    live.add(client);
    live.add(target);
    const close = () => {
      client.destroy();
      target.destroy();
      live.delete(client);
      live.delete(target);
    };
    for (const s of [client, target]) {
      s.on('error', close);
      s.on('close', close);
    }
    client.pipe(target);
    target.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dsn = new URL(upstreamDsn);
  dsn.hostname = '127.0.0.1';
  dsn.port = String(server.address().port);
  return {
    dsn: dsn.toString(),
    /** Drop every connection and refuse new ones. */
    cut() {
      down = true;
      for (const s of live) s.destroy();
      live.clear();
    },
    heal() {
      down = false;
    },
    close() {
      this.cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
