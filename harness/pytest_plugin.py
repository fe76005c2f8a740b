"""pytest plugin: the stack as fixtures, isolated databases, markers.

Loaded automatically (entry point ``pytest11``) wherever alertbench is
installed. The stack starts lazily, the first time a test asks for it, once
per session; unit tests that use no fixture below never start anything.

Fixtures
--------
``alertbench_stack`` (session)
    The running :class:`harness.stack.Stack` (``.postgres``, ``.redis``).
``pg_template_setup`` (session)
    Override it to return an ``async (dsn) -> None`` that applies your schema
    to the template database; every ``pg_dsn`` is a clone of it.
``alertbench_templates`` (session)
    A :class:`harness.stack.TemplateRegistry`: one template per schema setup.
``alertbench_databases`` (session)
    The :class:`harness.stack.DatabaseFactory` behind ``pg_dsn``; override it
    in a folder's conftest to give that folder another schema.
``pg_dsn`` (function)
    DSN (through the ``postgres`` proxy) of a fresh database cloned from the
    template and dropped afterwards, so a test never sees another test's rows.
``redis_url`` (function)
    URL (through the ``redis`` proxy) of the stack's Redis, flushed before
    the test.
``toxiproxy_url`` (session)
    The stack's Toxiproxy API, for fault packages.

Markers: ``integration`` (needs real services), ``scenario`` (a scenario
run), ``slow``. Options: ``--stack PROVIDER``.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from harness.errors import AlertbenchError
from harness.stack import (
    PROVIDERS,
    DatabaseFactory,
    Stack,
    StackConfig,
    TemplateRegistry,
    start_stack,
)
from harness.stack.databases import TemplateSetup

MARKERS = {
    "integration": "needs real services (Postgres, Redis, proxies) on 127.0.0.1",
    "scenario": "runs an alertbench scenario end to end",
    "slow": "takes more than a few seconds",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("alertbench")
    group.addoption(
        "--stack",
        choices=PROVIDERS,
        default=None,
        help="force the alertbench stack provider (default: external, docker, embedded)",
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    # pytest tears fixtures down on KeyboardInterrupt, not on SIGTERM's
    # default action; this turns a CI job's SIGTERM into an orderly stop.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)


@pytest.fixture(scope="session")
def alertbench_stack_config(pytestconfig: pytest.Config) -> StackConfig:
    """The stack's configuration: ``--stack`` plus the ``ALERTBENCH_*`` environment."""
    return StackConfig.from_env(provider=pytestconfig.getoption("--stack"))


@pytest.fixture(scope="session")
def alertbench_stack(alertbench_stack_config: StackConfig) -> Iterator[Stack]:
    """Postgres and Redis for the whole session, stopped at its end."""
    try:
        stack = start_stack(alertbench_stack_config)
    except AlertbenchError as exc:
        pytest.fail(f"alertbench stack could not start: {exc}", pytrace=False)
    with stack:
        yield stack


@pytest.fixture(scope="session")
def pg_template_setup() -> TemplateSetup | None:
    """Override to apply a schema to the template database."""
    return None


@pytest.fixture(scope="session")
def alertbench_templates(alertbench_stack: Stack) -> Iterator[TemplateRegistry]:
    """Template databases by schema setup; all dropped at the end of the session."""
    registry = TemplateRegistry(alertbench_stack.postgres_direct, alertbench_stack.postgres)
    yield registry
    registry.drop_all()


@pytest.fixture(scope="session")
def alertbench_databases(
    alertbench_templates: TemplateRegistry, pg_template_setup: TemplateSetup | None
) -> DatabaseFactory:
    """The factory behind ``pg_dsn``. Override it in a folder's conftest to give
    that folder's tests another schema, e.g.
    ``return alertbench_templates.factory(my_migrate)``."""
    return alertbench_templates.factory(pg_template_setup)


@pytest.fixture
def pg_dsn(alertbench_databases: DatabaseFactory) -> Iterator[str]:
    """A fresh database, cloned from the template, dropped after the test."""
    dsn = alertbench_databases.clone()
    yield dsn
    alertbench_databases.drop(dsn)


@pytest.fixture(scope="session")
def toxiproxy_url(alertbench_stack: Stack) -> str:
    """The Toxiproxy API in front of the stack's services."""
    if alertbench_stack.toxiproxy is None:
        pytest.fail("the alertbench stack runs without Toxiproxy (proxy=False)", pytrace=False)
    return alertbench_stack.toxiproxy.url


@pytest.fixture
def redis_url(alertbench_stack: Stack) -> str:
    """The stack's Redis (through its proxy), empty at the start of the test."""
    alertbench_stack.flush_redis()
    return alertbench_stack.redis.url
