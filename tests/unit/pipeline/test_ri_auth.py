"""Bearer tokens: signed, expiring, bound to one user id."""

from __future__ import annotations

import time

import jwt
import pytest

from reference_impl.auth import AuthError, TokenVerifier, issue_token, verify_token

SECRET = "unit-test-secret-of-at-least-32-characters"


def test_a_token_round_trips_to_its_user() -> None:
    assert verify_token(issue_token(42, secret=SECRET), secret=SECRET) == 42


def test_a_token_signed_with_another_secret_is_rejected() -> None:
    token = issue_token(42, secret="x" * 40)
    with pytest.raises(AuthError, match="invalid token"):
        verify_token(token, secret=SECRET)


def test_an_expired_token_is_rejected() -> None:
    token = issue_token(42, secret=SECRET, ttl_s=60, now_s=1_000_000)
    with pytest.raises(AuthError, match="expired"):
        verify_token(token, secret=SECRET)


def test_a_tampered_or_foreign_token_is_rejected() -> None:
    token = issue_token(42, secret=SECRET)
    header, payload, signature = token.split(".")
    with pytest.raises(AuthError):
        verify_token(f"{header}.{payload}x.{signature}", secret=SECRET)
    with pytest.raises(AuthError):
        verify_token("not-a-token", secret=SECRET)
    unsigned = jwt.encode({"sub": "42"}, SECRET, algorithm="HS256")  # no exp, no issuer
    with pytest.raises(AuthError):
        verify_token(unsigned, secret=SECRET)


def test_non_numeric_subjects_are_rejected() -> None:
    forged = jwt.encode(
        {"sub": "admin", "iat": 1, "exp": 2**40, "iss": "alertbench-reference"},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(AuthError, match="user id"):
        verify_token(forged, secret=SECRET)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="user_id"):
        issue_token(0, secret=SECRET)
    with pytest.raises(ValueError, match="ttl_s"):
        issue_token(1, secret=SECRET, ttl_s=0)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_verifier_accepts_a_known_token_only_until_it_expires() -> None:
    clock = FakeClock(time.time())
    verify = TokenVerifier(SECRET, clock=clock)
    token = issue_token(42, secret=SECRET, ttl_s=60, now_s=clock.now)
    assert verify(token) == 42
    assert verify(token) == 42  # known: accepted again
    clock.now += 60  # exp == now: expired, as PyJWT says
    with pytest.raises(AuthError, match="token expired"):
        verify(token)


def test_the_verifier_rejects_what_verify_token_rejects() -> None:
    verify = TokenVerifier(SECRET)
    good = issue_token(7, secret=SECRET)
    assert verify(good) == 7
    header, payload, signature = good.split(".")
    foreign = issue_token(7, secret="y" * 40)
    for bad in (f"{header}.{payload}x.{signature}", foreign, "not-a-token"):
        with pytest.raises(AuthError, match="invalid token"):
            verify(bad)
        with pytest.raises(AuthError, match="invalid token"):
            verify(bad)  # a rejected token is checked again, never remembered as good
    with pytest.raises(AuthError, match="expired"):
        verify(issue_token(7, secret=SECRET, ttl_s=60, now_s=1_000_000))


def test_the_verifier_remembers_at_most_size_tokens() -> None:
    verify = TokenVerifier(SECRET, size=2)
    tokens = [issue_token(u, secret=SECRET) for u in (1, 2, 3, 1)]
    assert [verify(t) for t in tokens] == [1, 2, 3, 1]
    assert len(verify) == 2
    with pytest.raises(ValueError, match="size"):
        TokenVerifier(SECRET, size=0)
