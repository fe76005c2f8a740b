"""Choosing the event loop of a process (reference_impl.loop)."""

from __future__ import annotations

import asyncio

import pytest

from reference_impl import loop as event_loop
from reference_impl.config import AppConfig, ConfigError

DSN = "postgresql://postgres@127.0.0.1:5432/alertbench"
REDIS = "redis://127.0.0.1:6379/0"


async def _loop_class() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_runs_on_the_standard_loop() -> None:
    assert event_loop.run(_loop_class(), loop="asyncio").startswith("asyncio")


def test_auto_runs_on_uvloop_when_it_is_installed() -> None:
    expected = "uvloop" if event_loop.uvloop_available() else "asyncio"
    assert event_loop.run(_loop_class(), loop="auto").startswith(expected)


def test_an_unknown_loop_is_refused_with_the_choices() -> None:
    coro = _loop_class()
    with pytest.raises(event_loop.LoopError, match=r"loop: must be one of auto, uvloop, asyncio"):
        event_loop.run(coro, loop="trio")
    coro.close()


def test_uvloop_asked_for_but_missing_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_loop, "uvloop_available", lambda: False)
    with pytest.raises(event_loop.LoopError, match="pip install uvloop"):
        event_loop.check("uvloop")
    assert event_loop.check("auto") == "auto"


def test_the_app_config_refuses_a_bad_loop() -> None:
    with pytest.raises(ConfigError, match="loop: must be one of"):
        AppConfig(pg_dsn=DSN, redis_url=REDIS, loop="gevent")
