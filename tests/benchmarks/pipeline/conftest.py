"""Benchmarks of the reference pipeline (pytest-benchmark) on the real stack."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from harness.stack import DatabaseFactory, Stack
from reference_impl import migrate_dsn

T = TypeVar("T")


@pytest.fixture(scope="session")
def ri_bench_databases(alertbench_stack: Stack) -> Iterator[DatabaseFactory]:
    """Databases cloned from a template with the reference schema (own factory:
    the plugin's template is shared by the whole session and must stay empty)."""
    # Direct, not through the proxy: these figures are the pipeline's own.
    factory = DatabaseFactory(
        alertbench_stack.postgres_direct, prefix=f"alertbench_{os.getpid()}_rib"
    )
    factory.create_template(migrate_dsn)
    yield factory
    factory.drop_all()


@pytest.fixture
def pg_dsn(ri_bench_databases: DatabaseFactory) -> Iterator[str]:
    """A fresh database with the reference schema, dropped after the benchmark."""
    dsn = ri_bench_databases.clone()
    yield dsn
    ri_bench_databases.drop(dsn)


@pytest.fixture
def run() -> Iterator[Callable[[Awaitable[T]], T]]:
    """Run a coroutine on a private event loop (pytest-benchmark times sync calls)."""
    loop = asyncio.new_event_loop()

    def run_(coro: Awaitable[Any]) -> Any:
        return loop.run_until_complete(coro)

    yield run_
    loop.close()
