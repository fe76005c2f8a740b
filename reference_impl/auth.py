"""Bearer tokens: HS256 JWTs carrying the user id, with expiry.

The harness mints tokens for its simulated users with ``issue_token`` and the
same secret as the app (``AppConfig.token_secret``).
"""

from __future__ import annotations

import time

import jwt

__all__ = ["ALGORITHM", "AuthError", "issue_token", "verify_token"]

ALGORITHM = "HS256"
_ISSUER = "alertbench-reference"


class AuthError(Exception):
    """The token is missing, malformed, badly signed or expired."""


def issue_token(user_id: int, *, secret: str, ttl_s: int = 3600, now_s: float | None = None) -> str:
    """A signed token for ``user_id`` valid for ``ttl_s`` seconds."""
    if user_id < 1:
        raise ValueError(f"user_id: must be a positive integer, got {user_id}")
    if ttl_s < 1:
        raise ValueError(f"ttl_s: must be >= 1, got {ttl_s}")
    issued = int(time.time() if now_s is None else now_s)
    claims = {"sub": str(user_id), "iat": issued, "exp": issued + ttl_s, "iss": _ISSUER}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, *, secret: str) -> int:
    """The user id of a valid token; AuthError otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=_ISSUER,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.isdigit() or int(sub) < 1:
        raise AuthError("invalid token: sub is not a user id")
    return int(sub)
