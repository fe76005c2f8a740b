"""Run a few SQL statements from synchronous code.

The stack is started from synchronous code (CLI, pytest fixtures) which may or
may not sit inside a running event loop; running asyncpg on a fresh loop in a
worker thread works in both cases.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

__all__ = ["HARNESS_CONNECTION", "execute", "fetch", "run_coroutine_sync"]

T = TypeVar("T")

#: Connection settings of the harness's own direct connections: their
#: ``application_name`` tells them apart from the target's (a fault that
#: terminates the target's backends spares them).
HARNESS_CONNECTION: dict[str, str] = {"application_name": "alertbench-harness"}


def run_coroutine_sync(factory: Callable[[], Awaitable[T]], *, timeout_s: float = 60.0) -> T:
    """Run ``factory()`` to completion on a new event loop in a worker thread."""

    async def main() -> T:
        return await factory()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="alertbench-sql") as pool:
        return pool.submit(asyncio.run, main()).result(timeout=timeout_s)


def execute(dsn: str, statements: Sequence[str], *, timeout_s: float = 30.0) -> None:
    """Execute each statement, outside any transaction, on one connection."""

    async def run() -> None:
        conn = await asyncpg.connect(dsn, timeout=timeout_s, server_settings=HARNESS_CONNECTION)
        try:
            for statement in statements:
                await conn.execute(statement, timeout=timeout_s)
        finally:
            await conn.close(timeout=timeout_s)

    run_coroutine_sync(run, timeout_s=timeout_s * (len(statements) + 2))


def fetch(dsn: str, query: str, *args: Any, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Rows of one query, as dictionaries."""

    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dsn, timeout=timeout_s, server_settings=HARNESS_CONNECTION)
        try:
            return [dict(r) for r in await conn.fetch(query, *args, timeout=timeout_s)]
        finally:
            await conn.close(timeout=timeout_s)

    return run_coroutine_sync(run, timeout_s=timeout_s * 3)
