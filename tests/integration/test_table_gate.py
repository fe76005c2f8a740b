"""TableGate: racing writers start their statements together, on real Postgres."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from harness.workload.barrier import TableGate

# The seed's check-then-insert: safe alone, racy when two run at once. The
# pg_sleep stands for a real statement's work (the seed's runs over hundreds of
# projects): the gate starts the racers within microseconds of each other, and
# each must still be running when the others take their snapshots.
CHECK_THEN_INSERT = (
    "INSERT INTO alerts (k) SELECT 1 WHERE pg_sleep(0.2) IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM alerts WHERE k = 1)"
)


async def _table(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE alerts (id serial PRIMARY KEY, k int NOT NULL)")
    finally:
        await conn.close()


async def test_the_gate_forces_every_check_then_insert_to_race(pg_dsn: str) -> None:
    await _table(pg_dsn)
    writers = [await asyncpg.connect(pg_dsn) for _ in range(4)]
    try:
        async with TableGate(pg_dsn, "alerts") as gate:
            tasks = [asyncio.create_task(w.execute(CHECK_THEN_INSERT)) for w in writers]
            assert await gate.wait_for_waiters(4, timeout_s=10.0) == 4
            # Reads go on while writers wait.
            reader = await asyncpg.connect(pg_dsn)
            assert await reader.fetchval("SELECT count(*) FROM alerts") == 0
            await reader.close()
            await gate.open()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=10.0)
        assert gate.waiters_released == 4
        # Each writer checked before any other committed: four rows, not one.
        assert await writers[0].fetchval("SELECT count(*) FROM alerts WHERE k = 1") == 4
    finally:
        for w in writers:
            await w.close()


async def test_an_error_inside_the_block_still_opens_the_gate(pg_dsn: str) -> None:
    await _table(pg_dsn)
    writer = await asyncpg.connect(pg_dsn)
    try:
        task = None
        with pytest.raises(RuntimeError, match="scenario failed"):
            async with TableGate(pg_dsn, "alerts") as gate:
                task = asyncio.create_task(writer.execute(CHECK_THEN_INSERT))
                assert await gate.wait_for_waiters(1, timeout_s=10.0) == 1
                raise RuntimeError("scenario failed")
        assert task is not None
        await asyncio.wait_for(task, timeout=10.0)
        assert await writer.fetchval("SELECT count(*) FROM alerts") == 1
    finally:
        await writer.close()


async def test_waiting_for_writers_that_never_come_ends_at_the_timeout(pg_dsn: str) -> None:
    await _table(pg_dsn)
    async with TableGate(pg_dsn, "alerts") as gate:
        assert await gate.wait_for_waiters(2, timeout_s=0.2) == 0
    assert gate.waiters_released == 0
