"""Per-test databases are clones of the template and never share rows."""

from __future__ import annotations

import asyncpg

from harness.stack import DatabaseFactory, Stack


async def _schema(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
    finally:
        await conn.close()


async def test_clones_carry_the_template_schema_but_not_each_others_rows(
    alertbench_stack: Stack,
) -> None:
    factory = DatabaseFactory(alertbench_stack.postgres_direct, prefix="alertbench_dbtest")
    factory.create_template(_schema)
    try:
        first, second = factory.clone(), factory.clone()
        assert first != second
        a = await asyncpg.connect(first)
        b = await asyncpg.connect(second)
        try:
            await a.execute("INSERT INTO notes (body) VALUES ('only in the first')")
            assert await a.fetchval("SELECT count(*) FROM notes") == 1
            assert await b.fetchval("SELECT count(*) FROM notes") == 0
            extensions = await b.fetchval(
                "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"
            )
            assert extensions == 1
        finally:
            await a.close()
            await b.close()
    finally:
        factory.drop_all()
    names = await _database_names(alertbench_stack)
    assert not [n for n in names if n.startswith("alertbench_dbtest")]


async def _database_names(stack: Stack) -> list[str]:
    conn = await asyncpg.connect(stack.postgres.dsn)
    try:
        return [r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")]
    finally:
        await conn.close()


async def test_pg_dsn_fixture_is_an_isolated_database(pg_dsn: str, redis_url: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        name = await conn.fetchval("SELECT current_database()")
        assert name.startswith("alertbench_")
        assert name != "postgres"
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname='public'") == 0
    finally:
        await conn.close()
    assert redis_url.startswith("redis://127.0.0.1:")
