"""Endpoints format and parse DSNs and URLs without losing credentials."""

from __future__ import annotations

from harness.stack import PostgresEndpoint, RedisEndpoint


def test_postgres_dsn_round_trip_with_awkward_password() -> None:
    endpoint = PostgresEndpoint(
        host="127.0.0.1", port=5433, user="bench user", password="p@ss:/w?rd", database="alerts"
    )
    assert PostgresEndpoint.from_dsn(endpoint.dsn) == endpoint


def test_dsn_for_switches_database_only() -> None:
    endpoint = PostgresEndpoint(host="127.0.0.1", port=5433, user="postgres")
    assert endpoint.dsn == "postgresql://postgres@127.0.0.1:5433/postgres"
    assert endpoint.dsn_for("t1") == "postgresql://postgres@127.0.0.1:5433/t1"


def test_redis_url_round_trip() -> None:
    endpoint = RedisEndpoint(host="127.0.0.1", port=6380, db=3, password="s3cret")
    assert endpoint.url == "redis://:s3cret@127.0.0.1:6380/3"
    assert RedisEndpoint.from_url(endpoint.url) == endpoint
