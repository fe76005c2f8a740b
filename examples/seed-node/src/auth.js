// Bearer tokens: HS256 JWTs whose ``sub`` is the user id as a decimal
// string, with an expiry. The harness signs them with TOKEN_SECRET.

import jwt from 'jsonwebtoken';

export class AuthError extends Error {}

const ALGORITHM = 'HS256';

/** The user id of a valid token; AuthError (the reason) otherwise. */
export function verifyToken(token, secret) {
  if (typeof token !== 'string' || token === '') throw new AuthError('missing token');
  let claims;
  try {
    claims = jwt.verify(token, secret, { algorithms: [ALGORITHM] });
  } catch (err) {
    if (err instanceof jwt.TokenExpiredError) throw new AuthError('token expired');
    throw new AuthError(`invalid token: ${err.message}`);
  }
  if (typeof claims !== 'object' || claims === null) throw new AuthError('invalid token: no claims');
  if (typeof claims.exp !== 'number') throw new AuthError('invalid token: exp is required');
  const sub = claims.sub;
  if (typeof sub !== 'string' || !/^[0-9]{1,19}$/.test(sub) || BigInt(sub) < 1n || BigInt(sub) > 2n ** 63n - 1n) {
    throw new AuthError('invalid token: sub is not a user id');
  }
  return Number(sub);
}

/** A signed token for ``userId``, valid ``ttlS`` seconds (tests, tools). */
export function issueToken(userId, secret, { ttlS = 3600 } = {}) {
  if (!Number.isSafeInteger(userId) || userId < 1) throw new RangeError(`userId: a positive integer, got ${userId}`);
  return jwt.sign({ sub: String(userId) }, secret, { algorithm: ALGORITHM, expiresIn: ttlS });
}

/** The bearer token of an ``Authorization`` header value, or null. */
export function bearer(header) {
  if (typeof header !== 'string') return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : null;
}
