// The per-user alert list cache (Redis via ioredis), safe against the
// slow-reader race -- the seed's AlertCacheService with its invalidation
// made reliable.
//
// Each cached value is stamped with the user's *generation* (and a global
// *epoch*). A change that affects a user increments that user's generation
// after its transaction commits; a value whose stamp is not current is a
// miss. The write after a miss is conditional (a Lua script compares the
// stamp read before loading with the current one), so a slow reader that
// loaded the old rows before the change cannot put them back after the
// invalidation.
//
// If Redis is unreachable, reads come from Postgres (never an error) and the
// cache stays bypassed for ``breakerMs``. An invalidation that could not
// reach Redis marks the cache *dirty*: the next successful call bumps the
// epoch first, which turns every cached value into a miss.

import Redis from 'ioredis';
import { logger } from './log.js';

const log = logger('cache');

const SET_IF_CURRENT = `
local e = redis.call('GET', KEYS[1]) or '0'
local g = redis.call('GET', KEYS[2]) or '0'
if e == ARGV[1] and g == ARGV[2] then
  redis.call('SET', KEYS[3], ARGV[1] .. ':' .. ARGV[2] .. ':' .. ARGV[3], 'EX', ARGV[4])
  return 1
end
return 0
`;

/**
 * A Redis client that fails fast: bounded timeouts, no offline queue, no
 * hidden retries of a command (it reconnects in the background).
 */
export function connectRedis(url, { timeoutMs = 500, name = 'alertbench-seed-node' } = {}) {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectionName: name,
    connectTimeout: Math.max(timeoutMs, 1000),
    commandTimeout: timeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(100 * times, 2000),
  });
  let lastLogged = 0;
  redis.on('error', (err) => {
    // Log at most once every 5 s: a down Redis reports every reconnect.
    const now = Date.now();
    if (now - lastLogged > 5000) {
      lastLogged = now;
      log.warn(`redis (${name}): ${err.message}`);
    }
  });
  return redis;
}

export class AlertCache {
  /**
   * @param {Redis} redis a connectRedis() client
   * @param {{ttlS:number, prefix:string, metrics?:object, invalidateOnChange?:boolean, breakerMs?:number}} options
   *   ``invalidateOnChange: false`` is the stale_cache flaw.
   */
  constructor(redis, { ttlS, prefix, metrics = null, invalidateOnChange = true, breakerMs = 1000 }) {
    this._redis = redis;
    this._ttlS = ttlS;
    this._prefix = prefix;
    this._epochKey = `${prefix}:epoch`;
    this._metrics = metrics;
    this._invalidateOnChange = invalidateOnChange;
    this._breakerMs = breakerMs;
    this._openUntil = 0;
    this._dirty = false;
    redis.defineCommand('alertbenchSetIfCurrent', { numberOfKeys: 3, lua: SET_IF_CURRENT });
  }

  _genKey(userId) {
    return `${this._prefix}:gen:${userId}`;
  }

  _valKey(userId) {
    return `${this._prefix}:val:${userId}`;
  }

  _count(result) {
    this._metrics?.cacheRequests.labels(result).inc();
  }

  _trip(what, err) {
    log.warn(`redis ${what} failed (${err.message}); bypassing the cache for ${this._breakerMs} ms`);
    this._openUntil = Date.now() + this._breakerMs;
  }

  /** True while the breaker is open (a recent Redis failure). */
  get bypassed() {
    return Date.now() < this._openUntil;
  }

  async _clean() {
    if (this._dirty) {
      await this._redis.incr(this._epochKey);
      this._dirty = false;
      log.info('cache epoch bumped after missed invalidations');
    }
  }

  /**
   * The user's alert list and where it came from (hit | miss | bypass |
   * error); ``load()`` reads Postgres.
   */
  async getOrLoad(userId, load) {
    if (this.bypassed) {
      this._count('bypass');
      return { data: await load(), source: 'bypass' };
    }
    let epoch;
    let gen;
    let value;
    try {
      await this._clean();
      [epoch, gen, value] = await this._redis.mget(this._epochKey, this._genKey(userId), this._valKey(userId));
    } catch (err) {
      this._trip('read', err);
      this._count('error');
      return { data: await load(), source: 'error' };
    }
    epoch ??= '0';
    gen ??= '0';
    if (value !== null) {
      const first = value.indexOf(':');
      const second = value.indexOf(':', first + 1);
      if (first > 0 && second > first && value.slice(0, first) === epoch && value.slice(first + 1, second) === gen) {
        this._count('hit');
        return { data: JSON.parse(value.slice(second + 1)), source: 'hit' };
      }
    }
    const data = await load();
    try {
      await this._redis.alertbenchSetIfCurrent(
        this._epochKey,
        this._genKey(userId),
        this._valKey(userId),
        epoch,
        gen,
        JSON.stringify(data),
        this._ttlS,
      );
    } catch (err) {
      this._trip('write', err);
    }
    this._count('miss');
    return { data, source: 'miss' };
  }

  /** Make every cached list of these users a miss (call after commit). */
  async invalidate(userIds) {
    const ids = [...new Set(userIds)].filter((id) => id !== null && id !== undefined);
    if (ids.length === 0 || !this._invalidateOnChange) return;
    if (this.bypassed) {
      this._dirty = true;
      return;
    }
    try {
      await this._clean();
      const pipeline = this._redis.pipeline();
      for (const id of ids) pipeline.incr(this._genKey(id));
      const results = await pipeline.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
    } catch (err) {
      this._dirty = true;
      this._trip('invalidate', err);
      this._metrics?.cacheInvalidationErrors.inc();
    }
  }
}
