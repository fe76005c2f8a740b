"""Benchmarks of the reference pipeline (pytest-benchmark) on the real stack."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from harness.stack import DatabaseFactory, TemplateRegistry
from reference_impl import migrate_dsn

T = TypeVar("T")


@pytest.fixture(scope="session")
def alertbench_databases(alertbench_templates: TemplateRegistry) -> DatabaseFactory:
    """Databases with the reference schema, reached directly (not through the
    proxy): these figures are the pipeline's own."""
    return alertbench_templates.factory(migrate_dsn, proxied=False)


@pytest.fixture
def run() -> Iterator[Callable[[Awaitable[T]], T]]:
    """Run a coroutine on a private event loop (pytest-benchmark times sync calls)."""
    loop = asyncio.new_event_loop()

    def run_(coro: Awaitable[Any]) -> Any:
        return loop.run_until_complete(coro)

    yield run_
    loop.close()
