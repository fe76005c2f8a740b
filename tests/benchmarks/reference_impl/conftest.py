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
from collections.abc import Awaitable, Callable, Iterator  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import pytest  # noqa: E402

from reference_impl import migrate_dsn  # noqa: E402

T = TypeVar("T")


@pytest.fixture(scope="session")
def pg_template_setup() -> Callable[[str], Awaitable[None]]:
    """The reference schema, applied once to the template database."""
    return migrate_dsn


@pytest.fixture
def run() -> Iterator[Callable[[Awaitable[T]], T]]:
    """Run a coroutine on a private event loop (pytest-benchmark times sync calls)."""
    loop = asyncio.new_event_loop()

    def run_(coro: Awaitable[Any]) -> Any:
        return loop.run_until_complete(coro)

    yield run_
    loop.close()
