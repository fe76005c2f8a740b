"""Benchmarks: batch generation at 100 / 1,000 / 10,000 projects, and completion.

Run: ``pytest tests/benchmarks/reference_impl --benchmark-only``. Each case
also records the statements Postgres executed for one call (server side,
pg_stat_statements) in ``extra_info["server_statements"]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from reference_impl import Flaw, complete_line_item, generate_alerts
from reference_impl.db import Connection, connect
from reference_impl.seed import SeedSpec, seed

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
