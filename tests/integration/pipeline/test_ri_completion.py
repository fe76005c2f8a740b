"""Completion: one transaction that advances the workflow, or nothing at all."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from ri_support import wait_for_lock_wait

from harness.contract.seed import SeedResult
from reference_impl import Flaw, complete_line_item, generate_alerts
from reference_impl.alerts import NOTIFY_CHANNEL, Alert
from reference_impl.completion import (
    STAGES,
    CompletionResult,
    NotAMember,
    ProjectNotFound,
    Stage,
    StaleCompletion,
)
from reference_impl.db import Connection, connect


class InjectedFault(Exception):
    pass


class FailAt:
    """Completion hooks that raise after the statement of ``stage``."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    async def after(self, stage: Stage, project_id: int) -> None:
        if stage == self.stage:
            raise InjectedFault(stage)


async def _state(conn: Connection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    trackers = await conn.fetch(
        "SELECT project_id, current_line_item_id, completed_at FROM project_workflow_trackers"
        " ORDER BY project_id"
    )
    alerts = await conn.fetch(
        "SELECT id, project_id, step_id, status, completed_at FROM workflow_alerts ORDER BY id"
    )
    return [tuple(r) for r in trackers], [tuple(r) for r in alerts]


async def _active(conn: Connection, project_id: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT step_id FROM workflow_alerts WHERE project_id = $1 AND status = 'ACTIVE'",
        project_id,
    )
    return [r["step_id"] for r in rows]


def _member(seeded: SeedResult, project_id: int) -> int:
    return seeded.members[project_id]["project_manager"]


async def test_walks_the_whole_workflow_across_sections_and_phases(
    conn: Connection, seeded: SeedResult
) -> None:
    pid = seeded.project_ids[0]
    await generate_alerts(conn, [pid])
    items = seeded.active_line_items
    assert len({li.section_id for li in items}) > 1
    assert len({li.phase_id for li in items}) > 1
    for current, expected_next in zip(items, [*items[1:], None], strict=True):
        result = await complete_line_item(
            conn, project_id=pid, line_item_id=current.id, user_id=_member(seeded, pid)
        )
        if expected_next is None:
            assert result.workflow_complete
            assert result.alert is None
            assert await _active(conn, pid) == []
        else:
            assert result.next_line_item_id == expected_next.id
            assert result.alert is not None
            assert result.alert.step_id == expected_next.id
            assert (
                result.alert.assigned_to_id == seeded.members[pid][expected_next.responsible_role]
            )
            assert await _active(conn, pid) == [expected_next.id]
    tracker = await conn.fetchrow(
        "SELECT current_line_item_id, completed_at FROM project_workflow_trackers"
        " WHERE project_id = $1",
        pid,
    )
    assert tracker["current_line_item_id"] is None
    assert tracker["completed_at"] is not None
    with pytest.raises(StaleCompletion, match="already complete"):
        await complete_line_item(
            conn, project_id=pid, line_item_id=items[-1].id, user_id=_member(seeded, pid)
        )


async def test_inactive_line_items_are_skipped(conn: Connection, seeded: SeedResult) -> None:
    inactive = next(li for li in seeded.line_items if not li.is_active)
    before = seeded.line_items[seeded.line_items.index(inactive) - 1]
    after = seeded.line_items[seeded.line_items.index(inactive) + 1]
    pid = seeded.project_ids[0]
    await conn.execute(
        "UPDATE project_workflow_trackers SET current_line_item_id = $1 WHERE project_id = $2",
        before.id,
        pid,
    )
    result = await complete_line_item(
        conn, project_id=pid, line_item_id=before.id, user_id=_member(seeded, pid)
    )
    assert result.next_line_item_id == after.id


async def test_stale_or_repeated_completion_is_rejected_and_changes_nothing(
    conn: Connection, seeded: SeedResult
) -> None:
    pid, first, second = seeded.project_ids[0], *seeded.active_line_items[:2]
    await complete_line_item(
        conn, project_id=pid, line_item_id=first.id, user_id=_member(seeded, pid)
    )
    state = await _state(conn)
    for line_item in (first, seeded.active_line_items[5]):
        with pytest.raises(StaleCompletion) as info:
            await complete_line_item(
                conn, project_id=pid, line_item_id=line_item.id, user_id=_member(seeded, pid)
            )
        assert info.value.current_line_item_id == second.id
    assert await _state(conn) == state


async def test_non_members_and_unknown_projects_are_rejected(
    conn: Connection, seeded: SeedResult
) -> None:
    pid, other = seeded.project_ids[:2]
    first = seeded.active_line_items[0].id
    with pytest.raises(NotAMember):
        await complete_line_item(
            conn, project_id=pid, line_item_id=first, user_id=_member(seeded, other)
        )
    with pytest.raises(ProjectNotFound):
        await complete_line_item(conn, project_id=10**9, line_item_id=first, user_id=1)


async def test_completes_only_this_projects_alerts(conn: Connection, seeded: SeedResult) -> None:
    await generate_alerts(conn, seeded.project_ids)
    pid, first = seeded.project_ids[0], seeded.active_line_items[0].id
    result = await complete_line_item(
        conn, project_id=pid, line_item_id=first, user_id=_member(seeded, pid)
    )
    assert len(result.completed_alert_ids) == 1
    for other in seeded.project_ids[1:]:
        assert await _active(conn, other) == [first]


async def test_unscoped_complete_flaw_completes_every_projects_alerts_for_the_step(
    conn: Connection, seeded: SeedResult
) -> None:
    await generate_alerts(conn, seeded.project_ids)
    pid, first = seeded.project_ids[0], seeded.active_line_items[0].id
    result = await complete_line_item(
        conn,
        project_id=pid,
        line_item_id=first,
        user_id=_member(seeded, pid),
        flaws=frozenset({Flaw.UNSCOPED_COMPLETE}),
    )
    assert len(result.completed_alert_ids) == len(seeded.project_ids)
    for other in seeded.project_ids[1:]:
        assert await _active(conn, other) == []


@pytest.mark.parametrize("stage", STAGES)
async def test_a_fault_between_statements_rolls_everything_back(
    stage: Stage, pg_dsn: str, conn: Connection, seeded: SeedResult
) -> None:
    await generate_alerts(conn, seeded.project_ids)
    pid, marker = seeded.project_ids[:2]
    first = seeded.active_line_items[0].id
    listener = await connect(pg_dsn)
    notes: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: notes.put_nowait(json.loads(args[3])))
    try:
        before = await _state(conn)
        with pytest.raises(InjectedFault):
            await complete_line_item(
                conn,
                project_id=pid,
                line_item_id=first,
                user_id=_member(seeded, pid),
                hooks=FailAt(stage),
            )
        assert await _state(conn) == before
        # Notifications arrive in commit order: a later, committed completion's
        # notification coming first proves the failed one was never sent.
        await complete_line_item(
            conn, project_id=marker, line_item_id=first, user_id=_member(seeded, marker)
        )
        note = await asyncio.wait_for(notes.get(), timeout=10)
        assert note["projectId"] == marker
    finally:
        await listener.close()


