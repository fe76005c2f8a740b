"""Isolated databases cloned from a template, so tests never share rows.

The template is built once (schema, extensions) and every test database is a
``CREATE DATABASE ... TEMPLATE`` copy of it, which takes milliseconds. Names
carry the owner's pid so that several runs can share one external server.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from harness.errors import ConfigError
from harness.stack import _sql
from harness.stack.endpoints import PostgresEndpoint

__all__ = ["DatabaseFactory", "TemplateRegistry", "TemplateSetup"]

#: Applies a schema to the database at the given DSN.
TemplateSetup = Callable[[str], Awaitable[None]]

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _quote_ident(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError("database name", f"{name!r} is not a plain lower-case identifier")
    return f'"{name}"'


@dataclass
class DatabaseFactory:
    """Creates a template database and hands out clones of it.

    Administration (CREATE/DROP DATABASE) goes to ``server``; the DSNs handed
    out name ``clients`` (e.g. the proxied address) when it is given.
    """

    server: PostgresEndpoint
    clients: PostgresEndpoint | None = None
    prefix: str = field(default_factory=lambda: f"alertbench_{os.getpid()}")
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _template_ready: bool = field(default=False, repr=False)

    @property
    def template(self) -> str:
        return f"{self.prefix}_template"

    def create_template(self, setup: TemplateSetup | None = None) -> str:
        """(Re)create the template database, apply ``setup`` to it; return its DSN."""
        name = _quote_ident(self.template)
        _sql.execute(
            self.server.dsn,
            [f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"],
        )
        dsn = self.server.dsn_for(self.template)
        _sql.execute(dsn, ["CREATE EXTENSION IF NOT EXISTS pg_stat_statements"])
        # The schema is applied directly: a fault on the proxy must not
        # break the template shared by every test.
        if setup is not None:
            _sql.run_coroutine_sync(lambda: setup(dsn), timeout_s=600)
        self._template_ready = True
        return dsn

    def clone(self) -> str:
        """A fresh database copied from the template; returns its DSN."""
        if not self._template_ready:
            self.create_template()
        name = f"{self.prefix}_t{next(self._counter)}"
        _sql.execute(
            self.server.dsn,
            [f"CREATE DATABASE {_quote_ident(name)} TEMPLATE {_quote_ident(self.template)}"],
        )
        return (self.clients or self.server).dsn_for(name)

    def drop(self, dsn_or_name: str) -> None:
        """Drop a clone (its open connections are terminated)."""
        name = dsn_or_name.rsplit("/", 1)[-1]
        _sql.execute(
            self.server.dsn, [f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)"]
        )

    def drop_all(self) -> None:
        """Drop the template and every clone this factory's prefix names."""
        rows = _sql.fetch(
            self.server.dsn,
            "SELECT datname FROM pg_database WHERE datname LIKE $1",
            self.prefix.replace("_", r"\_") + r"\_%",
        )
        _sql.execute(
            self.server.dsn,
            [f"DROP DATABASE IF EXISTS {_quote_ident(r['datname'])} WITH (FORCE)" for r in rows],
        )
        self._template_ready = False


@dataclass
class TemplateRegistry:
    """One template (and factory) per schema setup, built on first use.

    Suites that need different schemas share one server without sharing a
    template: ``registry.factory(migrate)`` builds a template with
    ``migrate`` applied the first time and hands out its factory after that.
    """

    server: PostgresEndpoint
    clients: PostgresEndpoint | None = None
    _factories: dict[tuple[object, bool], DatabaseFactory] = field(default_factory=dict)

    def factory(
        self, setup: TemplateSetup | None = None, *, proxied: bool = True
    ) -> DatabaseFactory:
        """The factory whose template has ``setup`` applied.

        Its clones are reached through ``clients`` when ``proxied`` (faults
        apply), else directly (benchmarks that measure the pipeline alone).
        """
        key = (setup, proxied)
        if key not in self._factories:
            factory = DatabaseFactory(
                self.server,
                self.clients if proxied else None,
                prefix=f"alertbench_{os.getpid()}_{len(self._factories)}",
            )
            factory.create_template(setup)
            self._factories[key] = factory
        return self._factories[key]

    def drop_all(self) -> None:
        """Drop every template and clone made through this registry."""
        for factory in self._factories.values():
            factory.drop_all()
        self._factories.clear()
