"""The pipeline contract as code (``docs/contract.md``, version v1).

What the harness needs to judge any target without importing it: the
contract's tables (:data:`CONTRACT_TABLES`, :func:`apply_schema` for a target
with no migration of its own), deterministic seed data written with SQL on
those tables (:func:`seed_dsn`), and bearer tokens in the target's scheme
(:class:`TokenScheme`).
"""

from __future__ import annotations

from importlib.resources import files

import asyncpg

from harness.contract.seed import ROLES, LineItem, SeedError, SeedResult, SeedSpec, seed, seed_dsn
from harness.contract.tokens import SCHEMES, TokenScheme

__all__ = [
    "CONTRACT_TABLES",
    "CONTRACT_VERSION",
    "ROLES",
    "SCHEMES",
    "LineItem",
    "SeedError",
    "SeedResult",
    "SeedSpec",
    "TokenScheme",
    "apply_schema",
    "schema_sql",
    "seed",
    "seed_dsn",
]

CONTRACT_VERSION = "v1"

#: The tables a target's database must have (with the columns of schema.sql).
CONTRACT_TABLES: tuple[str, ...] = (
    "users",
    "projects",
    "project_members",
    "workflow_phases",
    "workflow_sections",
    "workflow_line_items",
    "project_workflow_trackers",
    "workflow_alerts",
)


def schema_sql() -> str:
    """The contract's DDL (tables and columns, idempotent)."""
    return files("harness.contract").joinpath("schema.sql").read_text(encoding="utf-8")


async def apply_schema(dsn: str) -> None:
    """Create the contract's tables where they are missing."""
    conn = await asyncpg.connect(dsn, timeout=30.0)
    try:
        await conn.execute(schema_sql())
    finally:
        await conn.close()
