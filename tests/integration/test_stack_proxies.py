"""Every hop of the stack goes through a named Toxiproxy proxy that faults can cut."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import redis.asyncio as aioredis

from harness.faults import ToxiproxyClient, down, latency
from harness.stack import Stack


async def test_the_stack_names_a_proxy_per_service(alertbench_stack: Stack) -> None:
    assert set(alertbench_stack.proxies) >= {"postgres", "redis"}
    assert alertbench_stack.postgres.port == alertbench_stack.proxies["postgres"]
    assert alertbench_stack.redis.port == alertbench_stack.proxies["redis"]
    name = alertbench_stack.toxiproxy.proxy_name
    async with ToxiproxyClient(alertbench_stack.toxiproxy.url) as client:
        proxies = await client.proxies()
    assert proxies[name("postgres")].upstream.endswith(f":{alertbench_stack.postgres_direct.port}")
    assert proxies[name("redis")].upstream.endswith(f":{alertbench_stack.redis_direct.port}")


async def test_a_fault_on_the_postgres_proxy_cuts_the_stack_dsn_only(
    alertbench_stack: Stack,
) -> None:
    async with ToxiproxyClient(alertbench_stack.toxiproxy.url) as client:
        async with down(client, alertbench_stack.toxiproxy.proxy_name("postgres")):
            with pytest.raises((OSError, asyncpg.PostgresError, TimeoutError)):
                await asyncpg.connect(alertbench_stack.postgres.dsn, timeout=2)
            # The direct address, used for set-up and final reads, still works.
            conn = await asyncpg.connect(alertbench_stack.postgres_direct.dsn, timeout=5)
            await conn.close()
        # Healed: the proxied DSN works again.
        conn = await asyncpg.connect(alertbench_stack.postgres.dsn, timeout=5)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()


async def test_latency_on_the_redis_proxy_delays_redis_commands(alertbench_stack: Stack) -> None:
    client = aioredis.Redis.from_url(alertbench_stack.redis.url)
    try:
        async with (
            ToxiproxyClient(alertbench_stack.toxiproxy.url) as toxiproxy,
            latency(toxiproxy, alertbench_stack.toxiproxy.proxy_name("redis"), ms=150),
        ):
            loop_time = asyncio.get_running_loop().time
            started = loop_time()
            assert await client.ping()
            # A lower bound only: the proxy must have added its delay.
            assert loop_time() - started >= 0.150
    finally:
        await client.aclose()