async def test_non_atomic_completion_flaw_leaves_partial_state_after_a_fault(
    conn: Connection, seeded: SeedResult
) -> None:
    await generate_alerts(conn, seeded.project_ids)
    pid, first = seeded.project_ids[0], seeded.active_line_items[0].id
    with pytest.raises(InjectedFault):
        await complete_line_item(
            conn,
            project_id=pid,
            line_item_id=first,
            user_id=_member(seeded, pid),
            flaws=frozenset({Flaw.NON_ATOMIC_COMPLETION}),
            hooks=FailAt("completed_old"),
        )
    # The tracker moved on and the old alert completed, but no next alert exists.
    assert await _active(conn, pid) == []


async def test_the_notification_carries_the_new_alert(
    pg_dsn: str, conn: Connection, seeded: SeedResult
) -> None:
    pid, first, second = seeded.project_ids[0], *seeded.active_line_items[:2]
    listener = await connect(pg_dsn)
    notes: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: notes.put_nowait(json.loads(args[3])))
    try:
        result = await complete_line_item(
            conn, project_id=pid, line_item_id=first.id, user_id=_member(seeded, pid)
        )
        note = await asyncio.wait_for(notes.get(), timeout=10)
    finally:
        await listener.close()
    assert result.alert is not None
    assert note["alertId"] == result.alert.id
    assert note["projectId"] == pid
    assert note["stepId"] == note["lineItemId"] == second.id
    assert note["assignedToId"] == seeded.members[pid][second.responsible_role]


async def test_concurrent_completions_of_one_step_exactly_one_wins(
    pg_dsn: str, conn: Connection, seeded: SeedResult
) -> None:
    await generate_alerts(conn, seeded.project_ids)
    pid, first, second = seeded.project_ids[0], *seeded.active_line_items[:2]
    conns = [await connect(pg_dsn) for _ in range(20)]
    try:
        outcomes = await asyncio.gather(
            *(
                complete_line_item(
                    c, project_id=pid, line_item_id=first.id, user_id=_member(seeded, pid)
                )
                for c in conns
            ),
            return_exceptions=True,
        )
    finally:
        for c in conns:
            await c.close()
    wins = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(wins) == 1
    assert all(isinstance(o, StaleCompletion) for o in outcomes if o not in wins)
    assert await _active(conn, pid) == [second.id]
    completed = await conn.fetchval(
        "SELECT count(*) FROM workflow_alerts WHERE project_id = $1 AND status = 'COMPLETED'", pid
    )
    assert completed == 1


