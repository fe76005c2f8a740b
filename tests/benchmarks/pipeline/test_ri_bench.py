"""Benchmarks: batch generation at 100 / 1,000 / 10,000 projects, and completion.

Run: ``pytest tests/benchmarks/reference_impl --benchmark-only``. Each case
also records the statements Postgres executed for one call (server side,
pg_stat_statements) in ``extra_info["server_statements"]``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from harness.contract.seed import SeedSpec, seed
from harness.stack import Stack
from reference_impl import Flaw, complete_line_item, generate_alerts
from reference_impl.db import Connection, connect, create_pool

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Run = Callable[[Awaitable[Any]], Any]

_COUNT_SQL = (
    "SELECT coalesce(sum(calls), 0)::int FROM pg_stat_statements"
    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND query NOT ILIKE '%pg_stat_statements%'"
)


async def _server_statements(conn: Connection, work: Callable[[], Awaitable[Any]]) -> int:
    await conn.execute("SELECT pg_stat_statements_reset()")
    await work()
    count: int = await conn.fetchval(_COUNT_SQL)
    return count


@pytest.mark.parametrize(
    "flaws", [frozenset(), frozenset({Flaw.N_PLUS_ONE})], ids=["batch", "n_plus_one"]
)
@pytest.mark.parametrize("projects", [100, 1_000, 10_000])
def test_batch_generation(
    benchmark: Any, run: Run, pg_dsn: str, projects: int, flaws: frozenset[Flaw]
) -> None:
    conn: Connection = run(connect(pg_dsn))
    try:
        ids = run(seed(conn, SeedSpec(projects=projects, seed=1))).project_ids

        def reset() -> None:
            run(conn.execute("DELETE FROM workflow_alerts"))

        def generate() -> Any:
            return run(generate_alerts(conn, ids, flaws=flaws))

        reset()
        generate()  # warm-up: prepared statements and type introspection
        reset()
        statements = run(_server_statements(conn, lambda: generate_alerts(conn, ids, flaws=flaws)))
        benchmark.extra_info["server_statements"] = statements
        benchmark.extra_info["projects"] = projects
        rounds = 5 if projects < 10_000 or not flaws else 3
        result = benchmark.pedantic(generate, setup=reset, rounds=rounds, iterations=1)
        assert len(result.created) == projects
        print(
            f"\ngenerate {projects} projects ({'n_plus_one' if flaws else 'batch'}):"
            f" {statements} server statements"
        )
    finally:
        run(conn.close())


def test_completion_latency(benchmark: Any, run: Run, pg_dsn: str) -> None:
    conn: Connection = run(connect(pg_dsn))
    try:
        seeded = run(seed(conn, SeedSpec(projects=1_000, seed=1)))
        run(generate_alerts(conn, seeded.project_ids))
        first = seeded.active_line_items[0].id
        queue = list(seeded.project_ids)

        def next_args() -> tuple[tuple[int], dict[str, Any]]:
            return (queue.pop(),), {}

        def complete(pid: int) -> Any:
            return run(
                complete_line_item(
                    conn,
                    project_id=pid,
                    line_item_id=first,
                    user_id=seeded.members[pid]["project_manager"],
                )
            )

        complete(queue.pop())  # warm-up
        pid = queue.pop()
        statements = run(
            _server_statements(
                conn,
                lambda: complete_line_item(
                    conn,
                    project_id=pid,
                    line_item_id=first,
                    user_id=seeded.members[pid]["project_manager"],
                ),
            )
        )
        benchmark.extra_info["server_statements"] = statements
        result = benchmark.pedantic(complete, setup=next_args, rounds=300, iterations=1)
        assert result.alert is not None
        print(f"\ncomplete: {statements} server statements")
    finally:
        run(conn.close())


def test_completion_throughput_without_the_api(
    benchmark: Any, run: Run, pg_dsn: str, alertbench_stack: Stack
) -> None:
    """The floor under the API: the completion transaction driven directly by
    asyncpg on 8 pooled connections, 2,000 completions (two rounds over 1,000
    projects). Records completions/s and the CPU per completion of Postgres
    (with its backends) and of this client, to compare with the CPU per
    completion the ``load`` scenario reports for the whole pipeline."""
    from harness.metrics.resources import process_cpu_s

    conn: Connection = run(connect(pg_dsn))
    pool = run(create_pool(pg_dsn, min_size=8, max_size=8))
    postgres_pid = alertbench_stack.local_processes().get("postgres")
    try:
        seeded = run(seed(conn, SeedSpec(projects=1_000, users=1_000, seed=1)))
        items = seeded.active_line_items

        async def complete(pid: int, step: int) -> None:
            async with pool.acquire() as c:
                await complete_line_item(
                    c,
                    project_id=pid,
                    line_item_id=items[step].id,
                    user_id=seeded.members[pid]["project_manager"],
                )

        async def two_rounds() -> int:
            done = 0
            for step in (0, 1):
                ids = seeded.project_ids
                for start in range(0, len(ids), 8):
                    batch = ids[start : start + 8]
                    await asyncio.gather(*(complete(p, step) for p in batch))
                    done += len(batch)
            return done

        def measured() -> int:
            return int(run(two_rounds()))

        pg_before = process_cpu_s(postgres_pid) if postgres_pid else None
        me_before = process_cpu_s(os.getpid(), children=False)
        started = time.perf_counter()
        done = benchmark.pedantic(measured, rounds=1, iterations=1)
        elapsed = time.perf_counter() - started
        pg_after = process_cpu_s(postgres_pid) if postgres_pid else None
        me_after = process_cpu_s(os.getpid(), children=False)
        assert done == 2_000
        advanced = run(
            conn.fetchval(
                "SELECT count(*) FROM project_workflow_trackers WHERE current_line_item_id = $1",
                items[2].id,
            )
        )
        assert advanced == 1_000
        benchmark.extra_info["completions_per_s"] = round(done / elapsed, 1)
        line = f"\ncompletion without the API: {done / elapsed:.0f}/s on 8 connections"
        if pg_before is not None and pg_after is not None:
            pg_ms = (pg_after - pg_before) / done * 1000
            benchmark.extra_info["postgres_cpu_ms_per_completion"] = round(pg_ms, 3)
            line += f"; Postgres CPU {pg_ms:.2f} ms/completion"
        if me_before is not None and me_after is not None:
            client_ms = (me_after - me_before) / done * 1000
            benchmark.extra_info["client_cpu_ms_per_completion"] = round(client_ms, 3)
            line += f"; asyncpg client CPU {client_ms:.2f} ms/completion"
        print(line)
    finally:
        run(pool.close())
        run(conn.close())
