// The HTTP API: generation, completion (direct or queued), per-user alerts,
// queue inspection, health, metrics and the OpenAPI document.

import { AuthError, bearer, verifyToken } from './auth.js';
import { CompletionError, InjectedRollback, StaleCompletion } from './completion.js';
import { isUnavailable } from './db.js';
import { discardBody, HttpError, parseId, readJson, sendJson, sendText } from './http.js';
import { logger } from './log.js';
import { OPENAPI } from './openapi.js';

const log = logger('app');

export const MAX_BATCH = 100_000;

const UNAUTHORIZED = { 'WWW-Authenticate': 'Bearer' };

/** Errors of ioredis/BullMQ that mean Redis is unreachable. */
function isRedisUnavailable(err) {
  const message = String(err?.message ?? '');
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(err?.code) ||
    /Connection is closed|enableOfflineQueue|Command timed out|Stream isn't writeable|MaxRetriesPerRequest/i.test(message)
  );
}

/** The body of POST /api/alerts/generate, validated strictly. */
/** A short text of a value from a request; never throws (JSON.stringify overflows
 *  the stack on an array nested 100,000 deep, which made that body a 500). */
function describe(value) {
  try {
    return String(JSON.stringify(value)).slice(0, 100);
  } catch {
    return Array.isArray(value) ? 'a nested array' : typeof value;
  }
}

export function parseGenerateBody(body) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(422, 'body: must be a JSON object {"project_ids": [...]}');
  }
  for (const key of Object.keys(body)) {
    if (key !== 'project_ids') throw new HttpError(422, `body: unexpected field ${JSON.stringify(key)}`);
  }
  const ids = body.project_ids;
  if (ids === undefined) throw new HttpError(422, 'project_ids: field required');
  if (!Array.isArray(ids)) throw new HttpError(422, 'project_ids: must be a list of positive integers');
  if (ids.length > MAX_BATCH) {
    throw new HttpError(422, `project_ids: at most ${MAX_BATCH} ids in one batch, got ${ids.length}`);
  }
  ids.forEach((id, index) => {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) {
      throw new HttpError(
        422,
        `project_ids[${index}]: must be a positive integer up to ${Number.MAX_SAFE_INTEGER}, got ${describe(id)}`,
      );
    }
  });
  return ids;
}

/**
 * The request handler of one process.
 * @param {import('./runtime.js').Runtime} runtime
 * @param {{relay: import('./relay.js').Relay | null}} parts
 */
