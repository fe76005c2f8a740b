// Postgres access with `pg`: type parsing, pools, connections, transactions,
// and which errors mean "the database is unreachable" (503, not 500).

import pg from 'pg';
import { logger } from './log.js';

const log = logger('db');

// BIGINT (ids, counts) as JS numbers: every id the pipeline sees is far
// below 2**53. (pg's default is a string.)
pg.types.setTypeParser(pg.types.builtins.INT8, (text) => Number.parseInt(text, 10));
// TIMESTAMPTZ as the ISO-8601 text the reference emits (Python's
// datetime.isoformat(): microseconds kept, "+00:00"), not a JS Date, which
// would drop the microseconds. Sessions run in UTC (see sessionOptions).
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, isoTimestamp);

/** "2024-05-01 12:00:00.123456+00" -> "2024-05-01T12:00:00.123456+00:00". */
export function isoTimestamp(text) {
  if (text === null) return null;
  const iso = text.replace(' ', 'T');
  // Offsets come as +HH or +HH:MM (or +HH:MM:SS for odd zones); make +HH:MM.
  return iso.replace(/([+-]\d\d)$/, '$1:00');
}

// Every session runs in UTC, so timestamps read back and those built by
// json_build_object (the notifications) have the same "+00:00" form.
const SESSION_OPTIONS = '-c TimeZone=UTC';

/** Application name of the pooled connections (pg_stat_activity). */
export const APP_NAME = 'alertbench-seed-node';

/**
 * A connection pool. Idle connections that die (a server restart, a proxy
 * cut) are dropped from the pool, never an uncaught error.
 */
export function createPool(dsn, { max = 10, statementTimeoutMs = 10_000 } = {}) {
  const pool = new pg.Pool({
    connectionString: dsn,
    max,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    application_name: APP_NAME,
    options: SESSION_OPTIONS,
    query_timeout: statementTimeoutMs,
    keepAlive: true,
  });
  pool.on('error', (err) => log.warn(`idle pooled connection failed: ${err.message}`));
  return pool;
}

/** One unpooled connection (the relay, migrations), connected. */
export async function connect(dsn, { applicationName = APP_NAME, connectTimeoutMs = 5_000 } = {}) {
  const client = new pg.Client({
    connectionString: dsn,
    application_name: applicationName,
    options: SESSION_OPTIONS,
    connectionTimeoutMillis: connectTimeoutMs,
    keepAlive: true,
  });
  try {
    await client.connect();
  } catch (err) {
    // A failed connect may still emit 'error' later; keep it from crashing.
    client.on('error', () => {});
    throw err;
  }
  return client;
}

/**
 * A view of ``client`` that counts the statements sent through it (the
 * app's own figure for queries per request; the harness counts on the
 * server with pg_stat_statements).
 */
export function counting(client) {
  const counter = {
    count: 0,
    query(...args) {
      counter.count += 1;
      return client.query(...args);
    },
  };
  return counter;
}

// SQLSTATE classes/codes that mean the server is gone or refusing us.
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '53400']);
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** True when ``err`` says Postgres is unreachable (answer 503, not 500). */
export function isUnavailable(err) {
  if (!err || typeof err !== 'object') return false;
  const code = err.code;
  if (typeof code === 'string') {
    if (UNAVAILABLE_NODE_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08')) {
      return true;
    }
  }
  const message = String(err.message ?? '');
  return (
    /Connection terminated/i.test(message) ||
    /timeout exceeded when trying to connect/i.test(message) ||
    /Query read timeout/i.test(message) ||
    /Client has encountered a connection error/i.test(message) ||
    /Client was closed/i.test(message) ||
    /Cannot use a pool after calling end/i.test(message)
  );
}

/**
 * A named query: each pooled connection parses and plans it once and then
 * reuses its prepared statement (pg's default is to parse every time, which
 * for the big alert-inserting CTE costs Postgres more than executing it).
 */
export function prepared(name, text, values) {
  return { name, text, values };
}

/**
 * Run ``fn(client)`` on a pooled connection. A connection that failed is
 * destroyed rather than returned to the pool.
 */
export async function withClient(pool, fn) {
  const client = await pool.connect();
  let broken = null;
  try {
    return await fn(client);
  } catch (err) {
    if (isUnavailable(err)) broken = err;
    throw err;
  } finally {
    client.release(broken ?? undefined);
  }
}

/**
 * Run ``fn(client)`` inside BEGIN/COMMIT; any error rolls back (best effort:
 * if the connection is gone, the server has rolled back already).
 * Returns what ``fn`` returned.
 */
export async function transaction(client, fn) {
  await client.query('BEGIN');
  let result;
  try {
    result = await fn();
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackErr) {
      log.debug(`rollback failed: ${rollbackErr.message}`);
    }
    throw err;
  }
  await client.query('COMMIT');
  return result;
}
