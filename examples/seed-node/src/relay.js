// The durable relay: Postgres notifications in, Socket.IO emits out.
//
// Completion and generation call pg_notify('alert_created', ...) inside
// their transactions, so a notification exists only for a committed alert.
// The relay LISTENs on a dedicated connection and emits each alert's events.
//
// Notifications are not durable: whatever commits while the relay's
// connection is down is never sent to it. So the relay keeps the database
// clock time at which it last knew its connection was alive (a health query
// every ``healthIntervalMs``) and the highest alert id it emitted; after
// reconnecting (LISTEN first, then read) it replays from the table every
// alert created since that time less ``replayMarginS`` (a transaction's
// created_at is its start, which may precede its commit) or with a higher id
// than the last emitted. Emitted ids are remembered (the last ``remember``),
// so replay and live notifications never emit one alert twice.

import { setTimeout as sleep } from 'node:timers/promises';
import { ALERT_COLUMNS, NOTIFY_CHANNEL, notificationFromRow } from './alerts.js';
import { connect } from './db.js';
import { seededRandom } from './faults.js';
import { logger } from './log.js';

const log = logger('relay');

/** The relay's connection shows under this name in pg_stat_activity. */
export const RELAY_APPLICATION_NAME = 'alertbench-relay';

const REPLAY_SQL = `
SELECT ${ALERT_COLUMNS} FROM workflow_alerts
WHERE (created_at >= $1::timestamptz - make_interval(secs => $2) OR id > $3) AND id > $4
ORDER BY id`;

// Exactly this text: the harness leaves the relay's liveness probe out of
// its queries-per-request count by matching it.
const PROBE_SQL = 'SELECT clock_timestamp()';
const HIGH_WATER_SQL = 'SELECT coalesce(max(id), 0) AS max_id FROM workflow_alerts';

class SessionLost extends Error {}

export class Relay {
  /**
   * @param {string} dsn Postgres DSN of the LISTEN connection
   * @param {(notification: object) => void} emit
   */
  constructor(
    dsn,
    emit,
    {
      healthIntervalMs = 500,
      replayMarginS = 30,
      reconnectInitialMs = 100,
      reconnectMaxMs = 2000,
      remember = 200_000,
      connectTimeoutMs = 5000,
      onEvent = () => {},
    } = {},
  ) {
    this._dsn = dsn;
    this._emit = emit;
    this._healthIntervalMs = healthIntervalMs;
    this._replayMarginS = replayMarginS;
    this._reconnectInitialMs = reconnectInitialMs;
    this._reconnectMaxMs = reconnectMaxMs;
    this._remember = remember;
    this._connectTimeoutMs = connectTimeoutMs;
    this._onEvent = onEvent;
    this._random = seededRandom(0);
    /** Emitted alert ids, oldest first (a Set keeps insertion order). */
    this._emitted = new Set();
    this._lastEmittedId = 0;
    /**
     * The highest alert id when this relay first listened: it never replays
     * an alert at or below it. A process started again after a crash must
     * not push what the dead one may already have pushed (its clients catch
     * up with sync); without this floor the first replay re-sent the last
     * replayMarginS seconds of alerts.
     */
    this._floorId = 0;
    /** Database time (text) when the connection was last known alive. */
    this._aliveAt = null;
    this._client = null;
    this._running = false;
    this._loop = null;
    this._abort = new AbortController();
    this.listening = false;
    this.stats = { emittedLive: 0, emittedReplay: 0, skippedDuplicates: 0, connections: 0 };
    this._readyWaiters = [];
  }

  /** Start relaying; resolve once the first LISTEN is in place. */
  async start({ readyTimeoutMs = 10_000 } = {}) {
    if (!this._running) {
      this._running = true;
      this._loop = this._run();
    }
    await this.waitListening(readyTimeoutMs);
  }

