"""Deterministic seed data on the contract's schema: projects, members, a
workflow template, trackers.

``seed(conn, SeedSpec(projects=10_000, seed=7))`` produces the same rows for
the same spec on an empty database. Rows are loaded with COPY (one round trip
per table), so 10,000 projects take seconds, not minutes. It writes only the
tables and columns that ``docs/contract.md`` requires, with explicit ids, and
then moves each table's identity sequence past them.

Roles are the harness's logical names (:data:`ROLES`); a target stores its
own spelling (the seed's Node system says ``PROJECT_MANAGER``), given as
``SeedSpec.roles``. Everything the harness reads back (``SeedResult``) uses
the logical names.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any

import asyncpg

Connection = Any  # an asyncpg connection

__all__ = ["ROLES", "LineItem", "SeedError", "SeedResult", "SeedSpec", "seed", "seed_dsn"]

ROLES: tuple[str, ...] = ("project_manager", "field_director", "office_staff", "administration")
"""One member per role per project; each line item is the responsibility of one role."""

_PHASES = ("Lead", "Prospect", "Approved", "Execution", "Supplement", "Completion")
_NOUNS = ("roof", "permit", "contract", "inspection", "estimate", "material", "crew", "invoice")
_VERBS = ("Verify", "Schedule", "Submit", "Review", "Order", "Approve", "Collect", "Confirm")
_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Leslie", "Margaret", "Niklaus")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Lamport", "Wirth")


class SeedError(ValueError):
    """The seed specification is invalid."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class SeedSpec:
    """What to generate."""

    projects: int
    """Number of projects (each with one member per role and one tracker)."""
    users: int | None = None
    """Size of a shared pool of users: each project's roles are filled by
    distinct users drawn from it, so a user is a member of several projects
    (as a project manager is in practice). None: four new users per project,
    none shared."""
    seed: int = 0
    """Seed of the random generator: same spec, same rows."""
    phases: int = 3
    sections_per_phase: int = 2
    items_per_section: int = 3
    inactive_items: int = 1
    """Line items with ``is_active = false`` (never the first two); completion skips them."""
    late_items: int = 2
    """Line items "added later": they get the highest ids though they sit earlier
    in the workflow (the second one always, never the first), so id order is
    not workflow order."""
    empty_sections: int = 1
    """Sections without line items in each phase (the workflow skips them)."""
    roles: Mapping[str, str] | None = None
    """Logical role -> the value the target stores in ``project_members.role``
    and ``workflow_line_items.responsible_role`` (None: the logical names)."""

    def __post_init__(self) -> None:
        if self.projects < 0:
            raise SeedError(f"projects: must be >= 0, got {self.projects}")
        for name in ("phases", "sections_per_phase", "items_per_section"):
            if getattr(self, name) < 1:
                raise SeedError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.users is not None and self.users < len(ROLES):
            raise SeedError(f"users: must be >= {len(ROLES)} (one per role), got {self.users}")
        if self.phases > len(_PHASES):
            raise SeedError(f"phases: at most {len(_PHASES)}, got {self.phases}")
        total = self.phases * self.sections_per_phase * self.items_per_section
        if not 0 <= self.inactive_items < total - 1:
            raise SeedError(f"inactive_items: must be in 0..{total - 2}, got {self.inactive_items}")
        if not 0 <= self.late_items < total - 1:
            raise SeedError(f"late_items: must be in 0..{total - 2}, got {self.late_items}")
        if self.empty_sections < 0:
            raise SeedError(f"empty_sections: must be >= 0, got {self.empty_sections}")
        if self.roles is not None:
            missing = [r for r in ROLES if not self.roles.get(r)]
            if missing or len(set(self.roles.values())) != len(self.roles):
                raise SeedError(
                    f"roles: every one of {', '.join(ROLES)} needs its own stored value"
                    + (f"; missing {', '.join(missing)}" if missing else "")
                )

    def stored_role(self, role: str) -> str:
        """How the target spells the logical ``role``."""
        return self.roles[role] if self.roles is not None else role

    def logical_role(self, stored: str) -> str:
        """The logical name of a role as the target stores it."""
        if self.roles is None:
            return stored
        back = {v: k for k, v in self.roles.items()}
        if stored not in back:
            raise SeedError(f"roles: the database holds role {stored!r}, which no role maps to")
        return back[stored]


