"""Flaw names and AppConfig validation: bad input gets one clear error naming it."""

from __future__ import annotations

import pytest

from reference_impl import AppConfig, ConfigError, Flaw, FlawError, parse_flaws

PG = "postgresql://postgres@127.0.0.1:5432/db"
REDIS = "redis://127.0.0.1:6379/0"


def test_flaw_names_are_normalised() -> None:
    assert parse_flaws(["N-Plus-One", "no_retry", Flaw.STALE_CACHE]) == {
        Flaw.N_PLUS_ONE,
        Flaw.NO_RETRY,
        Flaw.STALE_CACHE,
    }


def test_an_unknown_flaw_lists_the_valid_ones() -> None:
    with pytest.raises(FlawError, match="unknown flaw 'n_plus_two'") as info:
        parse_flaws(["n_plus_two"])
    for flaw in Flaw:
        assert flaw.value in str(info.value)


def test_the_seed_flaws_of_this_issue_exist() -> None:
    assert {f.value for f in Flaw} >= {
        "n_plus_one",
        "no_unique_index",
        "unscoped_complete",
        "non_atomic_completion",
        "no_retry",
        "stale_cache",
        "emit_before_commit",
    }


def test_config_defaults_are_valid_and_local() -> None:
    config = AppConfig(pg_dsn=PG, redis_url=REDIS)
    assert config.host == "127.0.0.1"
    assert config.flaws == frozenset()
    assert config.queue_attempts == 3


def test_config_accepts_flaw_names_and_with_flaws_replaces_them() -> None:
    config = AppConfig(pg_dsn=PG, redis_url=REDIS, flaws=frozenset({Flaw.NO_RETRY}))
    assert config.has(Flaw.NO_RETRY)
    other = config.with_flaws(["stale_cache"])
    assert other.flaws == {Flaw.STALE_CACHE}
    assert config.flaws == {Flaw.NO_RETRY}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pg_dsn": "mysql://x"}, "pg_dsn"),
        ({"pg_dsn": ""}, "pg_dsn"),
        ({"redis_url": "http://127.0.0.1"}, "redis_url"),
        ({"port": 70000}, "port"),
        ({"host": ""}, "host"),
        ({"token_secret": "short"}, "token_secret"),
        ({"cache_ttl_s": 0}, "cache_ttl_s"),
        ({"queue_attempts": True}, "queue_attempts"),
        ({"redis_timeout_s": -1.0}, "redis_timeout_s"),
        ({"queue_retry_base_delay_s": -0.5}, "queue_retry_base_delay_s"),
        ({"pg_pool_min_size": 5, "pg_pool_max_size": 2}, "pg_pool_min_size"),
        ({"queue_name": "a:b"}, "queue_name"),
    ],
)
def test_invalid_config_names_the_field(changes: dict[str, object], field: str) -> None:
    kwargs: dict[str, object] = {"pg_dsn": PG, "redis_url": REDIS, **changes}
    with pytest.raises(ConfigError, match=f"^{field}:"):
        AppConfig(**kwargs)  # type: ignore[arg-type]


def test_an_unknown_flaw_in_config_is_rejected() -> None:
    with pytest.raises(FlawError):
        AppConfig(pg_dsn=PG, redis_url=REDIS, flaws=frozenset({"bogus"}))  # type: ignore[arg-type]