  /** Resolve when listening (bounded by ``timeoutMs``). */
  waitListening(timeoutMs) {
    if (this.listening) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`relay not listening after ${timeoutMs} ms`)), timeoutMs);
      this._readyWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async stop() {
    this._running = false;
    this._abort.abort();
    await this._closeClient();
    await this._loop?.catch(() => {});
  }

  async _run() {
    let delay = this._reconnectInitialMs;
    while (this._running) {
      try {
        await this._session();
      } catch (err) {
        if (!this._running) break;
        log.warn(`relay lost its connection (${err.message}); reconnecting in about ${delay} ms`);
      }
      const wasListening = this.listening;
      this.listening = false;
      await this._closeClient();
      if (!this._running) break;
      if (wasListening) delay = this._reconnectInitialMs;
      try {
        await sleep(delay * (0.5 + this._random()), undefined, { signal: this._abort.signal });
      } catch {
        break; // stopped
      }
      delay = Math.min(delay * 2, this._reconnectMaxMs);
    }
  }

  /** One connection's life: listen, replay what was missed, relay, probe. */
  async _session() {
    const client = await connect(this._dsn, {
      applicationName: RELAY_APPLICATION_NAME,
      connectTimeoutMs: this._connectTimeoutMs,
    });
    this._client = client;
    // The connection's death, however it is reported, ends the session.
    let fail;
    const lost = new Promise((_, reject) => {
      fail = reject;
    });
    lost.catch(() => {});
    client.on('error', (err) => fail(new SessionLost(err.message)));
    client.on('end', () => fail(new SessionLost('LISTEN connection closed')));

    // Notifications are queued until the replay is done, then drained in order.
    const pending = [];
    let replaying = true;
    client.on('notification', (msg) => {
      if (msg.channel !== NOTIFY_CHANNEL) return;
      if (replaying) pending.push(msg.payload);
      else this._onNotification(msg.payload);
    });

    // Every wait of the session also ends when the connection is lost (and
    // the probe when it takes too long); a promise that loses a race is
    // still settled quietly, never an unhandled rejection.
    const guarded = (promise, timeoutMs = null) => {
      promise.catch(() => {});
      const racers = [promise, lost];
      let timer = null;
      if (timeoutMs !== null) {
        racers.push(
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new SessionLost(`health probe took over ${timeoutMs} ms`)), timeoutMs);
          }),
        );
      }
      return Promise.race(racers).finally(() => clearTimeout(timer));
    };

    await guarded(client.query(`LISTEN ${NOTIFY_CHANNEL}`));
    const now = (await guarded(client.query(PROBE_SQL))).rows[0].clock_timestamp;
    if (this._aliveAt === null) {
      // First start: alerts already in the table were committed before
      // anyone listened (clients catch up with sync); a later replay starts
      // above them, never from id 0.
      const { rows } = await guarded(client.query(HIGH_WATER_SQL));
      this._lastEmittedId = Math.max(this._lastEmittedId, rows[0].max_id);
      this._floorId = Number(rows[0].max_id);
    } else {
      // Listening again: everything committed from here on arrives as a
      // notification; what was committed while we were away is replayed.
      await guarded(this._replay(client));
    }
    this._aliveAt = now;
    replaying = false;
    for (const payload of pending.splice(0)) this._onNotification(payload);

    this.listening = true;
    this.stats.connections += 1;
    this._onEvent('connect');
    for (const wake of this._readyWaiters.splice(0)) wake();

    const probeTimeoutMs = Math.max(this._healthIntervalMs * 4, 1000);
    while (this._running) {
      await guarded(sleep(this._healthIntervalMs, undefined, { signal: this._abort.signal }));
      const result = await guarded(client.query(PROBE_SQL), probeTimeoutMs);
      this._aliveAt = result.rows[0].clock_timestamp;
    }
  }

  _onNotification(payload) {
    let notification;
    try {
      notification = JSON.parse(payload);
    } catch {
      log.error(`relay ignored a malformed notification: ${String(payload).slice(0, 200)}`);
      return;
    }
    const alertId = Number(notification?.alertId);
    if (!Number.isSafeInteger(alertId)) {
      log.error(`relay ignored a notification without alertId: ${String(payload).slice(0, 200)}`);
      return;
    }
    if (this._emitOnce(alertId, notification)) {
      this.stats.emittedLive += 1;
      this._onEvent('live');
    }
  }

  async _replay(client) {
    const started = performance.now();
    const { rows } = await client.query(REPLAY_SQL, [
      this._aliveAt,
      this._replayMarginS,
      this._lastEmittedId,
      this._floorId,
    ]);
    let replayed = 0;
    for (const row of rows) {
      if (this._emitOnce(row.id, notificationFromRow(row))) {
        replayed += 1;
        this._onEvent('replay');
      }
    }
    this.stats.emittedReplay += replayed;
    log.info(
      `relay replayed ${replayed} of ${rows.length} alerts since ${this._aliveAt} (margin ${this._replayMarginS} s)` +
        ` in ${(performance.now() - started).toFixed(1)} ms`,
    );
  }

  _emitOnce(alertId, notification) {
    if (this._emitted.has(alertId)) {
      this.stats.skippedDuplicates += 1;
      return false;
    }
    this._emitted.add(alertId);
    if (this._emitted.size > this._remember) {
      this._emitted.delete(this._emitted.values().next().value);
    }
    this._lastEmittedId = Math.max(this._lastEmittedId, alertId);
    try {
      this._emit(notification);
    } catch (err) {
      log.error(`relay could not emit alert ${alertId}`, err);
    }
    return true;
  }

  async _closeClient() {
    const client = this._client;
    this._client = null;
    if (client === null) return;
    client.removeAllListeners('notification');
    client.on('error', () => {});
    await Promise.race([client.end().catch(() => {}), sleep(2000, undefined, { ref: false })]);
  }
}
