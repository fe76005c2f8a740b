"""Completing a line item: one transaction that advances a project's workflow.

Statements, in order, each followed by a call to ``hooks.after(stage)`` (the
explicit seam tests use to inject a fault between statements):

1. ``locked``: lock the tracker row (FOR UPDATE), check membership and that the
   line item is the current one (else StaleCompletion -> 409);
2. ``advanced``: move the tracker to the next active line item, across sections
   and phases (or finish the workflow after the last one);
3. ``completed_old``: mark this project's ACTIVE alerts of the old step COMPLETED;
4. ``inserted``: insert the next step's alert and ``pg_notify`` it;
5. ``before_commit``: the last moment inside the transaction (under the
   ``emit_before_commit`` flaw, after the premature emit).

Any exception rolls the whole transaction back.

Those are five statements plus BEGIN and COMMIT: seven round trips to
Postgres, which were the largest item of the app's CPU per completion
(py-spy, 300 completions/s). So the production path (no hooks, no flaw that
changes completion) sends one: ``SELECT * FROM alertbench_complete_line_item(
project, item, user)``, a PL/pgSQL function the schema migration creates
(:data:`FUNCTION_DDL`) from the same statements. A single statement is its own
transaction; inside the function each statement still takes a fresh snapshot
(Read Committed), after the tracker lock, exactly as the separate statements
do; the notification is sent on commit; a refusal changes nothing and comes
back as an outcome, not an error. Hooks (the test seam) and the flaws that
change completion keep the statement-by-statement path above.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from collections.abc import AsyncIterator
from typing import Literal, Protocol

from reference_impl.alerts import (
    ALERT_COLUMNS,
    Alert,
    AlertEmitter,
    NullEmitter,
    candidates_sql,
    insert_alerts_sql,
)
from reference_impl.db import Connection
from reference_impl.flaws import Flaw

__all__ = [
    "FUNCTION_DDL",
    "FUNCTION_NAME",
    "CompletionError",
    "CompletionHooks",
    "CompletionResult",
    "InjectedRollback",
    "NoHooks",
    "NotAMember",
    "ProjectNotFound",
    "RandomRollback",
    "Stage",
    "StaleCompletion",
    "complete_line_item",
]

Stage = Literal["locked", "advanced", "completed_old", "inserted", "before_commit"]
STAGES: tuple[Stage, ...] = ("locked", "advanced", "completed_old", "inserted", "before_commit")


class CompletionHooks(Protocol):
    """Called by the completion service after each statement (a test seam)."""

    async def after(self, stage: Stage, project_id: int) -> None: ...


class NoHooks:
    """The production hooks: do nothing."""

    async def after(self, stage: Stage, project_id: int) -> None:
        return None


class InjectedRollback(Exception):
    """A failure injected on purpose just before the commit (fault injection)."""


class RandomRollback:
    """Hooks that fail a share of completions at ``before_commit``.

    Fault injection for the ``rollback`` scenario: what a crash, a lost
    connection or a deferred constraint does to a transaction at its last
    moment. Seeded, so a run is reproducible.
    """

    def __init__(self, rate: float, *, seed: int = 0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
        self.rate = rate
        self._rng = random.Random(seed)
        self.injected = 0

    async def after(self, stage: Stage, project_id: int) -> None:
        if stage == "before_commit" and self._rng.random() < self.rate:
            self.injected += 1
            raise InjectedRollback(f"injected failure before commit (project {project_id})")


class CompletionError(Exception):
    """A completion the caller cannot perform; ``status`` is the HTTP status."""

    status = 400


class ProjectNotFound(CompletionError):
    status = 404


class NotAMember(CompletionError):
    status = 403


class StaleCompletion(CompletionError):
    """The line item is not the project's current one (stale or repeated)."""

    status = 409

    def __init__(self, message: str, *, current_line_item_id: int | None) -> None:
        super().__init__(message)
        self.current_line_item_id = current_line_item_id


