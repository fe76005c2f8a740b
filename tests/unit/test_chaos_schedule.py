"""The chaos nemesis: every fault once, seeded, some overlapping."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import cast

from harness.history import FaultMark, Session
from harness.scenario import ScenarioContext
from scenarios.chaos import FAULTS, fault_table, nemesis_schedule


def test_the_schedule_has_every_fault_once_in_a_seeded_order() -> None:
    steps = nemesis_schedule(7)
    assert sorted(s.fault for s in steps) == sorted(FAULTS)
    assert steps == nemesis_schedule(7)
    assert [s.fault for s in steps] != [s.fault for s in nemesis_schedule(8)]


def test_some_faults_overlap_and_the_rest_are_apart() -> None:
    steps = nemesis_schedule(3, gap_s=1.0)
    overlapping = [
        (a.fault, b.fault) for a, b in itertools.pairwise(steps) if b.at_s < a.at_s + a.for_s
    ]
    assert len(overlapping) >= 2
    assert all(s.at_s >= 0 for s in steps)
    # Wider gaps stretch the schedule, never shrink it.
    assert nemesis_schedule(3, gap_s=3.0)[-1].at_s > steps[-1].at_s


def _dropped(client: str, at_s: float) -> list[Session]:
    """A client that drops at ``at_s`` and is back 0.5 s later."""
    return [
        Session(process=client, mono_s=t, wall_s=t, type=kind, user_id=1)
        for t, kind in ((at_s, "disconnect"), (at_s + 0.5, "reconnect"))
    ]


def _fault(label: str, t0: float, t1: float) -> list[FaultMark]:
    return [
        FaultMark(process="nemesis", mono_s=t, wall_s=t, phase=phase, kind=label, label=label)
        for t, phase in ((t0, "start"), (t1, "heal"))
    ]


def test_each_dropped_client_is_charged_to_one_fault() -> None:
    # pg_latency heals at 10; app_kill starts 0.2 s later and drops c1 at
    # once: that drop is app_kill's, though it falls within pg_latency's
    # grace after its heal. c2 drops 0.4 s after app_kill's heal, with no
    # fault under way: still app_kill's. c3 drops during pg_latency, c4
    # 0.1 s after its heal; c5 long after every fault: charged to none.
    events = sorted(
        [
            *_fault("pg_latency", 8.0, 10.0),
            *_fault("app_kill", 10.2, 11.0),
            *_dropped("c1", 10.3),
            *_dropped("c2", 11.4),
            *_dropped("c3", 9.0),
            *_dropped("c4", 10.1),
            *_dropped("c5", 20.0),
        ],
        key=lambda e: e.mono_s,
    )
    ctx = cast(ScenarioContext, SimpleNamespace(history=events))
    dropped = {row["fault"]: row["reconnect_ms"]["count"] for row in fault_table(ctx)}
    assert dropped == {"pg_latency": 2, "app_kill": 2}
