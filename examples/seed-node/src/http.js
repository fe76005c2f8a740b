// Small HTTP helpers on node:http: JSON responses, bounded JSON bodies, ids
// and errors. Every error answer is JSON with a ``detail`` naming the
// problem, like the reference's (FastAPI) answers.

/** An answer other than 2xx, raised by a handler. */
export class HttpError extends Error {
  constructor(status, detail, { headers = {}, extra = {} } = {}) {
    super(detail);
    this.status = status;
    this.headers = headers;
    this.extra = extra;
  }
}

const MAX_ID = 2n ** 63n - 1n;

/**
 * A positive 64-bit id from a path segment: a number when it is a safe JS
 * integer, else its decimal string (Postgres reads either); 422 otherwise.
 */
export function parseId(text, name) {
  if (typeof text !== 'string' || !/^[0-9]{1,19}$/.test(text)) {
    throw new HttpError(422, `${name}: must be a positive 64-bit integer, got ${JSON.stringify(String(text).slice(0, 40))}`);
  }
  const big = BigInt(text);
  if (big < 1n || big > MAX_ID) {
    throw new HttpError(422, `${name}: must be in 1..${MAX_ID}, got ${text}`);
  }
  return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big.toString();
}

/** Write a JSON answer. */
export function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Write a text answer. */
export function sendText(res, status, text, contentType) {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The request body parsed as JSON (undefined when empty); 413 past
 * ``limitBytes``, 422 when it is not JSON.
 */
export async function readJson(req, { limitBytes = 16 * 1024 * 1024 } = {}) {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) {
    throw new HttpError(413, `body: larger than ${limitBytes} bytes`);
  }
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limitBytes) throw new HttpError(413, `body: larger than ${limitBytes} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(422, `body: not valid JSON (${err.message})`);
  }
}

/** Drain an unused request body (bounded) so the connection can be reused. */
export async function discardBody(req, { limitBytes = 1024 * 1024 } = {}) {
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limitBytes) throw new HttpError(413, `body: larger than ${limitBytes} bytes`);
  }
}
