"""Bearer tokens: HS256 JWTs carrying the user id, with expiry.

The harness mints tokens for its simulated users with ``issue_token`` and the
same secret as the app (``AppConfig.token_secret``).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import jwt

__all__ = ["ALGORITHM", "AuthError", "TokenVerifier", "issue_token", "verify_token"]

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
    return _decode(token, secret)[0]


def _decode(token: str, secret: str) -> tuple[int, int]:
    """(user id, expiry in epoch seconds) of a valid token; AuthError otherwise."""
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
    return int(sub), int(claims["exp"])


class TokenVerifier:
    """``verify_token`` with a memory of the tokens it has already accepted.

    Clients send the same token with every request for most of its lifetime;
    checking its signature and claims each time was a twentieth of the app's
    CPU under load (py-spy, 300 completions/s). An accepted token is kept (the
    last ``size`` of them) with its user and expiry: a token seen again is the
    same bytes, so the same signature and claims, and only its expiry can have
    changed, which is checked on every call as PyJWT does (expired when
    ``exp <= now``). Rejected tokens are not kept.
    """

    def __init__(
        self, secret: str, *, size: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        if size < 1:
            raise ValueError(f"size: must be >= 1, got {size}")
        self._secret = secret
        self._size = size
        self._clock = clock
        self._accepted: collections.OrderedDict[str, tuple[int, int]] = collections.OrderedDict()

    def __len__(self) -> int:
        """How many accepted tokens are remembered (at most ``size``)."""
        return len(self._accepted)

    def __call__(self, token: str) -> int:
        """The user id of a valid token; AuthError otherwise."""
        known = self._accepted.get(token)
        if known is None:
            known = _decode(token, self._secret)
            self._accepted[token] = known
            if len(self._accepted) > self._size:
                self._accepted.popitem(last=False)
        user_id, expires = known
        if expires <= self._clock():
            del self._accepted[token]
            raise AuthError("token expired")
        return user_id