@dataclasses.dataclass(frozen=True)
class LineItem:
    """A line item of the template, in workflow order."""

    id: int
    section_id: int
    phase_id: int
    item_name: str
    responsible_role: str
    alert_days: int
    is_active: bool


@dataclasses.dataclass(frozen=True)
class SeedResult:
    """What was written (ids are database ids)."""

    project_ids: list[int]
    members: dict[int, dict[str, int]]
    """project_id -> role -> user_id."""
    tracker_ids: dict[int, int]
    """project_id -> tracker id."""
    line_items: list[LineItem]
    """The template's line items in workflow order (phase, section, item)."""

    @property
    def active_line_items(self) -> list[LineItem]:
        return [li for li in self.line_items if li.is_active]


async def _next_id(conn: Connection, table: str) -> int:
    value: int = await conn.fetchval(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")
    return value


async def _sync_identity(conn: Connection, table: str) -> None:
    await conn.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
        f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
    )


async def _template(conn: Connection, spec: SeedSpec, rng: random.Random) -> list[LineItem]:
    """Load the existing template, or write one if the database has none."""
    rows = await conn.fetch(
        "SELECT li.id, li.section_id, s.phase_id, li.item_name, li.responsible_role,"
        " li.alert_days, li.is_active FROM workflow_line_items li"
        " JOIN workflow_sections s ON s.id = li.section_id"
        " JOIN workflow_phases p ON p.id = s.phase_id"
        " ORDER BY p.position, s.position, li.position, li.id"
    )
    if rows:
        return [
            dataclasses.replace(LineItem(*r), responsible_role=spec.logical_role(r[4]))
            for r in rows
        ]
    return await _write_template(conn, spec, rng)


def _late_ids(first: int, count: int, late: set[int]) -> list[int]:
    """Ids for ``count`` rows in workflow order where the rows in ``late`` were
    added last: they get the highest ids, so id order is not workflow order."""
    ids = [0] * count
    next_id = first
    for order in [o for o in range(count) if o not in late] + sorted(late):
        ids[order] = next_id
        next_id += 1
    return ids


async def _write_template(conn: Connection, spec: SeedSpec, rng: random.Random) -> list[LineItem]:
    """Write a template whose id order differs from its workflow order.

    Real templates grow: a phase, a section or a line item added later at an
    earlier position has a higher id than the rows after it. Here the last
    ``late_items`` picked line items (never the first) and the second phase
    were "added later"; ``empty_sections`` sections hold no item; positions
    are spaced by 10 as an editor leaves them. A target that walks the
    workflow in id order instead of position order goes wrong here.
    """
    phase_first = await _next_id(conn, "workflow_phases")
    section_first = await _next_id(conn, "workflow_sections")
    item_first = await _next_id(conn, "workflow_line_items")
    phase_ids = _late_ids(phase_first, spec.phases, {1} if spec.phases > 2 else set())
    per_phase = spec.sections_per_phase + spec.empty_sections
    section_ids = _late_ids(section_first, spec.phases * per_phase, set())
    total = spec.phases * spec.sections_per_phase * spec.items_per_section
    # The second item is always one "added later" (and active), so a target
    # walking by id goes wrong at the first completion, in every scenario.
    late = {1} | set(rng.sample(range(2, total), spec.late_items - 1)) if spec.late_items else set()
    inactive = (
        set(rng.sample(range(2, total), spec.inactive_items)) if spec.inactive_items else set()
    )
    item_ids = _late_ids(item_first, total, late)
    phases: list[tuple[int, str, str, int]] = []
    sections: list[tuple[int, int, str, int]] = []
    items: list[LineItem] = []
    item_rows: list[tuple[int, int, str, str, int, bool, int]] = []
    order = 0
    section_n = 0
    for p in range(spec.phases):
        phase_id = phase_ids[p]
        phases.append((phase_id, _PHASES[p], _PHASES[p].upper(), 10 * p))
        # The empty sections sit between the first and the second filled one.
        kinds = [True] + [False] * spec.empty_sections + [True] * (spec.sections_per_phase - 1)
        filled = 0
        for s, has_items in enumerate(kinds):
            section_id = section_ids[section_n]
            section_n += 1
            title = f"{_PHASES[p]} section {s + 1}" + ("" if has_items else " (empty)")
            sections.append((section_id, phase_id, title, 10 * s))
            if not has_items:
                continue
            filled += 1
            for i in range(spec.items_per_section):
                name = f"{rng.choice(_VERBS)} {rng.choice(_NOUNS)} ({p + 1}.{filled}.{i + 1})"
                item = LineItem(
                    id=item_ids[order],
                    section_id=section_id,
                    phase_id=phase_id,
                    item_name=name,
                    responsible_role=rng.choice(ROLES),
                    alert_days=rng.randint(1, 14),
                    is_active=order not in inactive,
                )
                items.append(item)
                item_rows.append(
                    (
                        item.id,
                        section_id,
                        name,
                        spec.stored_role(item.responsible_role),
                        item.alert_days,
                        item.is_active,
                        10 * i,
                    )
                )
                order += 1
    await conn.copy_records_to_table(
        "workflow_phases", records=phases, columns=("id", "name", "phase_type", "position")
    )
    await conn.copy_records_to_table(
        "workflow_sections",
        records=sections,
        columns=("id", "phase_id", "display_name", "position"),
    )
    await conn.copy_records_to_table(
        "workflow_line_items",
        records=item_rows,
        columns=(
            "id",
            "section_id",
            "item_name",
            "responsible_role",
            "alert_days",
            "is_active",
            "position",
        ),
    )
    return items


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


