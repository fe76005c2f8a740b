"""The schema is defined once (SQLAlchemy Core) and compiles to idempotent DDL."""

from __future__ import annotations

from reference_impl.schema import UNIQUE_ACTIVE_ALERT_INDEX, create_statements, metadata


def test_every_contract_table_is_defined() -> None:
    assert set(metadata.tables) == {
        "users",
        "projects",
        "project_members",
        "workflow_phases",
        "workflow_sections",
        "workflow_line_items",
        "project_workflow_trackers",
        "workflow_alerts",
    }


def test_ddl_is_idempotent_and_has_the_partial_unique_index() -> None:
    statements = create_statements()
    assert all("IF NOT EXISTS" in s for s in statements)
    [unique] = [s for s in statements if UNIQUE_ACTIVE_ALERT_INDEX in s]
    assert unique.startswith("CREATE UNIQUE INDEX")
    assert "(project_id, step_id) WHERE status = 'ACTIVE'" in unique


def test_the_no_unique_index_variant_drops_it_instead() -> None:
    statements = create_statements(unique_active_alert=False)
    assert statements[-1] == f"DROP INDEX IF EXISTS {UNIQUE_ACTIVE_ALERT_INDEX}"
    assert not any(s.startswith("CREATE UNIQUE INDEX") for s in statements)


def test_tables_come_before_the_tables_that_reference_them() -> None:
    statements = create_statements()
    position = {
        name: next(i for i, s in enumerate(statements) if f"TABLE IF NOT EXISTS {name} " in s)
        for name in metadata.tables
    }
    assert position["projects"] < position["project_workflow_trackers"]
    assert position["project_workflow_trackers"] < position["workflow_alerts"]
    assert position["workflow_line_items"] < position["workflow_alerts"]
