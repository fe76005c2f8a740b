"""Batch alert generation: one alert per project, constant queries, idempotent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ri_support import Api, StartApi

from reference_impl import Flaw, generate_alerts
from reference_impl.db import Connection, connect
from reference_impl.seed import SeedResult, SeedSpec, seed


async def _active_alerts(conn: Connection) -> list[tuple[int, int, int | None]]:
    rows = await conn.fetch(
        "SELECT project_id, step_id, assigned_to_id FROM workflow_alerts"
        " WHERE status = 'ACTIVE' ORDER BY project_id"
    )
    return [(r["project_id"], r["step_id"], r["assigned_to_id"]) for r in rows]


async def test_generates_one_alert_per_project_assigned_to_the_responsible_role(
    conn: Connection, seeded: SeedResult
) -> None:
    result = await generate_alerts(conn, seeded.project_ids)
    first = seeded.active_line_items[0]
    assert len(result.created) == len(seeded.project_ids)
    assert await _active_alerts(conn) == [
        (pid, first.id, seeded.members[pid][first.responsible_role]) for pid in seeded.project_ids
    ]
    assert {a.title for a in result.created} == {first.item_name}


async def test_generating_twice_creates_nothing_new(conn: Connection, seeded: SeedResult) -> None:
    await generate_alerts(conn, seeded.project_ids)
    before = await _active_alerts(conn)
    again = await generate_alerts(conn, seeded.project_ids + seeded.project_ids)
    assert again.created == []
    assert again.duplicates_prevented == len(seeded.project_ids)
    assert await _active_alerts(conn) == before


async def test_concurrent_batches_never_duplicate_an_active_alert(
    pg_dsn: str, conn: Connection, seeded: SeedResult
) -> None:
    conns = [await connect(pg_dsn) for _ in range(8)]
    try:
        results = await asyncio.gather(*(generate_alerts(c, seeded.project_ids) for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert sum(len(r.created) for r in results) == len(seeded.project_ids)
    assert len(await _active_alerts(conn)) == len(seeded.project_ids)


async def test_unknown_projects_and_finished_workflows_get_no_alert(
    conn: Connection, seeded: SeedResult
) -> None:
    done = seeded.project_ids[0]
    await conn.execute(
        "UPDATE project_workflow_trackers SET current_line_item_id = NULL, completed_at = now()"
        " WHERE project_id = $1",
        done,
    )
    result = await generate_alerts(conn, [done, 999_999])
    assert result.created == []
    assert result.candidates == 0


async def _statements_for(
    conn: Connection,
    count: Callable[[], Awaitable[int]],
    project_ids: list[int],
    flaws: frozenset[Flaw],
) -> int:
    await conn.execute("DELETE FROM workflow_alerts")
    # Warm up: asyncpg introspects unknown result types once per connection.
    await generate_alerts(conn, project_ids[:1], flaws=flaws)
    await conn.execute("DELETE FROM workflow_alerts")
    await conn.execute("SELECT pg_stat_statements_reset()")
    await generate_alerts(conn, project_ids, flaws=flaws)
    return await count()


async def test_query_count_is_constant_in_the_number_of_projects_server_side(
    conn: Connection, server_statements: Callable[[], Awaitable[int]]
) -> None:
    result = await seed(conn, SeedSpec(projects=200, seed=5))
    ten = await _statements_for(conn, server_statements, result.project_ids[:10], frozenset())
    all_ = await _statements_for(conn, server_statements, result.project_ids, frozenset())
    assert ten == all_
    assert all_ < 10


async def test_n_plus_one_flaw_issues_queries_per_project(
    conn: Connection, server_statements: Callable[[], Awaitable[int]]
) -> None:
    result = await seed(conn, SeedSpec(projects=200, seed=5))
    flaws = frozenset({Flaw.N_PLUS_ONE})
    ten = await _statements_for(conn, server_statements, result.project_ids[:10], flaws)
    all_ = await _statements_for(conn, server_statements, result.project_ids, flaws)
    assert all_ >= 3 * 200
    assert all_ > 10 * ten
    # The flawed path still creates the same alerts.
    assert len(await _active_alerts(conn)) == 200


async def test_no_unique_index_flaw_drops_the_index_but_sequential_calls_stay_idempotent(
    start_api: StartApi, conn: Connection, seeded: SeedResult
) -> None:
    api: Api = await start_api(flaws=frozenset({Flaw.NO_UNIQUE_INDEX}))
    assert not await conn.fetchval(
        "SELECT count(*) FROM pg_indexes WHERE indexname = 'uq_workflow_alerts_active_step'"
    )
    user = seeded.members[seeded.project_ids[0]]["project_manager"]
    for _ in range(2):
        response = await api.http.post(
            "/api/alerts/generate", json={"project_ids": seeded.project_ids}, headers=api.auth(user)
        )
        assert response.status_code == 200
    assert len(await _active_alerts(conn)) == len(seeded.project_ids)
