"""Bring a target up for one scenario: its database, its schema, its processes.

:func:`prepare_database` gives the scenario a database with the contract's
tables (created by the target's own migration where it has one);
:func:`start_target` starts the target's processes on the stack, or attaches
the ``app`` proxy to a running deployment. Flaws and fault injection reach a
reference target as flags and any other as environment variables
(``docs/contract.md``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass

from harness.contract import CONTRACT_TABLES, apply_schema
from harness.errors import AlertbenchError
from harness.stack import AppSpec, Stack, _sql
from harness.targets.model import CLIENT_FLAWS, Target

__all__ = ["Injection", "TargetError", "prepare_database", "start_target"]

#: How long a target's migration may take.
MIGRATE_TIMEOUT_S = 120.0


class TargetError(AlertbenchError):
    """The target could not be prepared (its migration failed, its schema
    lacks a table of the contract...). The message says which and why."""


@dataclass(frozen=True, kw_only=True)
class Injection:
    """In-app fault injection a scenario asks of a target (``fault_injection``)."""

    #: Share of completion attempts that fail just before COMMIT.
    rollback_rate: float = 0.0
    #: Attempts per queued job, and the first retry's delay (``queue``).
    queue_attempts: int | None = None
    queue_retry_base_delay_s: float | None = None

    def args(self, seed: int) -> tuple[str, ...]:
        """As flags of ``python -m reference_impl``."""
        found: list[str] = []
        if self.rollback_rate:
            found += ["--inject-rollback-rate", str(self.rollback_rate)]
            found += ["--inject-seed", str(seed)]
        if self.queue_attempts is not None:
            found += ["--queue-attempts", str(self.queue_attempts)]
        if self.queue_retry_base_delay_s is not None:
            found += ["--queue-retry-base-delay-s", str(self.queue_retry_base_delay_s)]
        return tuple(found)

    def env(self, seed: int) -> dict[str, str]:
        """As the contract's environment variables."""
        found: dict[str, str] = {}
        if self.rollback_rate:
            found["ALERTBENCH_INJECT_ROLLBACK_RATE"] = str(self.rollback_rate)
            found["ALERTBENCH_INJECT_SEED"] = str(seed)
        if self.queue_attempts is not None:
            found["ALERTBENCH_QUEUE_ATTEMPTS"] = str(self.queue_attempts)
        if self.queue_retry_base_delay_s is not None:
            found["ALERTBENCH_QUEUE_RETRY_BASE_DELAY_S"] = str(self.queue_retry_base_delay_s)
        return found


def target_flaws(target: Target, flaws: frozenset[str]) -> list[str]:
    """The flaws the target itself switches on (the client's are the harness's)."""
    return sorted(f for f in flaws if f not in CLIENT_FLAWS and f in target.flaws)


def _migrate_command(
    target: Target, dsn: str, flaws: list[str]
) -> tuple[list[str], dict[str, str]] | None:
    if target.kind == "reference":
        argv = [sys.executable, "-m", "reference_impl", "--pg-dsn", dsn, "--migrate-only"]
        argv += ["--log-level", "WARNING"]
        for flaw in flaws:
            argv += ["--flaw", flaw]
        return argv, dict(os.environ)
    if target.command is not None and target.command.migrate is not None:
        env = {**os.environ, **target.command.env, "PG_DSN": dsn}
        if flaws:
            env["ALERTBENCH_FLAWS"] = ",".join(flaws)
        return list(target.command.migrate), env
    return None


async def _missing_tables(dsn: str) -> list[str]:
    rows = await asyncio.to_thread(
        _sql.fetch,
        dsn,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    present = {r["table_name"] for r in rows}
    return [t for t in CONTRACT_TABLES if t not in present]


async def prepare_database(
    target: Target, stack: Stack, database: str, flaws: frozenset[str]
) -> str:
    """A database for one scenario, with the contract's tables; returns its
    direct DSN (no proxy), for seeding and final reads.

    Reference and command targets get a fresh database on the stack, migrated
    by their own migration (or given the contract's tables), and an empty
    Redis; a url target's database is the one its file names, and must hold
    the tables already.
    """
    if target.url is not None:
        dsn = target.url.pg_dsn
    else:
        # The stack's Redis is the harness's too: no scenario inherits the
        # last one's cache entries, jobs or dead letters.
        await asyncio.to_thread(stack.flush_redis)
        direct = stack.postgres_direct
        await asyncio.to_thread(
            _sql.execute,
            direct.dsn,
            [f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', f'CREATE DATABASE "{database}"'],
        )
        dsn = direct.dsn_for(database)
        command = _migrate_command(target, dsn, target_flaws(target, flaws))
        if command is None:
            await apply_schema(dsn)
        else:
            await asyncio.to_thread(_run_migration, target, *command)
    missing = await _missing_tables(dsn)
    if missing:
        raise TargetError(
            f"target {target.name!r}: the database lacks the contract's table(s)"
            f" {', '.join(missing)} (docs/contract.md, 'Schema')"
        )
    return dsn


def _run_migration(target: Target, argv: list[str], env: dict[str, str]) -> None:
    cwd = target.command.cwd if target.command is not None else None
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=MIGRATE_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise TargetError(f"target {target.name!r}: migrate command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise TargetError(
            f"target {target.name!r}: migration took over {MIGRATE_TIMEOUT_S:.0f} s: {argv}"
        ) from None
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise TargetError(
            f"target {target.name!r}: migration {argv} exited {done.returncode}:\n"
            + "\n".join(tail)
        )


def start_target(
    target: Target,
    stack: Stack,
    *,
    database: str,
    flaws: frozenset[str],
    secret: str,
    processes: int = 1,
    fanout: str = "redis",
    inject: Injection | None = None,
    seed: int = 0,
    queue_workers: int = 0,
) -> list[str]:
    """Start (or attach) the target behind the ``app`` proxies; return their URLs.

    ``queue_workers``: the reference runs its queue worker in that many
    processes of their own (none in the server processes); other targets
    keep their own layout."""
    own = target_flaws(target, flaws)
    if target.url is not None:
        return [stack.attach_app(target.url.base_url)]
    if target.command is None:
        spec = AppSpec(
            flaws=frozenset(own),
            processes=processes,
            fanout=fanout,
            database=database,
            token_secret=secret,
            extra_args=inject.args(seed) if inject else (),
            worker=queue_workers == 0,
            queue_workers=queue_workers,
        )
    else:
        env: dict[str, str] = dict(target.command.env)
        if own:
            env["ALERTBENCH_FLAWS"] = ",".join(own)
        if inject is not None:
            env.update(inject.env(seed))
        spec = AppSpec(
            processes=processes if processes > 1 else target.command.processes,
            database=database,
            token_secret=secret,
            argv=target.command.argv,
            cwd=target.command.cwd,
            env=env,
            startup_timeout_s=target.command.startup_timeout_s,
        )
    stack.start_app(spec)
    return list(stack.app_urls)
