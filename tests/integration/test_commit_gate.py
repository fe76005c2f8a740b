"""CommitGate: no racing writer commits before every one has checked, on real Postgres."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from harness.workload.barrier import CommitGate

# The seed's check-then-insert: safe alone, racy when two run at once.
CHECK_THEN_INSERT = (
    "INSERT INTO alerts (project_id, step) SELECT 1, 1"
    " WHERE NOT EXISTS (SELECT 1 FROM alerts WHERE project_id = 1 AND step = 1)"
)
# The sound version: a partial unique index decides.
ON_CONFLICT = "INSERT INTO alerts (project_id, step) VALUES (1, 1) ON CONFLICT DO NOTHING"


async def _schema(dsn: str, *, unique: bool) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE projects (id bigint PRIMARY KEY);"
            " INSERT INTO projects VALUES (1), (2);"
            " CREATE TABLE alerts (id serial PRIMARY KEY,"
            " project_id bigint NOT NULL REFERENCES projects (id), step int NOT NULL)"
        )
        if unique:
            await conn.execute("CREATE UNIQUE INDEX one_per_step ON alerts (project_id, step)")
    finally:
        await conn.close()


async def _race(dsn: str, statement: str, writers: int) -> tuple[int, int]:
    """(writers held at the gate when it opened, rows in the end)."""
    conns = [await asyncpg.connect(dsn) for _ in range(writers)]
    reader = await asyncpg.connect(dsn)
    try:
        async with CommitGate(dsn, "projects", [1]) as gate:
            tasks = [asyncio.create_task(c.execute(statement)) for c in conns]
            assert await gate.wait_for_blocked(writers, timeout_s=10.0) == writers
            # Reads go on, and see nothing yet: no writer could commit.
            assert await reader.fetchval("SELECT count(*) FROM alerts") == 0
            await gate.open()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=10.0)
        return gate.released, int(await reader.fetchval("SELECT count(*) FROM alerts"))
    finally:
        for c in [*conns, reader]:
            await c.close()


async def test_every_check_then_insert_checks_before_any_commits(pg_dsn: str) -> None:
    await _schema(pg_dsn, unique=False)
    # Held in the foreign-key check, uncommitted: each saw no row, each inserted.
    assert await _race(pg_dsn, CHECK_THEN_INSERT, 4) == (4, 4)


async def test_a_unique_index_still_wins_the_race(pg_dsn: str) -> None:
    await _schema(pg_dsn, unique=True)
    # One writer held by the gate, three waiting on it: four blocked, one row.
    assert await _race(pg_dsn, ON_CONFLICT, 4) == (4, 1)


async def test_an_error_inside_the_block_still_opens_the_gate(pg_dsn: str) -> None:
    await _schema(pg_dsn, unique=False)
    writer = await asyncpg.connect(pg_dsn)
    try:
        task = None
        with pytest.raises(RuntimeError, match="scenario failed"):
            async with CommitGate(pg_dsn, "projects", [1]) as gate:
                task = asyncio.create_task(writer.execute(CHECK_THEN_INSERT))
                assert await gate.wait_for_blocked(1, timeout_s=10.0) == 1
                raise RuntimeError("scenario failed")
        assert task is not None
        await asyncio.wait_for(task, timeout=10.0)
        assert await writer.fetchval("SELECT count(*) FROM alerts") == 1
    finally:
        await writer.close()


async def test_waiting_for_writers_that_never_come_ends_at_the_timeout(pg_dsn: str) -> None:
    await _schema(pg_dsn, unique=False)
    async with CommitGate(pg_dsn, "projects", [1]) as gate:
        assert await gate.wait_for_blocked(2, timeout_s=0.2) == 0
    assert gate.released == 0
