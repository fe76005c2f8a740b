"""Schema (migration) and deterministic seed data on a real Postgres."""

from __future__ import annotations

import time

import pytest

from harness.contract.seed import ROLES, SeedError, SeedResult, SeedSpec, seed
from harness.stack import DatabaseFactory
from reference_impl.db import Connection, connect
from reference_impl.schema import UNIQUE_ACTIVE_ALERT_INDEX, metadata, migrate


async def _indexes(conn: Connection) -> dict[str, str]:
    rows = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname='public'")
    return {r["indexname"]: r["indexdef"] for r in rows}


async def test_template_carries_every_table_and_the_seed_indexes(conn: Connection) -> None:
    tables = {
        r["tablename"]
        for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
    }
    # The definition's tables (the unit tests pin them to the pipeline contract).
    assert tables == set(metadata.tables)
    indexes = await _indexes(conn)
    assert "(project_id, status)" in indexes["idx_workflow_alerts_project_status"]
    assert "(created_at DESC, project_id)" in indexes["idx_workflow_alerts_created_project"]
    assert "(current_line_item_id)" in indexes["idx_project_workflow_trackers_line_item"]
    unique = indexes[UNIQUE_ACTIVE_ALERT_INDEX]
    assert unique.startswith("CREATE UNIQUE INDEX")
    assert "(project_id, step_id) WHERE (status = 'ACTIVE'::text)" in unique


async def test_migrate_is_idempotent_and_the_flawed_variant_drops_the_unique_index(
    conn: Connection,
) -> None:
    await migrate(conn)
    await migrate(conn)
    assert UNIQUE_ACTIVE_ALERT_INDEX in await _indexes(conn)
    await migrate(conn, unique_active_alert=False)
    assert UNIQUE_ACTIVE_ALERT_INDEX not in await _indexes(conn)
    await migrate(conn)
    assert UNIQUE_ACTIVE_ALERT_INDEX in await _indexes(conn)


async def test_seed_gives_each_project_one_member_per_role_and_a_tracker_at_the_first_item(
    conn: Connection,
) -> None:
    result = await seed(conn, SeedSpec(projects=50, seed=3))
    assert len(result.project_ids) == 50
    roles = await conn.fetch(
        "SELECT project_id, array_agg(role ORDER BY role) AS roles FROM project_members"
        " GROUP BY project_id"
    )
    assert len(roles) == 50
    assert all(sorted(r["roles"]) == sorted(ROLES) for r in roles)
    first_active = result.active_line_items[0].id
    trackers = await conn.fetch(
        "SELECT project_id, current_line_item_id FROM project_workflow_trackers"
    )
    assert {r["project_id"] for r in trackers} == set(result.project_ids)
    assert {r["current_line_item_id"] for r in trackers} == {first_active}
    assert sum(not li.is_active for li in result.line_items) == 1
    assert await conn.fetchval("SELECT count(*) FROM workflow_alerts") == 0


async def test_a_shared_user_pool_fills_each_projects_roles_with_distinct_users(
    conn: Connection,
) -> None:
    result = await seed(conn, SeedSpec(projects=60, users=15, seed=3))
    assert await conn.fetchval("SELECT count(*) FROM users") == 15
    per_project = await conn.fetch(
        "SELECT project_id, count(DISTINCT user_id) AS users, count(*) AS members"
        " FROM project_members GROUP BY project_id"
    )
    assert len(per_project) == 60
    assert all(r["users"] == r["members"] == len(ROLES) for r in per_project)
    # 60 projects x 4 roles over 15 users: users are shared across projects.
    projects_of_user = await conn.fetch(
        "SELECT user_id, count(*) AS n FROM project_members GROUP BY user_id"
    )
    assert max(r["n"] for r in projects_of_user) > 1
    rows = await conn.fetch("SELECT project_id, role, user_id FROM project_members")
    assert {(r["project_id"], r["role"]): r["user_id"] for r in rows} == {
        (p, role): user for p, roles in result.members.items() for role, user in roles.items()
    }