@dataclasses.dataclass(frozen=True)
class CompletionResult:
    """Outcome of a committed completion."""

    project_id: int
    completed_line_item_id: int
    next_line_item_id: int | None
    """None when the workflow is complete."""
    alert: Alert | None
    """The next step's new alert (None at the end of the workflow, or if the
    next step's line item is inactive... never: inactive items are skipped)."""
    completed_alert_ids: list[int]
    affected_user_ids: frozenset[int]
    """Users whose alert list changed (cache invalidation targets)."""
    committed_at: float = 0.0
    """Wall-clock time (``time.time()``) right after the commit returned: the
    start of end-to-end delivery latency (commit -> receipt)."""

    @property
    def workflow_complete(self) -> bool:
        return self.next_line_item_id is None


_LOCK_SQL = """
SELECT t.id, t.current_line_item_id, t.completed_at,
       EXISTS (SELECT 1 FROM project_members pm
               WHERE pm.project_id = t.project_id AND pm.user_id = $2) AS is_member
FROM project_workflow_trackers t WHERE t.project_id = $1
"""


def _advance_sql(next_item: str) -> str:
    """Move the tracker to ``next_item`` (a query of the next line item's id,
    given the current one as ``$2``), computed once: a MATERIALIZED CTE, as it
    is referenced twice in SET (a plain subquery ran twice)."""
    return f"""
WITH nxt AS MATERIALIZED (SELECT ({next_item}) AS id)
UPDATE project_workflow_trackers t SET
    current_line_item_id = nxt.id,
    completed_at = CASE WHEN nxt.id IS NULL THEN now() END,
    updated_at = now()
FROM nxt
WHERE t.project_id = $1
RETURNING t.current_line_item_id
"""


# The next active line item in workflow order.
_ADVANCE_SQL = _advance_sql(
    """
        SELECT li.id FROM workflow_line_items li
        JOIN workflow_sections s ON s.id = li.section_id
        JOIN workflow_phases p ON p.id = s.phase_id
        WHERE li.is_active AND (p.position, s.position, li.position, li.id) > (
            SELECT p0.position, s0.position, li0.position, li0.id FROM workflow_line_items li0
            JOIN workflow_sections s0 ON s0.id = li0.section_id
            JOIN workflow_phases p0 ON p0.id = s0.phase_id WHERE li0.id = $2)
        ORDER BY p.position, s.position, li.position, li.id LIMIT 1"""
)
# The flaw ``id_order_advance``: "next" is the next active item by id, as if
# templates only ever grew at their end.
_ADVANCE_BY_ID_SQL = _advance_sql(
    "SELECT li.id FROM workflow_line_items li WHERE li.is_active AND li.id > $2"
    " ORDER BY li.id LIMIT 1"
)
# The flaw ``ignore_phase_order``: sections and items ordered as if the
# template had one phase.
_ADVANCE_IGNORING_PHASES_SQL = _advance_sql(
    """
        SELECT li.id FROM workflow_line_items li
        JOIN workflow_sections s ON s.id = li.section_id
        WHERE li.is_active AND (s.position, li.position, li.id) > (
            SELECT s0.position, li0.position, li0.id FROM workflow_line_items li0
            JOIN workflow_sections s0 ON s0.id = li0.section_id WHERE li0.id = $2)
        ORDER BY s.position, li.position, li.id LIMIT 1"""
)
_COMPLETE_SCOPED_SQL = """
UPDATE workflow_alerts SET status = 'COMPLETED', completed_at = now()
WHERE project_id = $1 AND step_id = $2 AND status = 'ACTIVE'
RETURNING id, assigned_to_id
"""
# The seed's defect: no project filter, so every project's alert for the step completes.
_COMPLETE_UNSCOPED_SQL = """
UPDATE workflow_alerts SET status = 'COMPLETED', completed_at = now()
WHERE step_id = $2 AND status = 'ACTIVE' AND $1::bigint IS NOT NULL
RETURNING id, assigned_to_id
"""
_INSERT_SQL = insert_alerts_sql(candidates_sql("t.project_id = $1"))
_INSERT_SQL_NO_INDEX = insert_alerts_sql(
    candidates_sql("t.project_id = $1", lock=False), unique_index=False
)

FUNCTION_NAME = "alertbench_complete_line_item"
_ALERT_COLUMNS_OF_N = ", ".join(f"n.{c.strip()}" for c in ALERT_COLUMNS.split(","))
# The insert statement, its result (the new alert's row, or NULLs) kept in ``alert``.
_FUNCTION_INSERT = _INSERT_SQL.strip().replace(
    "SELECT k.candidates, n.* FROM", f"SELECT {_ALERT_COLUMNS_OF_N} INTO alert FROM", 1
)
if "INTO alert" not in _FUNCTION_INSERT:  # pragma: no cover - guards a change of insert_alerts_sql
    raise RuntimeError("insert_alerts_sql changed: update FUNCTION_DDL")
