"""History: recording helpers, operation pairing, JSONL round trip and format errors."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from harness.history import (
    Commit,
    FaultMark,
    History,
    HistoryError,
    Op,
    Receive,
    Session,
    Snapshot,
    pair_operations,
    read_jsonl,
    write_jsonl,
)


def fake_clock(
    start: float = 100.0, step: float = 0.5
) -> tuple[Callable[[], float], Callable[[], float]]:
    ticks = itertools.count()

    def mono() -> float:
        return start + step * next(ticks)

    return mono, lambda: 1_700_000_000.0


def make_history() -> History:
    mono, wall = fake_clock()
    h = History(mono_clock=mono, wall_clock=wall)
    op = h.invoke("c1", "complete", {"project_id": 1, "line_item_id": 2}, intended_mono_s=99.0)
    h.ok(op, {"alert_id": 10})
    op2 = h.invoke("c2", "generate", {"project_ids": [1, 2]})
    h.info(op2, "timeout")
    op3 = h.invoke("c3", "complete", {"project_id": 1, "line_item_id": 2})
    h.fail(op3, "409 stale")
    h.session("s1", "connect", user_id=7)
    h.session("s1", "subscribe", user_id=7, project_id=1)
    h.commit(alert_id=10, project_id=1, assignee_id=7, step_id=3, op_id=op.op_id)
    h.receive("s1", user_id=7, event="new_alert", alert_id=10, project_id=1, payload={"id": 10})
    h.fault("start", kind="partition", label="partition postgres", target="postgres")
    h.fault("heal", kind="partition", label="partition postgres", target="postgres")
    h.snapshot("alerts", [{"id": 10, "project_id": 1, "step_id": 3, "status": "ACTIVE"}])
    return h


def test_events_are_indexed_and_typed_in_order() -> None:
    h = make_history()
    assert [e.index for e in h] == list(range(len(h)))
    assert [e.type for e in h] == [
        "invoke", "ok", "invoke", "info", "invoke", "fail",
        "connect", "subscribe", "commit", "receive", "fault", "fault", "snapshot",
    ]  # fmt: skip
    assert len(h.of_type(Op)) == 6
    assert [type(e) for e in h[6:]] == [
        Session,
        Session,
        Commit,
        Receive,
        FaultMark,
        FaultMark,
        Snapshot,
    ]
    assert h.open_operations() == []


def test_op_ids_are_unique_and_completions_pair_with_their_invoke() -> None:
    h = make_history()
    ops = pair_operations(h)
    assert [(o.f, o.outcome) for o in ops] == [
        ("complete", "ok"),
        ("generate", "info"),
        ("complete", "fail"),
    ]
    assert len({o.op_id for o in ops}) == 3
    first = ops[0]
    # Intended start 99.0, completion stamped at 100.5: 1500 ms from the intended start.
    assert first.latency_ms == pytest.approx(1500.0)
    assert first.raw_latency_ms == pytest.approx(500.0)


def test_an_open_operation_counts_as_info() -> None:
    h = History()
    op = h.invoke("c1", "complete")
    assert h.open_operations() == [op]
    (pair,) = pair_operations(h)
    assert pair.outcome == "info"
    assert pair.latency_ms is None


def test_completing_twice_or_an_unknown_op_is_refused() -> None:
    h = History()
    op = h.invoke("c1", "complete")
    h.ok(op)
    with pytest.raises(HistoryError, match="not open"):
        h.ok(op)
    with pytest.raises(HistoryError, match="only complete an invoke"):
        h.fail(h.of_type(Op)[1], "x")


def test_explicit_mono_s_backdates_the_wall_clock_too() -> None:
    h = History(mono_clock=lambda: 50.0, wall_clock=lambda: 1000.0)
    r = h.receive("c1", user_id=1, event="new_alert", alert_id=1, mono_s=48.5)
    assert (r.mono_s, r.wall_s) == (48.5, 998.5)


@dataclass(frozen=True)
class FakeFaultEvent:
    label: str
    kind: str
    proxy: str
    phase: Literal["start", "heal"]
    at_s: float


def test_record_fault_accepts_a_fault_package_event() -> None:
    h = History()
    mark = h.record_fault(FakeFaultEvent("latency app 200 ms", "latency", "app", "start", 12.0))
    assert (mark.phase, mark.kind, mark.target, mark.mono_s) == ("start", "latency", "app", 12.0)


def test_appends_from_threads_keep_unique_indexes_and_op_ids() -> None:
    h = History()

    def work(n: int) -> None:
        for i in range(200):
            h.ok(h.invoke(f"t{n}", "complete", i))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(h) == 1600
    assert sorted(e.index for e in h) == list(range(1600))
    assert len({o.op_id for o in pair_operations(h)}) == 800
    assert all(o.outcome == "ok" for o in pair_operations(h))


def test_jsonl_round_trip_preserves_every_event(tmp_path: Path) -> None:
    h = make_history()
    path = write_jsonl(h, tmp_path / "history.jsonl")
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"alertbench_history": 1}
    assert len(lines) == len(h) + 1
    loaded = read_jsonl(path)
    assert list(loaded) == list(h)
    # A loaded history keeps accepting new operations without reusing ids.
    new = loaded.invoke("c9", "complete")
    assert new.op_id > max(o.op_id for o in loaded.of_type(Op)[:-1])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "history.jsonl:2: not JSON"),
        ("[1, 2]", "history.jsonl:2: expected an object"),
        ('{"type": "teleport"}', "unknown event type 'teleport'"),
        (
            '{"type": "commit", "process": "r", "mono_s": 1, "wall_s": 1, "alert_id": 1,'
            ' "project_id": 1, "assignee_id": 1, "colour": "red"}',
            r"commit event: unknown field\(s\) \['colour'\]",
        ),
        ('{"type": "commit", "process": "r", "mono_s": 1, "wall_s": 1}', "commit event: "),
        ('{"alertbench_history": 99}', "history format 99"),
    ],
)
def test_malformed_files_name_the_line_and_the_problem(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"alertbench_history": 1}\n' + line + "\n")
    with pytest.raises(HistoryError, match=message):
        read_jsonl(path)


def test_a_completion_without_its_invoke_is_rejected_on_load(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(
        '{"type": "ok", "process": "c", "f": "complete", "op_id": 4, "mono_s": 1, "wall_s": 1}\n'
    )
    with pytest.raises(HistoryError, match="op_id 4 which is not open"):
        read_jsonl(path)


def test_helpers_return_the_stored_event_and_append_keeps_the_callers_copy() -> None:
    h = History()
    received = h.receive("c1", user_id=1, event="new_alert", alert_id=5, mono_s=1.0)
    assert h[0] is received
    assert received.index == 0
    mine = Receive(process="c2", user_id=2, event="new_alert", mono_s=2.0, wall_s=2.0)
    stored = h.append(mine)
    assert (stored.index, mine.index) == (1, -1)
    assert h[1] is stored
    assert stored is not mine
    with pytest.raises(HistoryError, match="not open"):
        h.ok(Op(type="invoke", process="p", f="x", op_id=99, mono_s=0.0, wall_s=0.0))
    assert len(h) == 2


def test_on_append_sees_every_event_whichever_way_it_was_recorded() -> None:
    seen: list[object] = []
    history = History(on_append=seen.append)
    op = history.invoke("p1", "complete", {"project_id": 1})
    history.ok(op, {"alert_id": 2})
    history.receive("c1", user_id=1, event="new_alert", alert_id=2)
    history.fault("start", kind="down", label="down app", target="app")
    history.append(
        FaultMark(process="nemesis", mono_s=1.0, wall_s=1.0, phase="heal", kind="down", label="x")
    )
    assert [e.type for e in seen] == ["invoke", "ok", "receive", "fault", "fault"]
    assert seen == list(history)
