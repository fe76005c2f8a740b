"""Bearer tokens for the harness's simulated users, in the target's scheme.

The contract leaves the token format to the target; a target file names one
of these schemes (``[auth] scheme``):

- ``jwt-hs256``: an HS256 JWT signed with the target's secret; its claims come
  from ``[auth] claims`` with ``{user_id}`` replaced (default ``sub =
  "{user_id}"``), plus ``iat`` and ``exp`` (``ttl_s``).
- ``hmac-sha256-hex``: ``<user_id>.<hex HMAC-SHA256 of the user id>``.
- ``module:function``: any Python callable ``(user_id: int, secret: str) ->
  str`` importable from the harness's environment, for anything else.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from harness.errors import ConfigError

__all__ = ["SCHEMES", "TokenScheme"]

SCHEMES: tuple[str, ...] = ("jwt-hs256", "hmac-sha256-hex", "module:function")
"""The schemes a target file may name (the last one stands for any import path)."""


def _fill(value: Any, user_id: int) -> Any:
    """A claim value with ``{user_id}`` replaced (strings only; numbers stay)."""
    if isinstance(value, str):
        if value == "{user_id}:int":
            return user_id
        return value.replace("{user_id}", str(user_id))
    return value


@dataclass(frozen=True, kw_only=True)
class TokenScheme:
    """How to mint a token the target accepts."""

    scheme: str = "jwt-hs256"
    secret: str
    ttl_s: int = 3600
    #: jwt-hs256 only: claims, ``{user_id}`` replaced (``"{user_id}:int"`` for a number).
    claims: Mapping[str, Any] = field(default_factory=lambda: {"sub": "{user_id}"})
    _mint: Callable[[int, str], str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.ttl_s < 1:
            raise ConfigError("[auth] ttl_s", f"must be >= 1 s, got {self.ttl_s}")
        if self.scheme in ("jwt-hs256", "hmac-sha256-hex"):
            if not self.secret:
                raise ConfigError("[auth] secret", f"{self.scheme} needs a secret")
            return
        module, _, name = self.scheme.partition(":")
        if not (module and name):
            raise ConfigError(
                "[auth] scheme",
                f"must be jwt-hs256, hmac-sha256-hex or module:function, got {self.scheme!r}",
            )
        try:
            found = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError("[auth] scheme", f"cannot import {self.scheme!r}: {exc}") from None
        if not callable(found):
            raise ConfigError("[auth] scheme", f"{self.scheme!r} is not callable")
        object.__setattr__(self, "_mint", found)

    def mint(self, user_id: int, *, now_s: float | None = None) -> str:
        """A token for ``user_id``, valid for ``ttl_s`` seconds from now."""
        if self.scheme == "jwt-hs256":
            issued = int(time.time() if now_s is None else now_s)
            claims = {k: _fill(v, user_id) for k, v in self.claims.items()}
            claims.setdefault("iat", issued)
            claims.setdefault("exp", issued + self.ttl_s)
            return jwt.encode(claims, self.secret, algorithm="HS256")
        if self.scheme == "hmac-sha256-hex":
            digest = hmac.new(self.secret.encode(), str(user_id).encode(), hashlib.sha256)
            return f"{user_id}.{digest.hexdigest()}"
        assert self._mint is not None  # set in __post_init__ for module:function
        token = self._mint(user_id, self.secret)
        if not isinstance(token, str):
            raise ConfigError("[auth] scheme", f"{self.scheme} returned {type(token).__name__}")
        return token
