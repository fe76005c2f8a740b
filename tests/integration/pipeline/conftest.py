"""Fixtures for the reference pipeline on the real stack (Postgres + Redis).

Every test gets its own database cloned from a template that already carries
the schema (``alertbench_databases``), and an empty Redis.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from ri_support import Api, Live, StartApi, StartLive, serve_in_process

from harness.contract.seed import SeedResult, SeedSpec, seed
from harness.stack import DatabaseFactory, TemplateRegistry
from reference_impl import AppConfig, create_app, create_asgi_app, migrate_dsn
from reference_impl.alerts import AlertEmitter
from reference_impl.completion import CompletionHooks
from reference_impl.db import Connection, connect


@pytest.fixture(scope="session")
def alertbench_databases(alertbench_templates: TemplateRegistry) -> DatabaseFactory:
    """Test databases cloned from a template that carries the reference schema."""
    return alertbench_templates.factory(migrate_dsn)


@pytest.fixture
def config(pg_dsn: str, redis_url: str) -> AppConfig:
    """Fast settings: millisecond retry backoff, short heartbeat, no worker by default.

    No relay either: its health queries would show in the statement counts
    that several tests assert; the real-time tests switch it on.
    """
    return AppConfig(
        pg_dsn=pg_dsn,
        redis_url=redis_url,
        queue_retry_base_delay_s=0.01,
        queue_heartbeat_s=1,
        queue_sweep_interval_s=0.2,
        queue_schedule_interval_s=0.01,
        run_worker=False,
        run_relay=False,
        pg_pool_max_size=30,
    )


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[Connection]:
    """A direct connection to the test database (for setup and checks)."""
    connection = await connect(pg_dsn)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def seeded(conn: Connection) -> SeedResult:
    """Five projects on the default template (18 line items, one inactive)."""
    return await seed(conn, SeedSpec(projects=5, seed=11))


@pytest.fixture
async def start_api(config: AppConfig) -> AsyncIterator[StartApi]:
    """``await start_api(flaws=..., hooks=..., **config_changes)`` -> a started Api.

    Every app started here is shut down (lifespan exit) after the test.
    """
    stack = contextlib.AsyncExitStack()

    async def start(
        *, hooks: CompletionHooks | None = None, emitter: AlertEmitter | None = None, **changes: Any
    ) -> Api:
        app_config = dataclasses.replace(config, **changes)
        app = create_app(app_config, hooks=hooks, emitter=emitter)
        await stack.enter_async_context(app.lifespan())
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ri.test")
        )
        return Api(app=app, http=http, config=app_config)

    async with stack:
        yield start


@pytest.fixture
async def api(start_api: StartApi) -> Api:
    """The reference app with no flaw and no worker."""
    return await start_api()


@pytest.fixture
def server_statements(conn: Connection) -> Callable[[], Awaitable[int]]:
    """Statements executed in this database since the last reset (pg_stat_statements).

    Call ``await conn.execute("SELECT pg_stat_statements_reset()")`` first.
    The reset and the count itself are left out.
    """

    async def count() -> int:
        value: int = await conn.fetchval(
            "SELECT coalesce(sum(calls), 0)::int FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND query NOT ILIKE '%pg_stat_statements%'"
        )
        return value

    return count


@pytest.fixture
async def start_live(config: AppConfig) -> AsyncIterator[StartLive]:
    async with contextlib.AsyncExitStack() as exit_stack:

        async def start(*, hooks: CompletionHooks | None = None, **changes: Any) -> Live:
            app_config = dataclasses.replace(config, run_relay=True, **changes)
            asgi = create_asgi_app(app_config, hooks=hooks)
            port = await exit_stack.enter_async_context(serve_in_process(asgi))
            url = f"http://127.0.0.1:{port}"
            http = await exit_stack.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=10.0)
            )
            return Live(url, asgi.other_asgi_app, app_config, http, exit_stack)

        yield start