export function createApp(runtime, parts) {
  const { config, metrics, queue } = runtime;

  function currentUser(req) {
    const token = bearer(req.headers.authorization);
    if (token === null) throw new HttpError(401, 'missing bearer token', { headers: UNAUTHORIZED });
    try {
      return verifyToken(token, config.tokenSecret);
    } catch (err) {
      if (err instanceof AuthError) throw new HttpError(401, err.message, { headers: UNAUTHORIZED });
      throw err;
    }
  }

  async function healthz(req, res) {
    const postgres = await runtime.healthy();
    const relay = parts.relay === null ? null : parts.relay.listening;
    const ok = postgres && relay !== false;
    sendJson(res, ok ? 200 : 503, { status: ok ? 'ok' : 'degraded', postgres, relay });
  }

  async function metricsText(req, res) {
    sendText(res, 200, await metrics.render(), metrics.contentType);
  }

  async function openapi(req, res) {
    sendJson(res, 200, OPENAPI);
  }

  async function generate(req, res) {
    currentUser(req);
    const ids = parseGenerateBody(await readJson(req));
    const result = await runtime.generate(ids);
    sendJson(res, 200, {
      requested: result.requested,
      candidates: result.candidates,
      created: result.created.length,
      duplicatesPrevented: result.candidates - result.created.length,
      alertIds: result.created.map((a) => a.id),
    });
  }

  async function complete(req, res, [project, item], query) {
    const userId = currentUser(req);
    await discardBody(req);
    const projectId = parseId(project, 'project_id');
    const lineItemId = parseId(item, 'line_item_id');
    const mode = query.get('mode') ?? 'sync';
    if (mode !== 'sync' && mode !== 'queue') {
      throw new HttpError(422, `mode: must be 'sync' or 'queue', got ${JSON.stringify(mode)}`);
    }
    if (mode === 'queue') {
      const jobId = await queue.enqueueCompletion({ projectId, lineItemId, userId });
      sendJson(res, 202, { jobId, status: 'queued' });
      return;
    }
    let result;
    try {
      result = await runtime.complete(projectId, lineItemId, userId);
    } catch (err) {
      if (err instanceof InjectedRollback) throw new HttpError(503, `${err.message} (rolled back)`);
      if (err instanceof StaleCompletion) {
        throw new HttpError(err.status, err.message, { extra: { currentLineItemId: err.currentLineItemId } });
      }
      if (err instanceof CompletionError) throw new HttpError(err.status, err.message);
      throw err;
    }
    sendJson(res, 200, {
      projectId: result.projectId,
      completedLineItemId: result.completedLineItemId,
      nextLineItemId: result.nextLineItemId,
      workflowComplete: result.nextLineItemId === null,
      alert: result.alert,
      committedAtMs: result.committedAtMs,
    });
  }

  async function userAlerts(req, res, [user]) {
    const tokenUser = currentUser(req);
    const userId = parseId(user, 'user_id');
    if (String(tokenUser) !== String(userId)) throw new HttpError(403, 'a user can only read their own alerts');
    const { data, source } = await runtime.userAlerts(userId);
    sendJson(res, 200, { userId, alerts: data }, { 'X-Cache': source });
  }

  async function queueJob(req, res, [rawId]) {
    currentUser(req);
    let jobId;
    try {
      jobId = decodeURIComponent(rawId);
    } catch {
      throw new HttpError(422, 'job_id: not a valid URL-encoded string');
    }
    if (jobId.length === 0 || jobId.length > 200) throw new HttpError(422, 'job_id: 1 to 200 characters');
    const job = await queue.job(jobId);
    if (job === null) throw new HttpError(404, `no job ${JSON.stringify(jobId)}`);
    sendJson(res, 200, job);
  }

  async function deadLetters(req, res, _params, query) {
    currentUser(req);
    const raw = query.get('limit') ?? '100';
    const limit = /^[0-9]{1,4}$/.test(raw) ? Number(raw) : NaN;
    if (!(limit >= 1 && limit <= 1000)) throw new HttpError(422, `limit: must be an integer in 1..1000, got ${JSON.stringify(raw)}`);
    sendJson(res, 200, { deadLetters: await queue.deadLetters(limit) });
  }

  // [method, path pattern, handler]; a path that matches with another
  // method answers 405.
  const routes = [
    ['GET', /^\/healthz$/, healthz],
    ['GET', /^\/metrics$/, metricsText],
    ['GET', /^\/openapi\.json$/, openapi],
    ['POST', /^\/api\/alerts\/generate$/, generate],
    ['POST', /^\/api\/projects\/([^/]+)\/line-items\/([^/]+)\/complete$/, complete],
    ['GET', /^\/api\/users\/([^/]+)\/alerts$/, userAlerts],
    ['GET', /^\/api\/queue\/dead-letters$/, deadLetters],
    ['GET', /^\/api\/queue\/jobs\/([^/]+)$/, queueJob],
  ];

  return async function handle(req, res) {
    let url;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendJson(res, 400, { detail: 'bad request target' });
      return;
    }
    try {
      let pathMatched = false;
      for (const [method, pattern, handler] of routes) {
        const match = pattern.exec(url.pathname);
        if (match === null) continue;
        pathMatched = true;
        if (req.method !== method) continue;
        await handler(req, res, match.slice(1), url.searchParams);
        return;
      }
      if (pathMatched) throw new HttpError(405, 'Method Not Allowed');
      throw new HttpError(404, 'Not Found');
    } catch (err) {
      answerError(res, err, `${req.method} ${url.pathname}`);
    }
  };
}

/** Turn an error into a JSON answer (never a crash, never an HTML page). */
function answerError(res, err, what) {
  if (res.headersSent) {
    log.error(`${what}: failed after the answer started`, err);
    res.destroy();
    return;
  }
  if (err instanceof HttpError) {
    sendJson(res, err.status, { detail: err.message, ...err.extra }, err.headers);
  } else if (isUnavailable(err)) {
    log.warn(`${what}: database unavailable: ${err.message}`);
    sendJson(res, 503, { detail: 'database unavailable' });
  } else if (isRedisUnavailable(err)) {
    log.warn(`${what}: redis unavailable: ${err.message}`);
    sendJson(res, 503, { detail: 'queue unavailable' });
  } else {
    log.error(`${what}: internal error`, err);
    sendJson(res, 500, { detail: 'internal server error' });
  }
}