#: The completion as one server-side function: the statements above (same
#: text: ``$1`` is the project, ``$2`` the line item, ``$3`` the user), one
#: round trip. Outcome ``ok``, or the refusal (``not_found``, ``forbidden``,
#: ``finished``, ``stale`` with ``current_id``) with nothing changed.
FUNCTION_DDL = f"""
CREATE OR REPLACE FUNCTION {FUNCTION_NAME}(
    p_project_id bigint, p_line_item_id bigint, p_user_id bigint,
    OUT outcome text, OUT current_id bigint, OUT next_id bigint,
    OUT completed_ids bigint[], OUT completed_assignees bigint[],
    OUT alert workflow_alerts)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    tracker record;
BEGIN
    {_LOCK_SQL.replace("$2", "$3").strip()} FOR UPDATE OF t INTO tracker;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    IF NOT tracker.is_member THEN
        outcome := 'forbidden';
        RETURN;
    END IF;
    IF tracker.completed_at IS NOT NULL OR tracker.current_line_item_id IS NULL THEN
        outcome := 'finished';
        RETURN;
    END IF;
    IF tracker.current_line_item_id <> $2 THEN
        outcome := 'stale';
        current_id := tracker.current_line_item_id;
        RETURN;
    END IF;
    {_ADVANCE_SQL.strip()} INTO next_id;
    WITH done AS ({_COMPLETE_SCOPED_SQL.strip()})
    SELECT coalesce(array_agg(id ORDER BY id), '{{}}'),
           coalesce(array_agg(assigned_to_id ORDER BY id), '{{}}')
    INTO completed_ids, completed_assignees FROM done;
    IF next_id IS NOT NULL THEN
        {_FUNCTION_INSERT};
    END IF;
    outcome := 'ok';
END
$fn$
"""
_FUNCTION_SQL = f"SELECT * FROM {FUNCTION_NAME}($1, $2, $3)"
# Flaws that change what completion does: they keep the statement-by-statement path.
_STEPWISE_FLAWS = frozenset(
    {
        Flaw.NON_ATOMIC_COMPLETION,
        Flaw.EMIT_BEFORE_COMMIT,
        Flaw.UNSCOPED_COMPLETE,
        Flaw.NO_UNIQUE_INDEX,
        Flaw.ID_ORDER_ADVANCE,
        Flaw.IGNORE_PHASE_ORDER,
    }
)


@contextlib.asynccontextmanager
async def _maybe_transaction(conn: Connection, atomic: bool) -> AsyncIterator[None]:
    if atomic:
        async with conn.transaction():
            yield
    else:
        yield


