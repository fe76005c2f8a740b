"""Batch alert generation: one alert per project, constant queries, idempotent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ri_support import Api, StartApi, wait_for_lock_wait

from harness.contract.seed import SeedResult, SeedSpec, seed
from reference_impl import Flaw, complete_line_item, generate_alerts
from reference_impl.completion import Stage
from reference_impl.db import Connection, connect


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


class PauseBeforeCommit:
    """Completion hooks that hold the transaction open at ``before_commit``."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def after(self, stage: Stage, project_id: int) -> None:
        if stage == "before_commit":
            self.reached.set()
            await self.release.wait()


async def test_a_generation_racing_a_completion_leaves_no_stale_alert(
    pg_dsn: str, conn: Connection, seeded: SeedResult
) -> None:
    # The completion of step 1 has completed step 1's alert and inserted step
    # 2's, but not committed yet, when a batch generation for the project
    # runs. Read Committed let the generation see the tracker still at step 1
    # and, once the completion committed, insert a new ACTIVE alert for step 1
    # beside step 2's. The generation must wait for the tracker and find
    # nothing to do.
    pid = seeded.project_ids[0]
    first, second = seeded.active_line_items[:2]
    await generate_alerts(conn, [pid])
    completing, generating = await connect(pg_dsn), await connect(pg_dsn)
    hooks = PauseBeforeCommit()
    try:
        completion = asyncio.create_task(
            complete_line_item(
                completing,
                project_id=pid,
                line_item_id=first.id,
                user_id=seeded.members[pid]["project_manager"],
                hooks=hooks,
            )
        )
        async with asyncio.timeout(10):
            await hooks.reached.wait()
        generation = asyncio.create_task(generate_alerts(generating, [pid]))
        # Bounded wait until the generation's backend waits for a lock (or is done).
        backend = generating.get_server_pid()
        await wait_for_lock_wait(conn, backend, generation)
        hooks.release.set()
        async with asyncio.timeout(10):
            await completion
            result = await generation
    finally:
        await completing.close()
        await generating.close()
    assert result.created == []
    active = await conn.fetch(
        "SELECT step_id FROM workflow_alerts WHERE project_id = $1 AND status = 'ACTIVE'", pid
    )
    assert [r["step_id"] for r in active] == [second.id]
