"""The pipeline schema, defined once with SQLAlchemy Core, and its migration.

``migrate`` is idempotent (``CREATE ... IF NOT EXISTS`` under an advisory
lock), so the stack can run it on the template database and every app process
can run it again on start without coordination.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from reference_impl.completion import FUNCTION_DDL
from reference_impl.db import Connection, connect

__all__ = [
    "ALERT_STATUSES",
    "UNIQUE_ACTIVE_ALERT_INDEX",
    "create_statements",
    "metadata",
    "migrate",
    "migrate_dsn",
]

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

ALERT_STATUSES = ("ACTIVE", "COMPLETED")
UNIQUE_ACTIVE_ALERT_INDEX = "uq_workflow_alerts_active_step"
# Arbitrary constant: serialises concurrent migrations of one database.
_MIGRATION_LOCK_KEY = 0x616C657274

_Id = sa.BigInteger


def _id() -> sa.Column[int]:
    return sa.Column("id", _Id, sa.Identity(always=False), primary_key=True)


def _created_at() -> sa.Column[object]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


users = sa.Table(
    "users",
    metadata,
    _id(),
    sa.Column("email", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    _created_at(),
)

projects = sa.Table(
    "projects",
    metadata,
    _id(),
    sa.Column("name", sa.Text, nullable=False),
    _created_at(),
)

project_members = sa.Table(
    "project_members",
    metadata,
    _id(),
    sa.Column("project_id", _Id, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("user_id", _Id, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.UniqueConstraint("project_id", "user_id", "role"),
    sa.Index("ix_project_members_project_role", "project_id", "role"),
    sa.Index("ix_project_members_user", "user_id"),
)

workflow_phases = sa.Table(
    "workflow_phases",
    metadata,
    _id(),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("phase_type", sa.Text, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)

workflow_sections = sa.Table(
    "workflow_sections",
    metadata,
    _id(),
    sa.Column("phase_id", _Id, sa.ForeignKey("workflow_phases.id"), nullable=False),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)

workflow_line_items = sa.Table(
    "workflow_line_items",
    metadata,
    _id(),
    sa.Column("section_id", _Id, sa.ForeignKey("workflow_sections.id"), nullable=False),
    sa.Column("item_name", sa.Text, nullable=False),
    sa.Column("responsible_role", sa.Text, nullable=False),
    sa.Column("alert_days", sa.Integer, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("position", sa.Integer, nullable=False),
)

project_workflow_trackers = sa.Table(
    "project_workflow_trackers",
    metadata,
    _id(),
    sa.Column("project_id", _Id, sa.ForeignKey("projects.id"), nullable=False, unique=True),
    sa.Column("current_line_item_id", _Id, sa.ForeignKey("workflow_line_items.id")),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index("idx_project_workflow_trackers_line_item", "current_line_item_id"),
)

workflow_alerts = sa.Table(
    "workflow_alerts",
    metadata,
    _id(),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("priority", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("project_id", _Id, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("workflow_id", _Id, sa.ForeignKey("project_workflow_trackers.id"), nullable=False),
    sa.Column("step_id", _Id, sa.ForeignKey("workflow_line_items.id"), nullable=False),
    sa.Column("assigned_to_id", _Id, sa.ForeignKey("users.id")),
    _created_at(),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("status IN ('ACTIVE', 'COMPLETED')", name="ck_workflow_alerts_status"),
    sa.Index("idx_workflow_alerts_project_status", "project_id", "status"),
    sa.Index("idx_workflow_alerts_created_project", sa.text("created_at DESC"), "project_id"),
    # Not in the seed's list: the per-user read (GET /api/users/{id}/alerts).
    sa.Index("idx_workflow_alerts_assignee_status", "assigned_to_id", "status"),
    sa.Index(
        UNIQUE_ACTIVE_ALERT_INDEX,
        "project_id",
        "step_id",
        unique=True,
        postgresql_where=sa.text("status = 'ACTIVE'"),
    ),
)


def create_statements(*, unique_active_alert: bool = True) -> list[str]:
    """The idempotent DDL, in dependency order, as PostgreSQL text."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call, unused-ignore]
    statements: list[str] = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            if index.name == UNIQUE_ACTIVE_ALERT_INDEX and not unique_active_alert:
                continue
            statements.append(str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)))
    if not unique_active_alert:
        statements.append(f"DROP INDEX IF EXISTS {UNIQUE_ACTIVE_ALERT_INDEX}")
    return statements


async def migrate(conn: Connection, *, unique_active_alert: bool = True) -> None:
    """Create every table and index that is missing, and (re)create the
    completion function, in one transaction.

    ``unique_active_alert=False`` (the ``no_unique_index`` flaw) drops the
    partial unique index instead, as the seed system shipped without it.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_KEY)
        for statement in create_statements(unique_active_alert=unique_active_alert):
            await conn.execute(statement)
        # Completion in one round trip (reference_impl.completion).
        await conn.execute(FUNCTION_DDL)
    logger.info("schema migrated (unique_active_alert=%s)", unique_active_alert)


async def migrate_dsn(dsn: str, *, unique_active_alert: bool = True) -> None:
    """``migrate`` on a fresh connection to ``dsn`` (the stack's template hook)."""
    conn = await connect(dsn)
    try:
        await migrate(conn, unique_active_alert=unique_active_alert)
    finally:
        await conn.close()
