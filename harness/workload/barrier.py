"""A barrier in the database: racing writers start their statements together.

A race between check-then-insert statements shows only when the statements
overlap: each must take its snapshot before any other commits. Sending the
requests "at the same moment" over HTTP leaves the overlap to chance (the
``dedupe`` scenario once missed the seed's race one run in three), so the
harness closes a gate in front of the table instead:

1. :class:`TableGate` takes ``LOCK TABLE <table> IN EXCLUSIVE MODE`` on a
   connection of its own. Reads (``ACCESS SHARE``) go on; every statement
   that writes the table (``ROW EXCLUSIVE``) or locks its rows waits.
2. The racing requests are sent; :meth:`TableGate.wait_for_waiters` watches
   ``pg_blocking_pids`` until the expected number of the target's backends
   wait behind the gate.
3. :meth:`TableGate.open` rolls back the lock: Postgres wakes every waiter at
   once (their locks do not conflict with each other), and under Read
   Committed each takes its statement snapshot after the wait. Their
   snapshots are then microseconds apart, so any check-then-insert that runs
   longer than that (the seed's, over a batch of projects, runs for
   milliseconds) sees the same committed state as its rivals.

It needs nothing from the target but the contract's schema: any pipeline that
writes the table takes the table lock that the gate holds back.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

import asyncpg

__all__ = ["TableGate"]

#: How often the gate looks for waiting backends.
POLL_INTERVAL_S = 0.005


class TableGate:
    """Hold writers of ``table`` until :meth:`open` (async context manager).

    Leaving the ``async with`` block opens the gate if it is still closed, so
    a failing scenario never leaves the table locked.
    """

    def __init__(self, dsn: str, table: str, *, max_hold_s: float = 30.0) -> None:
        self._dsn = dsn
        self._table = table
        self._max_hold_s = max_hold_s
        self._conn: asyncpg.Connection | None = None
        self._tx: asyncpg.transaction.Transaction | None = None
        self.waiters_released = 0
        """Backends that waited behind the gate when it opened."""

    async def __aenter__(self) -> TableGate:
        self._conn = await asyncpg.connect(self._dsn, timeout=10.0)
        # The lock is held no longer than max_hold_s, whatever the caller does.
        await self._conn.execute(
            f"SET idle_in_transaction_session_timeout = {self._max_hold_s * 1000:.0f}"
        )
        self._tx = self._conn.transaction()
        await self._tx.start()
        await self._conn.execute(f'LOCK TABLE "{self._table}" IN EXCLUSIVE MODE')
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.open()
        finally:
            if self._conn is not None:
                await self._conn.close(timeout=10.0)
                self._conn = None

    async def waiting(self) -> int:
        """How many backends wait behind the gate now."""
        if self._conn is None or self._tx is None:
            return 0
        # pg_locks, not pg_stat_activity: the latter is a snapshot taken once
        # per transaction, and the gate's transaction lasts the whole wait.
        count = await self._conn.fetchval(
            "SELECT count(DISTINCT pid) FROM pg_locks"
            " WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
        return int(count)

    async def wait_for_waiters(self, count: int, *, timeout_s: float = 10.0) -> int:
        """Wait until ``count`` backends wait behind the gate, or ``timeout_s``.

        Returns how many wait (fewer than ``count`` only on a timeout)."""
        deadline = time.monotonic() + timeout_s
        waiting = await self.waiting()
        while waiting < count and time.monotonic() < deadline:
            await asyncio.sleep(POLL_INTERVAL_S)
            waiting = await self.waiting()
        return waiting

    async def open(self) -> None:
        """Release every waiter at once (idempotent)."""
        if self._tx is None:
            return
        self.waiters_released = await self.waiting()
        tx, self._tx = self._tx, None
        await tx.rollback()
