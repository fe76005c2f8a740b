"""The reference's database helpers under a lost connection."""

from __future__ import annotations

import pytest

from reference_impl import db


async def test_a_lost_connection_s_own_error_is_not_masked_by_the_query_counter(
    pg_dsn: str, conn: db.Connection
) -> None:
    """asyncpg hands a connection lost mid-request back to its pool at once;
    the query counter's cleanup then met a detached proxy and raised
    "connection has been released back to the pool" in place of the real
    error (seen in chaos: every such request looked like a pool misuse)."""
    pool = await db.create_pool(pg_dsn, min_size=1, max_size=1)
    try:
        with pytest.raises(db.UNAVAILABLE) as raised:
            async with pool.acquire() as pooled, db.counting(pooled):
                pid = await pooled.fetchval("SELECT pg_backend_pid()")
                await conn.execute("SELECT pg_terminate_backend($1)", pid)
                await pooled.fetchval("SELECT 1")
        # The lost connection's own error (whichever asyncpg raises first:
        # the shutdown, or its protocol's "another operation is in
        # progress"), which the app answers 503 "database unavailable".
        assert "released back to the pool" not in str(raised.value)
        # The pool is usable again.
        async with pool.acquire() as pooled:
            assert await pooled.fetchval("SELECT 1") == 1
    finally:
        await pool.close()
