"""Bad credentials for a target's token scheme: what an attacker would try.

Contract section 5: a missing ``Authorization`` header, one that is not
``Bearer …``, a malformed token, a bad signature, an expired token or a token
that does not name a positive user id MUST be answered 401, and MUST make a
Socket.IO connection fail. :func:`bad_tokens` builds one of each that applies
to the scheme, from a valid token of a real user, so a target that checks
only the token's shape (or only its user id) lets one through.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from dataclasses import dataclass

from harness.contract import TokenScheme

__all__ = ["BadToken", "bad_authorization_headers", "bad_tokens", "flip_char"]

_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass(frozen=True)
class BadToken:
    """A credential the target must refuse: its kind and the token text."""

    kind: str
    #: The token (``None``: no token at all).
    token: str | None


def flip_char(text: str, index: int) -> str:
    """``text`` with the character at ``index`` replaced by another of the same
    alphabet (base64url letters and digits stay base64url, hex stays hex)."""
    if not text:
        raise ValueError("cannot flip a character of an empty string")
    i = index % len(text)
    old = text[i]
    alphabet = "0123456789abcdef" if old in "0123456789abcdef" else _B64URL
    new = alphabet[(alphabet.find(old) + 1) % len(alphabet)] if old in alphabet else "A"
    return text[:i] + new + text[i + 1 :]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwt_parts(token: str) -> tuple[dict[str, object], dict[str, object], str]:
    header, payload, signature = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload)), signature


def bad_tokens(
    scheme: TokenScheme, user_id: int, other_user_id: int, *, now_s: float | None = None
) -> list[BadToken]:
    """Every kind of bad token that applies to ``scheme``, for ``user_id``.

    ``other_user_id`` (a real user, e.g. the victim) is the identity a
    tampered token claims while keeping ``user_id``'s signature.
    """
    if user_id == other_user_id:
        raise ValueError("other_user_id must differ from user_id")
    now = time.time() if now_s is None else now_s
    valid = scheme.mint(user_id, now_s=now)
    wrong_secret = dataclasses.replace(scheme, secret=scheme.secret + "-not-the-secret")
    out = [
        BadToken("missing", None),
        BadToken("empty", ""),
        BadToken("garbage", "not-a-token"),
        BadToken("truncated", valid[: max(1, len(valid) - 6)]),
        BadToken("flipped_char", flip_char(valid, len(valid) - 10)),
        BadToken("wrong_secret", wrong_secret.mint(user_id, now_s=now)),
    ]
    if scheme.scheme == "jwt-hs256":
        _header, payload, signature = _jwt_parts(valid)
        forged = {**payload, "sub": str(other_user_id)}
        if any(v == user_id for v in payload.values()):  # a numeric user-id claim
            forged = {k: (other_user_id if v == user_id else v) for k, v in payload.items()}
        head = valid.split(".")[0]  # the original header: only the claims change
        out += [
            BadToken("tampered_claims", f"{head}.{_b64(json.dumps(forged).encode())}.{signature}"),
            BadToken(
                "alg_none",
                f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}."
                f"{_b64(json.dumps(forged).encode())}.",
            ),
            # Expired an hour ago (signature right).
            BadToken("expired", scheme.mint(user_id, now_s=now - scheme.ttl_s - 3600)),
            BadToken("user_zero", scheme.mint(0, now_s=now)),
            BadToken("user_negative", scheme.mint(-1, now_s=now)),
        ]
    elif scheme.scheme == "hmac-sha256-hex":
        digest = valid.partition(".")[2]
        out += [
            BadToken("tampered_claims", f"{other_user_id}.{digest}"),
            BadToken("user_zero", scheme.mint(0)),
            BadToken("user_negative", scheme.mint(-1)),
            BadToken("no_signature", f"{user_id}."),
        ]
    return out


def bad_authorization_headers(scheme: TokenScheme, user_id: int) -> list[tuple[str, str]]:
    """``Authorization`` values that are not ``Bearer <token>`` (kind, header)."""
    valid = scheme.mint(user_id)
    return [
        ("not_bearer", f"Token {valid}"),
        ("basic", "Basic dXNlcjpwYXNzd29yZA=="),
        ("bearer_without_token", "Bearer"),
        ("token_without_scheme", valid),
    ]
