"""Stack configuration: every bad value is rejected with an error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.stack import StackConfig


def test_defaults_choose_automatically() -> None:
    config = StackConfig.from_env({})
    assert config.provider is None
    assert config.pg_dsn is None
    assert config.redis_url is None
    assert config.startup_timeout_s == 30.0


def test_environment_is_read() -> None:
    config = StackConfig.from_env(
        {
            "ALERTBENCH_STACK": "external",
            "ALERTBENCH_PG_DSN": "postgresql://u:p@127.0.0.1:5433/db",
            "ALERTBENCH_REDIS_URL": "redis://127.0.0.1:6380/2",
            "ALERTBENCH_STARTUP_TIMEOUT_S": "12.5",
        }
    )
    assert config.provider == "external"
    assert config.pg_dsn == "postgresql://u:p@127.0.0.1:5433/db"
    assert config.redis_url == "redis://127.0.0.1:6380/2"
    assert config.startup_timeout_s == 12.5


def test_flags_win_over_environment() -> None:
    config = StackConfig.from_env({"ALERTBENCH_STACK": "docker"}, provider="embedded")
    assert config.provider == "embedded"


def test_empty_environment_values_count_as_unset() -> None:
    config = StackConfig.from_env({"ALERTBENCH_STACK": " ", "ALERTBENCH_PG_DSN": ""})
    assert config.provider is None
    assert config.pg_dsn is None


@pytest.mark.parametrize(
    ("env", "kwargs", "setting", "fragment"),
    [
        ({"ALERTBENCH_STACK": "podman"}, {}, "ALERTBENCH_STACK", "'podman' is not a provider"),
        ({}, {"provider": "podman"}, "--stack", "choose one of external, docker, embedded"),
        ({"ALERTBENCH_PG_DSN": "mysql://h/db"}, {}, "ALERTBENCH_PG_DSN", "postgres://"),
        ({"ALERTBENCH_PG_DSN": "postgresql:///db"}, {}, "ALERTBENCH_PG_DSN", "names no host"),
        ({"ALERTBENCH_PG_DSN": "postgresql://h:99999/db"}, {}, "ALERTBENCH_PG_DSN", "not a valid"),
        ({"ALERTBENCH_REDIS_URL": "http://h:1"}, {}, "ALERTBENCH_REDIS_URL", "redis://"),
        ({"ALERTBENCH_STARTUP_TIMEOUT_S": "soon"}, {}, "ALERTBENCH_STARTUP_TIMEOUT_S", "number"),
        ({"ALERTBENCH_STARTUP_TIMEOUT_S": "-1"}, {}, "ALERTBENCH_STARTUP_TIMEOUT_S", "positive"),
        ({"ALERTBENCH_STARTUP_TIMEOUT_S": "nan"}, {}, "ALERTBENCH_STARTUP_TIMEOUT_S", "positive"),
        ({"ALERTBENCH_TMPDIR": "/no/such/dir"}, {}, "ALERTBENCH_TMPDIR", "not an existing"),
        (
            {"ALERTBENCH_STACK": "external", "ALERTBENCH_PG_DSN": "postgresql://h/db"},
            {},
            "ALERTBENCH_STACK",
            "needs ALERTBENCH_REDIS_URL",
        ),
    ],
)
def test_bad_values_name_the_setting(
    env: dict[str, str], kwargs: dict[str, str], setting: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        StackConfig.from_env(env, **kwargs)  # type: ignore[arg-type]
    assert caught.value.setting == setting
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"{setting}: ")


def test_direct_construction_validates_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="startup_timeout_s: must be a positive"):
        StackConfig(startup_timeout_s=0, tmp_root=tmp_path)
    with pytest.raises(ConfigError, match="provider: 'k8s' is not a provider"):
        StackConfig(provider="k8s")  # type: ignore[arg-type]
