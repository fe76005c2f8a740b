"""Benchmarks of the reference pipeline (pytest-benchmark) on the real stack."""

from __future__ import annotations

import sys
from pathlib import Path

# These test folders are named ``reference_impl`` and pytest's default
# ("prepend") import mode puts their parents on sys.path, where the folder
# would shadow the real package as an empty namespace package. Put the
# project root first so ``import reference_impl`` finds the package.
_ROOT = str(Path(__file__).resolve().parents[3])
if sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)
if getattr(sys.modules.get("reference_impl"), "__file__", "") is None:
    del sys.modules["reference_impl"]


import asyncio  # noqa: E402 - after the sys.path fix above
import os  # noqa: E402
from collections.abc import Awaitable, Callable, Iterator  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import pytest  # noqa: E402

from harness.stack import DatabaseFactory, Stack  # noqa: E402
from reference_impl import migrate_dsn  # noqa: E402

T = TypeVar("T")


@pytest.fixture(scope="session")
def ri_bench_databases(alertbench_stack: Stack) -> Iterator[DatabaseFactory]:
    """Databases cloned from a template with the reference schema (own factory:
    the plugin's template is shared by the whole session and must stay empty)."""
    factory = DatabaseFactory(alertbench_stack.postgres, prefix=f"alertbench_{os.getpid()}_rib")
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