class VisibilityProbe:
    """An emitter that records whether another session could see the alert yet."""

    def __init__(self, observer: Connection) -> None:
        self.observer = observer
        self.visible: list[bool] = []

    async def emit(self, alert: Alert) -> None:
        seen = await self.observer.fetchval(
            "SELECT count(*) FROM workflow_alerts WHERE id = $1", alert.id
        )
        self.visible.append(seen == 1)


@pytest.mark.parametrize("flawed", [False, True], ids=["correct", "emit_before_commit"])
async def test_the_emitter_is_only_called_before_commit_under_the_flaw(
    flawed: bool, pg_dsn: str, conn: Connection, seeded: SeedResult
) -> None:
    pid, first = seeded.project_ids[0], seeded.active_line_items[0].id
    observer = await connect(pg_dsn)
    try:
        probe = VisibilityProbe(observer)
        await complete_line_item(
            conn,
            project_id=pid,
            line_item_id=first,
            user_id=_member(seeded, pid),
            flaws=frozenset({Flaw.EMIT_BEFORE_COMMIT}) if flawed else frozenset(),
            emitter=probe,
        )
    finally:
        await observer.close()
    # The correct path never emits directly (the relay emits after commit from
    # the notification); the flaw emits an alert nobody else can read yet.
    assert probe.visible == ([False] if flawed else [])


class RoundTrips:
    """A connection that counts the statements and transactions sent through it."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.count = 0

    def __getattr__(self, name: str) -> Any:
        if name in ("fetch", "fetchrow", "fetchval", "execute", "executemany", "transaction"):
            self.count += 1
        return getattr(self._conn, name)


class Stepwise:
    """Hooks that do nothing, but make completion take its statement-by-statement path."""

    async def after(self, stage: Stage, project_id: int) -> None:
        return None


def _shape(result: CompletionResult) -> tuple[object, ...]:
    """A result without what differs between two projects (ids, times)."""
    alert = result.alert
    return (
        result.next_line_item_id,
        len(result.completed_alert_ids),
        None if alert is None else (alert.step_id, alert.title, alert.message, alert.status),
    )


async def test_the_one_statement_path_does_what_the_stepwise_path_does(
    conn: Connection, seeded: SeedResult
) -> None:
    fast, stepwise = seeded.project_ids[:2]
    await generate_alerts(conn, [fast, stepwise])
    for item in seeded.active_line_items:
        counted = RoundTrips(conn)
        one = await complete_line_item(
            counted, project_id=fast, line_item_id=item.id, user_id=_member(seeded, fast)
        )
        assert counted.count == 1
        counted = RoundTrips(conn)
        other = await complete_line_item(
            counted,
            project_id=stepwise,
            line_item_id=item.id,
            user_id=_member(seeded, stepwise),
            hooks=Stepwise(),
        )
        assert counted.count >= 4  # lock, advance, complete, (insert), in a transaction
        assert _shape(one) == _shape(other)
        assert one.affected_user_ids == {seeded.members[fast][item.responsible_role]} | (
            {one.alert.assigned_to_id} if one.alert and one.alert.assigned_to_id else set()
        )
        assert await _active(conn, fast) == await _active(conn, stepwise)


async def test_the_one_statement_path_waits_for_a_generation_holding_the_tracker(
    pg_dsn: str, conn: Connection, seeded: SeedResult
) -> None:
    # A generation of step 1's alert is in flight (tracker share-locked, alert
    # inserted, not committed) when the completion of step 1 starts: the
    # completion must wait, then complete that alert too (no stale ACTIVE one).
    pid = seeded.project_ids[0]
    first, second = seeded.active_line_items[:2]
    generating, completing = await connect(pg_dsn), await connect(pg_dsn)
    try:
        transaction = generating.transaction()
        await transaction.start()
        generated = await generate_alerts(generating, [pid])
        assert len(generated.created) == 1
        completion = asyncio.create_task(
            complete_line_item(
                completing, project_id=pid, line_item_id=first.id, user_id=_member(seeded, pid)
            )
        )
        backend = completing.get_server_pid()
        await wait_for_lock_wait(conn, backend, completion)
        assert not completion.done()
        await transaction.commit()
        async with asyncio.timeout(10):
            result = await completion
    finally:
        await generating.close()
        await completing.close()
    assert result.completed_alert_ids == [generated.created[0].id]
    assert await _active(conn, pid) == [second.id]