def test_a_user_pool_smaller_than_the_roles_is_refused() -> None:
    with pytest.raises(SeedError, match="users: must be >= 4"):
        SeedSpec(projects=1, users=3)


async def _snapshot(dsn: str, spec: SeedSpec) -> tuple[SeedResult, list[tuple[object, ...]]]:
    conn = await connect(dsn)
    try:
        result = await seed(conn, spec)
        rows = await conn.fetch(
            "SELECT u.email, u.name, pm.role, p.name AS project FROM project_members pm"
            " JOIN users u ON u.id = pm.user_id JOIN projects p ON p.id = pm.project_id"
            " ORDER BY pm.id"
        )
        items = await conn.fetch(
            "SELECT item_name, responsible_role, alert_days, is_active FROM workflow_line_items"
            " ORDER BY id"
        )
        return result, [tuple(r) for r in rows] + [tuple(r) for r in items]
    finally:
        await conn.close()


async def test_seed_is_deterministic_for_a_seed_and_differs_across_seeds(
    pg_dsn: str, alertbench_databases: DatabaseFactory
) -> None:
    other, third = alertbench_databases.clone(), alertbench_databases.clone()
    try:
        spec = SeedSpec(projects=20, seed=42)
        first, rows_a = await _snapshot(pg_dsn, spec)
        second, rows_b = await _snapshot(other, spec)
        _, rows_c = await _snapshot(third, SeedSpec(projects=20, seed=43))
    finally:
        alertbench_databases.drop(other)
        alertbench_databases.drop(third)
    assert first == second
    assert rows_a == rows_b
    assert rows_a != rows_c


async def test_seed_loads_ten_thousand_projects_in_one_transaction(conn: Connection) -> None:
    # The time is logged for the report, not asserted (no wall-clock thresholds in tests).
    started = time.perf_counter()
    result = await seed(conn, SeedSpec(projects=10_000, seed=1))
    elapsed_s = time.perf_counter() - started
    print(f"seeded 10,000 projects in {elapsed_s:.2f} s")
    assert len(result.project_ids) == 10_000
    assert await conn.fetchval("SELECT count(*) FROM users") == 40_000
    assert await conn.fetchval("SELECT count(*) FROM project_workflow_trackers") == 10_000
    # Identity sequences continue after the copied ids.
    new_id = await conn.fetchval(
        "INSERT INTO projects (name) VALUES ('after the seed') RETURNING id"
    )
    assert new_id == max(result.project_ids) + 1


async def test_the_template_is_not_in_id_order_and_has_empty_sections_and_several_phases(
    conn: Connection,
) -> None:
    """Ordering by id and ordering by position must differ, so a target that
    walks the workflow by id goes wrong on the harness's data."""
    result = await seed(conn, SeedSpec(projects=1, seed=3))
    ids = [li.id for li in result.line_items]
    assert ids != sorted(ids), "line item ids follow workflow order: nothing tells them apart"
    assert len({li.phase_id for li in result.line_items}) >= 2
    phase_ids = await conn.fetch("SELECT id FROM workflow_phases ORDER BY position")
    assert [r["id"] for r in phase_ids] != sorted(r["id"] for r in phase_ids)
    empty = await conn.fetchval(
        "SELECT count(*) FROM workflow_sections s WHERE NOT EXISTS"
        " (SELECT 1 FROM workflow_line_items li WHERE li.section_id = s.id)"
    )
    assert empty >= 1
    by_position = await conn.fetch(
        "SELECT li.id FROM workflow_line_items li"
        " JOIN workflow_sections s ON s.id = li.section_id"
        " JOIN workflow_phases p ON p.id = s.phase_id"
        " ORDER BY p.position, s.position, li.position, li.id"
    )
    assert [r["id"] for r in by_position] == ids
    assert any(not li.is_active for li in result.line_items)