async def seed(conn: Connection, spec: SeedSpec) -> SeedResult:
    """Write ``spec.projects`` projects (with members and trackers) in one transaction.

    New rows get ids after the existing ones, so seeding twice adds projects
    that share the one workflow template.
    """
    rng = random.Random(spec.seed)
    async with conn.transaction():
        line_items = await _template(conn, spec, rng)
        first = next((li for li in line_items if li.is_active), None)
        if first is None:
            raise SeedError("the workflow template has no active line item")
        project_id = await _next_id(conn, "projects")
        user_id = await _next_id(conn, "users")
        member_id = await _next_id(conn, "project_members")
        tracker_id = await _next_id(conn, "project_workflow_trackers")
        projects: list[tuple[int, str]] = []
        users: list[tuple[int, str, str]] = []
        members_rows: list[tuple[int, int, int, str]] = []
        trackers: list[tuple[int, int, int]] = []
        members: dict[int, dict[str, int]] = {}
        tracker_ids: dict[int, int] = {}
        pool: list[int] = []
        if spec.users is not None:
            for _ in range(spec.users):
                users.append((user_id, f"user{user_id}@alertbench.test", _name(rng)))
                pool.append(user_id)
                user_id += 1
        for n in range(spec.projects):
            pid = project_id + n
            projects.append((pid, f"Project {pid} {rng.choice(_LAST)} residence"))
            members[pid] = {}
            chosen = rng.sample(pool, len(ROLES)) if pool else []
            for r, role in enumerate(ROLES):
                if pool:
                    member = chosen[r]
                else:
                    member = user_id
                    users.append((user_id, f"user{user_id}@alertbench.test", _name(rng)))
                    user_id += 1
                members_rows.append((member_id, pid, member, spec.stored_role(role)))
                members[pid][role] = member
                member_id += 1
            trackers.append((tracker_id, pid, first.id))
            tracker_ids[pid] = tracker_id
            tracker_id += 1
        await conn.copy_records_to_table("projects", records=projects, columns=("id", "name"))
        await conn.copy_records_to_table("users", records=users, columns=("id", "email", "name"))
        await conn.copy_records_to_table(
            "project_members", records=members_rows, columns=("id", "project_id", "user_id", "role")
        )
        await conn.copy_records_to_table(
            "project_workflow_trackers",
            records=trackers,
            columns=("id", "project_id", "current_line_item_id"),
        )
        for table in (
            "workflow_phases",
            "workflow_sections",
            "workflow_line_items",
            "projects",
            "users",
            "project_members",
            "project_workflow_trackers",
        ):
            await _sync_identity(conn, table)
    return SeedResult(
        project_ids=[p for p, _ in projects],
        members=members,
        tracker_ids=tracker_ids,
        line_items=line_items,
    )


async def seed_dsn(dsn: str, spec: SeedSpec) -> SeedResult:
    """``seed`` on a fresh connection to ``dsn``."""
    conn = await asyncpg.connect(dsn, timeout=30.0)
    try:
        return await seed(conn, spec)
    finally:
        await conn.close()
