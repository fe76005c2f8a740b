"""Bad credentials are bad: each one fails a verifier that follows contract section 5."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import jwt
import pytest

from harness.contract import TokenScheme
from harness.fuzz.tokens import bad_authorization_headers, bad_tokens, flip_char

SECRET = "s" * 40
JWT = TokenScheme(secret=SECRET, claims={"sub": "{user_id}", "iss": "alertbench-reference"})
JWT_INT = TokenScheme(secret=SECRET, claims={"uid": "{user_id}:int"})
HMAC = TokenScheme(scheme="hmac-sha256-hex", secret=SECRET)


def jwt_user(token: str | None, claim: str = "sub") -> int | None:
    """The user a contract-following jwt-hs256 target accepts, or None (401)."""
    if not token:
        return None
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.PyJWTError:
        return None
    try:
        user = int(claims[claim])
    except (KeyError, TypeError, ValueError):
        return None
    return user if user > 0 else None


def hmac_user(token: str | None) -> int | None:
    """The same for hmac-sha256-hex."""
    if not token:
        return None
    user, _, digest = token.partition(".")
    if not user.isdigit() or int(user) < 1:
        return None
    want = hmac.new(SECRET.encode(), user.encode(), hashlib.sha256).hexdigest()
    return int(user) if hmac.compare_digest(want, digest) else None


@pytest.mark.parametrize(
    ("scheme", "verify"),
    [
        (JWT, jwt_user),
        (JWT_INT, lambda t: jwt_user(t, "uid")),
        (HMAC, hmac_user),
    ],
)
def test_every_bad_token_is_refused_and_the_valid_one_accepted(
    scheme: TokenScheme, verify: Callable[[str | None], int | None]
) -> None:
    assert verify(scheme.mint(7)) == 7  # the verifier is not refusing everything
    tokens = bad_tokens(scheme, 7, 9)
    kinds = [t.kind for t in tokens]
    assert len(set(kinds)) == len(kinds)
    accepted = {t.kind: verify(t.token) for t in tokens if verify(t.token) is not None}
    assert accepted == {}


def test_jwt_tokens_cover_forgery_expiry_and_non_positive_users() -> None:
    kinds = {t.kind for t in bad_tokens(JWT, 7, 9)}
    assert {"tampered_claims", "alg_none", "expired", "user_zero", "user_negative"} <= kinds
    by_kind = {t.kind: t.token for t in bad_tokens(JWT, 7, 9)}
    # The forged token names the victim under the attacker's signature.
    forged = jwt.decode(by_kind["tampered_claims"] or "", options={"verify_signature": False})
    assert forged["sub"] == "9"
    assert forged["iss"] == "alertbench-reference"
    expired = jwt.decode(by_kind["expired"] or "", options={"verify_signature": False})
    assert expired["exp"] < time.time()
    numeric = {t.kind: t.token for t in bad_tokens(JWT_INT, 7, 9)}["tampered_claims"]
    assert jwt.decode(numeric or "", options={"verify_signature": False})["uid"] == 9


def test_hmac_tokens_claim_the_victim_with_the_attackers_digest() -> None:
    by_kind = {t.kind: t.token for t in bad_tokens(HMAC, 7, 9)}
    assert by_kind["tampered_claims"] == f"9.{HMAC.mint(7).partition('.')[2]}"
    assert "expired" not in by_kind  # these tokens do not expire


def test_a_scheme_of_its_own_gets_the_generic_kinds() -> None:
    scheme = TokenScheme(scheme="tests.unit.fuzz.test_tokens:mint_plain", secret="x")
    kinds = [t.kind for t in bad_tokens(scheme, 7, 9)]
    assert kinds == ["missing", "empty", "garbage", "truncated", "flipped_char", "wrong_secret"]


def mint_plain(user_id: int, secret: str) -> str:
    return f"{secret}:{user_id}:0123456789"


def test_the_victim_must_be_another_user() -> None:
    with pytest.raises(ValueError, match="must differ"):
        bad_tokens(JWT, 7, 7)


@pytest.mark.parametrize("text", ["abcdef0123", "eyJhbGciOiJIUzI1NiJ9", "_-_-_-", "a.b.c"])
def test_flip_char_changes_one_character_within_its_alphabet(text: str) -> None:
    for index in range(len(text)):
        flipped = flip_char(text, index)
        assert len(flipped) == len(text)
        assert sum(a != b for a, b in zip(text, flipped, strict=True)) == 1


def test_authorization_headers_that_are_not_bearer() -> None:
    headers = dict(bad_authorization_headers(JWT, 7))
    assert not any(v.startswith("Bearer ") for v in headers.values())
    assert headers["not_bearer"].startswith("Token ")
