"""A barrier in the database: no racing writer commits before every one has checked.

A race between check-then-insert statements shows only when each takes its
snapshot before any other commits. Sending the requests "at the same moment"
over HTTP leaves that to chance (the ``dedupe`` scenario once missed the
seed's race one run in three), and so does releasing them together from a
table lock: on a busy machine the first one woken can run and commit before
the others are scheduled. :class:`CommitGate` holds the commits instead:

1. On a connection of its own it takes ``FOR UPDATE`` row locks on the parent
   rows the racers will reference (the scenario's ``projects``).
2. Every statement that inserts a row referencing one of them (an alert, by
   the contract's foreign key ``workflow_alerts.project_id -> projects``)
   runs its checks and inserts on its own snapshot, then waits in the
   foreign-key check at the end of the statement (``FOR KEY SHARE`` of the
   parent row), uncommitted. A racer that conflicts with one of them on a
   unique index waits for that one instead: blocked either way.
3. :meth:`CommitGate.wait_for_blocked` watches ``pg_locks`` until the expected
   number of the target's backends are blocked; then :meth:`CommitGate.open`
   releases them. By then every racer has taken its snapshot and none has
   committed: the overlap is certain, whatever the machine's speed.

It needs nothing from the target but the contract's schema and its foreign
keys, and it works the same on any driver or language.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from types import TracebackType

import asyncpg

from harness.stack._sql import HARNESS_CONNECTION

__all__ = ["CommitGate"]

logger = logging.getLogger(__name__)

#: How often the gate looks for blocked backends.
POLL_INTERVAL_S = 0.005

_BLOCKED_SQL = """
SELECT count(DISTINCT l.pid) FROM pg_locks l
WHERE NOT l.granted AND l.pid <> pg_backend_pid()
  AND l.pid IN (
    SELECT pid FROM pg_locks
    WHERE database = (SELECT oid FROM pg_database WHERE datname = current_database())
  )
"""


class CommitGate:
    """Hold back writers that reference ``ids`` of ``table`` (async context manager).

    Leaving the ``async with`` block opens the gate if it is still closed, so
    a failing scenario never leaves the rows locked. ``pg_locks`` is read
    live (unlike ``pg_stat_activity``, which a transaction sees as a
    snapshot), so the gate's own transaction can watch the others wait.
    """

    def __init__(
        self, dsn: str, table: str, ids: Sequence[int], *, max_hold_s: float = 60.0
    ) -> None:
        self._dsn = dsn
        self._table = table
        self._ids = list(ids)
        self._max_hold_s = max_hold_s
        self._conn: asyncpg.Connection | None = None
        self._tx: asyncpg.transaction.Transaction | None = None
        self.released = 0
        """Backends that were blocked when the gate opened."""

    async def __aenter__(self) -> CommitGate:
        self._conn = await asyncpg.connect(
            self._dsn, timeout=10.0, server_settings=HARNESS_CONNECTION
        )
        # The locks go with the session if the harness ever stalls this long.
        await self._conn.execute(
            f"SET idle_in_transaction_session_timeout = {self._max_hold_s * 1000:.0f}"
        )
        self._tx = self._conn.transaction()
        await self._tx.start()
        await self._conn.execute(
            f'SELECT 1 FROM "{self._table}" WHERE id = ANY($1::bigint[]) FOR UPDATE', self._ids
        )
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

    async def pid(self) -> int:
        """The process id of the gate's own backend (to leave it alone)."""
        if self._conn is None:
            raise RuntimeError("the gate is not closed")
        return int(await self._conn.fetchval("SELECT pg_backend_pid()"))

    async def blocked(self) -> int:
        """How many other backends of this database wait for a lock now."""
        if self._conn is None or self._tx is None:
            return 0
        return int(await self._conn.fetchval(_BLOCKED_SQL))

    async def wait_for_blocked(
        self, count: int, *, timeout_s: float = 10.0, finished: Callable[[], int] = lambda: 0
    ) -> int:
        """Wait until ``count`` racers are accounted for, or ``timeout_s``: held
        at the gate, or ``finished()`` (racers that had nothing to write, and
        so never reached it). Returns how many are held."""
        deadline = time.monotonic() + timeout_s
        blocked = await self.blocked()
        while blocked + finished() < count and time.monotonic() < deadline:
            await asyncio.sleep(POLL_INTERVAL_S)
            blocked = await self.blocked()
        if blocked + finished() < count:
            logger.warning(
                "commit gate: %d of %d writers held after %.1f s; backends: %s",
                blocked,
                count,
                timeout_s,
                await self.backends(),
            )
        return blocked

    async def backends(self) -> list[dict[str, object]]:
        """What the other backends of this database are doing (for diagnostics)."""
        if self._conn is None:
            return []
        await self._conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = await self._conn.fetch(
            "SELECT pid, state, wait_event_type, wait_event, left(query, 60) AS query"
            " FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return [dict(r) for r in rows]

    async def open(self) -> None:
        """Release every blocked writer (idempotent)."""
        if self._tx is None:
            return
        self.released = await self.blocked()
        tx, self._tx = self._tx, None
        await tx.rollback()
