"""The one place asyncpg is imported: pools, connections and query counting.

asyncpg ships without type information, so its objects are typed ``Any`` here
and the rest of the package uses the aliases below.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]

__all__ = [
    "Connection",
    "Pool",
    "PostgresError",
    "QueryCounter",
    "UniqueViolationError",
    "connect",
    "counting",
    "create_pool",
]

Connection = Any
"""An ``asyncpg.Connection`` (or a pooled proxy of one)."""
Pool = Any
"""An ``asyncpg.Pool``."""

PostgresError: type[Exception] = asyncpg.PostgresError
UniqueViolationError: type[Exception] = asyncpg.UniqueViolationError
SerializationError: type[Exception] = asyncpg.SerializationError
InterfaceError: type[Exception] = asyncpg.InterfaceError


async def connect(
    dsn: str, *, timeout_s: float = 10.0, application_name: str | None = None
) -> Connection:
    """Open one connection (``application_name`` shows in pg_stat_activity)."""
    settings = {"application_name": application_name} if application_name else None
    return await asyncpg.connect(dsn, timeout=timeout_s, server_settings=settings)


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, command_timeout_s: float = 10.0
) -> Pool:
    """Open a connection pool.

    A released connection is not sent asyncpg's default reset query (advisory
    unlock, CLOSE ALL, UNLISTEN, RESET ALL): that is one more round trip per
    request, and the app never changes session state on a pooled connection
    (LISTEN has its own connection). asyncpg still rolls back a transaction
    left open and drops listeners before any custom reset runs.
    """
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout_s,
        reset=_keep_session,
    )


async def _keep_session(conn: Connection) -> None:
    """The pool's reset: nothing beyond asyncpg's own rollback of open work."""


@dataclasses.dataclass(eq=False)
class QueryCounter:
    """Counts statements sent on a connection (client side, for /metrics).

    The benchmarks count on the server side (pg_stat_statements); this figure
    is what the app reports about itself per request.
    """

    count: int = 0

    def __call__(self, record: Any) -> None:
        self.count += 1


@contextlib.asynccontextmanager
async def counting(conn: Connection) -> AsyncIterator[QueryCounter]:
    """Count the statements executed on ``conn`` inside the block."""
    counter = QueryCounter()
    conn.add_query_logger(counter)
    try:
        yield counter
    finally:
        # A connection lost mid-request is handed back to the pool at once
        # (asyncpg): the proxy then refuses every call, and this one would
        # replace the request's own error (the lost connection) with its own.
        with contextlib.suppress(asyncpg.InterfaceError):
            conn.remove_query_logger(counter)


CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
"""The server is unreachable or refusing connections (-> 503, not 500)."""
UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    # What asyncpg raises for a query sent on a connection whose server
    # just terminated it, before the loss was processed ("cannot switch to
    # state ...; another operation is in progress").
    asyncpg.InternalClientError,
    *CONNECTION_ERRORS,
)
"""Any failure to reach the database (a cut connection, a timeout, a refusal):
HTTP answers 503 ``database unavailable``, a Socket.IO ack says so too."""
