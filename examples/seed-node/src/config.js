// Configuration of one server process, read ONLY from the environment and
// validated eagerly: a bad value stops the process with a message naming
// the variable.

import { parseFlaws, FlawError } from './flaws.js';

/** Used when TOKEN_SECRET is unset: fine on 127.0.0.1, never elsewhere. */
export const DEV_TOKEN_SECRET = 'alertbench-dev-secret-not-for-production';

export class ConfigError extends Error {}

function url(env, name, schemes, { required = true } = {}) {
  const value = env[name];
  if (value === undefined || value === '') {
    if (required) throw new ConfigError(`${name}: required (a ${schemes[0]}:// URL)`);
    return null;
  }
  let parsed;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(`${name}: not a URL: ${JSON.stringify(value)}`);
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  if (!schemes.includes(scheme)) {
    throw new ConfigError(`${name}: scheme must be one of ${schemes.join(', ')}, got ${JSON.stringify(scheme)}`);
  }
  return value;
}

function int(env, name, fallback, min, max) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${name}: must be an integer, got ${JSON.stringify(raw)}`);
  const value = Number(raw);
  if (!(value >= min && value <= max)) throw new ConfigError(`${name}: must be in ${min}..${max}, got ${value}`);
  return value;
}

function num(env, name, fallback, min, max) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) {
    throw new ConfigError(`${name}: must be a number, got ${JSON.stringify(raw)}`);
  }
  if (!(value >= min && value <= max)) throw new ConfigError(`${name}: must be in [${min}, ${max}], got ${value}`);
  return value;
}

/**
 * The configuration from ``env``.
 *
 * Required: PG_DSN, REDIS_URL. See README.md for every variable.
 */
export function loadConfig(env = process.env) {
  const processes = int(env, 'ALERTBENCH_PROCESSES', 1, 1, 32);
  const processIndex = int(env, 'ALERTBENCH_PROCESS_INDEX', 0, 0, 31);
  if (processIndex >= processes) {
    throw new ConfigError(`ALERTBENCH_PROCESS_INDEX: must be below ALERTBENCH_PROCESSES (${processes}), got ${processIndex}`);
  }
  const fanout = (env.ALERTBENCH_FANOUT || 'redis').trim();
  if (!['redis', 'listen'].includes(fanout)) {
    throw new ConfigError(`ALERTBENCH_FANOUT: must be redis or listen, got ${JSON.stringify(fanout)}`);
  }
  const tokenSecret = env.TOKEN_SECRET || DEV_TOKEN_SECRET;
  if (tokenSecret.length < 32) throw new ConfigError('TOKEN_SECRET: must be at least 32 characters (HS256 key)');
  const host = env.HOST || '127.0.0.1';
  let flaws;
  try {
    flaws = parseFlaws(env.ALERTBENCH_FLAWS);
  } catch (err) {
    if (err instanceof FlawError) throw new ConfigError(`ALERTBENCH_FLAWS: ${err.message}`);
    throw err;
  }
  const pgPoolMax = int(env, 'PG_POOL_MAX', 10, 1, 1000);
  return Object.freeze({
    pgDsn: url(env, 'PG_DSN', ['postgresql', 'postgres']),
    redisUrl: url(env, 'REDIS_URL', ['redis', 'rediss']),
    host,
    port: int(env, 'PORT', 8000, 0, 65535),
    tokenSecret,
    processIndex,
    processes,
    // With several processes and the redis fan-out, emits cross processes
    // through the Socket.IO Redis adapter and only process 0 runs the relay;
    // with "listen", every process runs a relay for its own clients.
    fanout,
    socketioRedis: processes > 1 && fanout === 'redis',
    runRelay: processes === 1 || fanout === 'listen' || processIndex === 0,
    flaws,
    injectRollbackRate: num(env, 'ALERTBENCH_INJECT_ROLLBACK_RATE', 0, 0, 1),
    injectSeed: int(env, 'ALERTBENCH_INJECT_SEED', 0, 0, Number.MAX_SAFE_INTEGER),
    queueAttempts: flaws.has('no_retry') ? 1 : int(env, 'ALERTBENCH_QUEUE_ATTEMPTS', 3, 1, 1000),
    queueRetryBaseDelayMs: Math.round(1000 * num(env, 'ALERTBENCH_QUEUE_RETRY_BASE_DELAY_S', 2.0, 0, 3600)),
    queueConcurrency: int(env, 'ALERTBENCH_QUEUE_CONCURRENCY', 10, 1, 1000),
    cacheTtlS: int(env, 'ALERTBENCH_CACHE_TTL_S', 60, 1, 86400),
    redisTimeoutMs: Math.round(1000 * num(env, 'ALERTBENCH_REDIS_TIMEOUT_S', 0.5, 0.01, 60)),
    pgPoolMax,
    relayPgDsn: url(env, 'ALERTBENCH_RELAY_PG_DSN', ['postgresql', 'postgres'], { required: false }),
    relayReplayMarginS: num(env, 'ALERTBENCH_RELAY_REPLAY_MARGIN_S', 30, 0, 86400),
  });
}
