// The composition root of one server process: the Postgres pool, the cache,
// the queue (and its worker), the metrics, and the services wrapped with
// what a request needs around them (a pooled connection, query counting,
// latency, cache invalidation after commit).

import { ALERT_COLUMNS, alertToJson } from './alerts.js';
import { AlertCache, connectRedis } from './cache.js';
import { completeLineItem, CompletionError, InjectedRollback } from './completion.js';
import { connect, counting, createPool, prepared, withClient } from './db.js';
import { hooksFor } from './faults.js';
import { generateAlerts } from './generation.js';
import { logger } from './log.js';
import { Metrics } from './metrics.js';
import { CompletionQueue } from './queue.js';
import { migrate } from './schema.js';

const log = logger('runtime');

export const USER_ALERTS_LIMIT = 500;
const USER_ALERTS_SQL = `
SELECT ${ALERT_COLUMNS} FROM workflow_alerts
WHERE assigned_to_id = $1 AND status = 'ACTIVE'
ORDER BY created_at DESC, id DESC LIMIT ${USER_ALERTS_LIMIT}`;

export class StartupError extends Error {}

/**
 * Redis key prefix of this database: its name and oid. A database made
 * anew (a new run, a clone of a template) gets a new oid, so cached lists,
 * queued jobs and Socket.IO channels of an earlier database that had the
 * same name and ids are never mistaken for this one's.
 */
async function keyPrefix(client) {
  const { rows } = await client.query(
    'SELECT current_database() AS db, oid::text AS oid FROM pg_database WHERE datname = current_database()',
  );
  return `seednode:${rows[0].db}:${rows[0].oid}`;
}

export class Runtime {
  /** Check Postgres and Redis, migrate, and build every part. */
  static async start(config) {
    let client;
    try {
      client = await connect(config.pgDsn);
    } catch (err) {
      throw new StartupError(`cannot connect to Postgres at PG_DSN: ${err.message}`);
    }
    let prefix;
    try {
      // Idempotent, under an advisory lock: every process may run it.
      await migrate(client, { uniqueActiveAlert: !config.flaws.has('no_unique_index') });
      prefix = await keyPrefix(client);
    } finally {
      await client.end().catch(() => {});
    }
    const redis = connectRedis(config.redisUrl, { timeoutMs: config.redisTimeoutMs });
    try {
      await redis.connect();
      await redis.ping();
    } catch (err) {
      redis.disconnect();
      throw new StartupError(`cannot connect to Redis at REDIS_URL: ${err.message}`);
    }
    const metrics = new Metrics();
    const queue = new CompletionQueue({
      redisUrl: config.redisUrl,
      prefix: `${prefix}:bull`,
      attempts: config.queueAttempts,
      retryBaseDelayMs: config.queueRetryBaseDelayMs,
      concurrency: config.queueConcurrency,
      metrics,
    });
    await queue.ready();
    const runtime = new Runtime(config, {
      pool: createPool(config.pgDsn, { max: config.pgPoolMax }),
      redis,
      cache: new AlertCache(redis, {
        ttlS: config.cacheTtlS,
        prefix: `${prefix}:alerts`,
        metrics,
        invalidateOnChange: !config.flaws.has('stale_cache'),
      }),
      queue,
      metrics,
      prefix,
    });
    queue.startWorker((projectId, lineItemId, userId) => runtime.complete(projectId, lineItemId, userId));
    log.info(`runtime started (flaws: ${[...config.flaws].sort().join(', ') || 'none'}; keys: ${prefix})`);
    return runtime;
  }

  constructor(config, { pool, redis, cache, queue, metrics, prefix }) {
    this.config = config;
    this.pool = pool;
    this.redis = redis;
    this.cache = cache;
    this.queue = queue;
    this.metrics = metrics;
    this.prefix = prefix;
    this.hooks = hooksFor(config);
    /** Direct emit of an alert; only the emit_before_commit flaw uses it. */
    this.emitter = null;
  }

  /** Batch generation, measured, then cache invalidation of the assignees. */
  async generate(projectIds) {
    const started = performance.now();
    const result = await withClient(this.pool, async (client) => {
      const db = counting(client);
      try {
        return await generateAlerts(db, projectIds, { flaws: this.config.flaws });
      } finally {
        this.metrics.dbQueriesPerRequest.labels('generate').observe(db.count);
      }
    });
    this.metrics.alertGenerationSeconds.labels('generate').observe((performance.now() - started) / 1000);
    this.metrics.alertsCreated.labels('generate').inc(result.created.length);
    this.metrics.duplicatesPrevented.inc(result.candidates - result.created.length);
    await this.cache.invalidate(result.created.map((a) => a.assignedToId));
    return result;
  }

  /** One completion transaction, then cache invalidation of the affected users. */
  async complete(projectId, lineItemId, userId) {
    const started = performance.now();
    let outcome = 'error';
    let result;
    try {
      result = await withClient(this.pool, async (client) => {
        const db = counting(client);
        try {
          return await completeLineItem(db, {
            projectId,
            lineItemId,
            userId,
            flaws: this.config.flaws,
            hooks: this.hooks,
            emitter: this.emitter,
          });
        } finally {
          this.metrics.dbQueriesPerRequest.labels('complete').observe(db.count);
        }
      });
      outcome = 'ok';
    } catch (err) {
      if (err instanceof InjectedRollback) outcome = 'rolled_back';
      else if (err instanceof CompletionError) {
        outcome = { 403: 'forbidden', 404: 'not_found', 409: 'stale' }[err.status] ?? 'error';
      }
      throw err;
    } finally {
      this.metrics.completions.labels(outcome).inc();
    }
    this.metrics.alertGenerationSeconds.labels('complete').observe((performance.now() - started) / 1000);
    if (result.alert !== null) this.metrics.alertsCreated.labels('complete').inc();
    await this.cache.invalidate(result.affectedUserIds);
    return result;
  }

  /** The user's ACTIVE alerts from Postgres, newest first. */
  async loadUserAlerts(userId) {
    const { rows } = await withClient(this.pool, (c) => c.query(prepared('user-alerts', USER_ALERTS_SQL, [userId])));
    return rows.map(alertToJson);
  }

  /** The user's ACTIVE alerts through the cache: {data, source}. */
  userAlerts(userId) {
    return this.cache.getOrLoad(userId, () => this.loadUserAlerts(userId));
  }

  /** Postgres answers within a second. */
  async healthy() {
    let timer;
    try {
      await Promise.race([
        withClient(this.pool, (c) => c.query('SELECT 1')),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), 1000);
        }),
      ]);
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop the worker and close every connection; one failure does not leak the rest. */
  async close() {
    const steps = [
      ['queue', () => this.queue.close()],
      ['redis', () => this.redis.quit()],
      ['postgres pool', () => this.pool.end()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        log.warn(`closing the ${name} failed: ${err.message}`);
      }
    }
    this.metrics.close();
  }
}
