"""The schema is defined once (SQLAlchemy Core) and compiles to idempotent DDL."""

from __future__ import annotations

import re

from harness.contract import CONTRACT_TABLES, schema_sql
from reference_impl.schema import UNIQUE_ACTIVE_ALERT_INDEX, create_statements, metadata


def _contract_columns() -> dict[str, set[str]]:
    """Table -> columns, read from the contract's DDL (harness/contract/schema.sql)."""
    tables: dict[str, set[str]] = {}
    for name, body in re.findall(
        r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", schema_sql(), re.S
    ):
        tables[name] = {line.split()[0] for line in body.strip().splitlines() if line.split()}
        tables[name] -= {"UNIQUE", "PRIMARY", "CONSTRAINT", "FOREIGN", "CHECK"}
    return tables


def test_the_reference_has_exactly_the_contract_s_tables_and_every_column() -> None:
    contract = _contract_columns()
    assert set(contract) == set(CONTRACT_TABLES) == set(metadata.tables)
    for table, columns in contract.items():
        missing = columns - {c.name for c in metadata.tables[table].columns}
        assert not missing, f"{table} lacks {missing}"


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