async def complete_line_item(
    conn: Connection,
    *,
    project_id: int,
    line_item_id: int,
    user_id: int,
    flaws: frozenset[Flaw] = frozenset(),
    hooks: CompletionHooks | None = None,
    emitter: AlertEmitter | None = None,
) -> CompletionResult:
    """Complete ``line_item_id`` of ``project_id`` on behalf of ``user_id``.

    Raises ProjectNotFound (no tracker), NotAMember (user not in the project),
    StaleCompletion (not the current line item, or the workflow is complete).
    On success the transaction has committed and ``alert_created`` was notified.
    """
    if (hooks is None or isinstance(hooks, NoHooks)) and not flaws & _STEPWISE_FLAWS:
        return await _complete_in_one_statement(conn, project_id, line_item_id, user_id)
    hooks = hooks or NoHooks()
    emitter = emitter or NullEmitter()
    atomic = Flaw.NON_ATOMIC_COMPLETION not in flaws
    async with _maybe_transaction(conn, atomic):
        lock_sql = _LOCK_SQL + (" FOR UPDATE OF t" if atomic else "")
        tracker = await conn.fetchrow(lock_sql, project_id, user_id)
        if tracker is None:
            raise ProjectNotFound(f"project {project_id} has no workflow tracker")
        if not tracker["is_member"]:
            raise NotAMember(f"user {user_id} is not a member of project {project_id}")
        current = tracker["current_line_item_id"]
        if tracker["completed_at"] is not None or current is None:
            raise StaleCompletion(
                f"the workflow of project {project_id} is already complete",
                current_line_item_id=None,
            )
        if current != line_item_id:
            raise StaleCompletion(
                f"line item {line_item_id} is not the current line item of project"
                f" {project_id} (current: {current}); stale or repeated completion",
                current_line_item_id=current,
            )
        await hooks.after("locked", project_id)

        advance_sql = _ADVANCE_SQL
        if Flaw.ID_ORDER_ADVANCE in flaws:
            advance_sql = _ADVANCE_BY_ID_SQL
        elif Flaw.IGNORE_PHASE_ORDER in flaws:
            advance_sql = _ADVANCE_IGNORING_PHASES_SQL
        next_id: int | None = await conn.fetchval(advance_sql, project_id, line_item_id)
        await hooks.after("advanced", project_id)

        complete_sql = (
            _COMPLETE_UNSCOPED_SQL if Flaw.UNSCOPED_COMPLETE in flaws else _COMPLETE_SCOPED_SQL
        )
        completed = await conn.fetch(complete_sql, project_id, line_item_id)
        await hooks.after("completed_old", project_id)

        alert: Alert | None = None
        if next_id is not None:
            insert_sql = _INSERT_SQL_NO_INDEX if Flaw.NO_UNIQUE_INDEX in flaws else _INSERT_SQL
            rows = await conn.fetch(insert_sql, project_id)
            if rows and rows[0]["id"] is not None:
                alert = Alert.from_row(rows[0])
        await hooks.after("inserted", project_id)
        if alert is not None and Flaw.EMIT_BEFORE_COMMIT in flaws:
            await emitter.emit(alert)
        await hooks.after("before_commit", project_id)

    committed_at = time.time()
    affected = {r["assigned_to_id"] for r in completed if r["assigned_to_id"] is not None}
    if alert is not None and alert.assigned_to_id is not None:
        affected.add(alert.assigned_to_id)
    return CompletionResult(
        project_id=project_id,
        completed_line_item_id=line_item_id,
        next_line_item_id=next_id,
        alert=alert,
        completed_alert_ids=[r["id"] for r in completed],
        affected_user_ids=frozenset(affected),
        committed_at=committed_at,
    )


async def _complete_in_one_statement(
    conn: Connection, project_id: int, line_item_id: int, user_id: int
) -> CompletionResult:
    """``complete_line_item`` as one round trip: the function of ``FUNCTION_DDL``."""
    row = await conn.fetchrow(_FUNCTION_SQL, project_id, line_item_id, user_id)
    committed_at = time.time()
    outcome = row["outcome"]
    if outcome != "ok":
        raise _refusal(outcome, project_id, line_item_id, user_id, row["current_id"])
    record = row["alert"]
    alert = Alert.from_row(record) if record is not None and record["id"] is not None else None
    completed_ids: list[int] = row["completed_ids"]
    affected = {u for u in row["completed_assignees"] if u is not None}
    if alert is not None and alert.assigned_to_id is not None:
        affected.add(alert.assigned_to_id)
    return CompletionResult(
        project_id=project_id,
        completed_line_item_id=line_item_id,
        next_line_item_id=row["next_id"],
        alert=alert,
        completed_alert_ids=completed_ids,
        affected_user_ids=frozenset(affected),
        committed_at=committed_at,
    )


def _refusal(
    outcome: str, project_id: int, line_item_id: int, user_id: int, current: int | None
) -> CompletionError:
    """The error of a refused completion (the same as the stepwise path raises)."""
    if outcome == "not_found":
        return ProjectNotFound(f"project {project_id} has no workflow tracker")
    if outcome == "forbidden":
        return NotAMember(f"user {user_id} is not a member of project {project_id}")
    if outcome == "finished":
        return StaleCompletion(
            f"the workflow of project {project_id} is already complete",
            current_line_item_id=None,
        )
    if outcome == "stale":
        return StaleCompletion(
            f"line item {line_item_id} is not the current line item of project"
            f" {project_id} (current: {current}); stale or repeated completion",
            current_line_item_id=current,
        )
    raise RuntimeError(f"{FUNCTION_NAME} returned an unknown outcome {outcome!r}")
