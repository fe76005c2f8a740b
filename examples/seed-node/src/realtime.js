// Socket.IO delivery: authentication, rooms, authorization, catch-up, emits.
//
// - connect with ``auth: {token}``; a missing, forged or expired token is
//   refused (connect_error); the socket joins ``user_<id>``;
// - ``subscribe_project {projectId}`` joins ``project_<id>`` for members only
//   (ack ``{ok: true, projectId}`` or ``{ok: false, error: "forbidden", projectId}``);
// - ``sync {sinceAlertId}`` acks the user's alerts with a higher id, by id,
//   SYNC_LIMIT at a time (``more`` says a page was full);
// - every other event, and every malformed payload, gets an error ack; a
//   handler failure is logged and answered, never a dropped connection.
//
// With several server processes the Redis adapter carries every emit to
// every process, so a client connected anywhere gets what is meant for it.

import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { ALERT_COLUMNS, alertEvents, alertToJson } from './alerts.js';
import { AuthError, verifyToken } from './auth.js';
import { prepared, withClient } from './db.js';
import { logger } from './log.js';

const log = logger('realtime');

/** At most this many alerts in one sync ack; the client asks again from the last id. */
export const SYNC_LIMIT = 1000;
const MAX_ID = 2n ** 63n - 1n;

const MEMBER_SQL = 'SELECT EXISTS (SELECT 1 FROM project_members WHERE project_id = $1 AND user_id = $2) AS member';
const SYNC_SQL = `
SELECT ${ALERT_COLUMNS} FROM workflow_alerts
WHERE assigned_to_id = $1 AND id > $2
ORDER BY id LIMIT ${SYNC_LIMIT}`;

/** The id under ``key`` of an event payload, or {error}. */
export function payloadId(data, key, { allowZero = false } = {}) {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { error: `payload must be an object with '${key}'` };
  }
  const value = data[key];
  const lowest = allowZero ? 0n : 1n;
  const kind = allowZero ? 'a non-negative' : 'a positive';
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    return { error: `${key} must be ${kind} integer, got ${describe(value)}` };
  }
  const big = BigInt(value);
  if (big < lowest || big > MAX_ID) return { error: `${key} must be ${kind} integer, got ${describe(value)}` };
  // Beyond 2**53 a JS number is not exact; Postgres gets the decimal text.
  return { value, param: Number.isSafeInteger(value) ? value : big.toString() };
}

function describe(value) {
  if (value === undefined) return 'nothing';
  try {
    return JSON.stringify(value).slice(0, 100);
  } catch {
    return typeof value;
  }
}

export class RealtimeServer {
  /**
   * @param {import('node:http').Server} httpServer
   * @param {{tokenSecret:string, pool:import('pg').Pool, flaws:ReadonlySet<string>,
   *   adapter?: {pubClient:object, subClient:object, key:string} | null}} options
   */
  constructor(httpServer, { tokenSecret, pool, flaws, adapter = null }) {
    this._secret = tokenSecret;
    this._pool = pool;
    this._flaws = flaws;
    this.io = new Server(httpServer, {
      serveClient: false,
      cors: { origin: '*' },
      // Defaults of python-socketio, which the reference uses.
      pingInterval: 25_000,
      pingTimeout: 20_000,
    });
    if (adapter !== null) {
      this.io.adapter(createAdapter(adapter.pubClient, adapter.subClient, { key: adapter.key }));
    }
    this.io.use((socket, next) => this._authenticate(socket, next));
    this.io.on('connection', (socket) => this._onConnection(socket));
  }

  /** Send the events of one committed alert (its notification payload) to their rooms. */
  emitAlert(notification) {
    for (const [event, room, payload] of alertEvents(notification)) {
      this.io.to(room).emit(event, payload);
    }
  }

  async close() {
    await new Promise((resolve) => {
      this.io.close(() => resolve());
    });
  }

  // -- handlers -------------------------------------------------------------

  _authenticate(socket, next) {
    const auth = socket.handshake.auth;
    const token = typeof auth === 'object' && auth !== null ? auth.token : undefined;
    if (typeof token !== 'string' || token === '') {
      next(new Error('missing token'));
      return;
    }
    try {
      socket.data.userId = verifyToken(token, this._secret);
    } catch (err) {
      next(new Error(err instanceof AuthError ? err.message : 'invalid token'));
      return;
    }
    next();
  }

  _onConnection(socket) {
    const userId = socket.data.userId;
    // Synchronous with the in-memory and Redis adapters; a promise otherwise.
    Promise.resolve(socket.join(`user_${userId}`)).catch((err) => {
      log.error(`socket ${socket.id} could not join user_${userId}; disconnecting it`, err);
      socket.disconnect(true);
    });
    const handlers = {
      subscribe_project: (data) => this._subscribeProject(socket, data),
      sync: (data) => this._sync(socket, data),
    };
    for (const [event, handler] of Object.entries(handlers)) {
      socket.on(event, (...args) => this._answer(socket, event, handler, args));
    }
    socket.onAny((event, ...args) => {
      if (Object.hasOwn(handlers, event)) return;
      const ack = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : null;
      ack?.({ ok: false, error: `unknown event ${describe(event)}` });
    });
    socket.on('error', (err) => log.debug(`socket ${socket.id}: ${err.message}`));
  }

  /** Run a handler and ack its answer; a failure is logged and acked, never thrown. */
  async _answer(socket, event, handler, args) {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    let answer;
    try {
      answer = await handler(args[0]);
    } catch (err) {
      log.error(`socket event ${event} failed (user ${socket.data.userId})`, err);
      answer = { ok: false, error: 'internal error' };
    }
    ack?.(answer);
  }

  async _subscribeProject(socket, data) {
    const parsed = payloadId(data, 'projectId');
    if (parsed.error) return { ok: false, error: parsed.error };
    const projectId = parsed.value;
    if (!this._flaws.has('no_room_auth')) {
      const { rows } = await withClient(this._pool, (c) =>
        c.query(prepared('socket-member', MEMBER_SQL, [parsed.param, socket.data.userId])),
      );
      if (!rows[0].member) return { ok: false, error: 'forbidden', projectId };
    }
    await socket.join(`project_${projectId}`);
    return { ok: true, projectId };
  }

  async _sync(socket, data) {
    const parsed = payloadId(data, 'sinceAlertId', { allowZero: true });
    if (parsed.error) return { ok: false, error: parsed.error };
    const { rows } = await withClient(this._pool, (c) => c.query(prepared('socket-sync', SYNC_SQL, [socket.data.userId, parsed.param])));
    const alerts = rows.map(alertToJson);
    return { ok: true, alerts, more: alerts.length === SYNC_LIMIT };
  }
}
